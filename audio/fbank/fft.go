package fbank

import (
	"math"
	"math/bits"
)

// fftPlan is an in-place iterative radix-2 FFT of one power-of-two size,
// its twiddle factors and bit-reversal permutation computed once.
//
// Compute uses it for power-of-two frame sizes (every AudioSet setting:
// 1024 points) instead of github.com/mjibson/go-dsp/fft, which starts
// GOMAXPROCS goroutines and allocates a channel and two buffers for every
// transform: for a 1024-point transform that costs more than the
// arithmetic, and a 10 s clip has 496 of them. go-dsp still computes the
// transforms of other sizes (Bluestein), and the tests check this FFT
// against it.
type fftPlan struct {
	n   int
	rev []int32      // bit-reversed index
	tw  []complex128 // e^{−2πik/n}, k < n/2
}

func newFFTPlan(n int) *fftPlan {
	p := &fftPlan{n: n, rev: make([]int32, n), tw: make([]complex128, n/2)}
	shift := 64 - bits.TrailingZeros(uint(n))
	for i := range p.rev {
		p.rev[i] = int32(bits.Reverse64(uint64(i)) >> shift)
	}
	for k := range p.tw {
		s, c := math.Sincos(-2 * math.Pi * float64(k) / float64(n))
		p.tw[k] = complex(c, s)
	}
	return p
}

// transform replaces z (length n) by its discrete Fourier transform
// Z_k = Σ_j z_j·e^{−2πijk/n}, the convention of go-dsp's FFT.
func (p *fftPlan) transform(z []complex128) {
	n := p.n
	z = z[:n]
	for i, r := range p.rev {
		if int(r) > i {
			z[i], z[r] = z[r], z[i]
		}
	}
	for half := 1; half < n; half <<= 1 {
		step := n / (2 * half)
		for start := 0; start < n; start += 2 * half {
			a, b := z[start:start+half], z[start+half:start+2*half]
			for j := range a {
				t := b[j] * p.tw[j*step]
				b[j] = a[j] - t
				a[j] += t
			}
		}
	}
}

func isPowerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }
