// Package resample changes the sampling rate of audio with the
// band-limited windowed-sinc interpolation torchaudio uses by default
// (torchaudio.functional.resample: Hann window, lowpass filter width 6,
// rolloff 0.99), the resampler of the A-RWKV reference pipeline. A
// Resampler works on a stream: samples go in block by block and the same
// output comes out as from one call on the whole signal.
package resample

import (
	"fmt"
	"math"
)

// Filter parameters of torchaudio's default.
const (
	lowpassWidth = 6
	rolloff      = 0.99
	maxRate      = 1_000_000
)

// Resampler converts a stream from one rate to another. Output sample j
// (phase p = j mod to, block b = j div to, rates reduced by their gcd) is
// Σ_k h_p[k]·x[b·from + k − width], with x zero outside the input.
type Resampler struct {
	from, to int // reduced rates
	width    int
	taps     [][]float32 // per phase: the nonzero part of its kernel
	first    []int       // per phase: k of taps[p][0]

	hist []float32 // input from absolute index base on
	base int64
	in   int64 // input samples written
	out  int64 // output samples produced
}

// New returns a resampler from rate from to rate to (Hz).
func New(from, to int) (*Resampler, error) {
	if from <= 0 || to <= 0 || from > maxRate || to > maxRate {
		return nil, fmt.Errorf("resample: rates %d → %d Hz, want 1 to %d", from, to, maxRate)
	}
	g := gcd(from, to)
	r := &Resampler{from: from / g, to: to / g}
	if r.from == r.to {
		return r, nil
	}
	base := float64(min(r.from, r.to)) * rolloff
	r.width = int(math.Ceil(lowpassWidth * float64(r.from) / base))
	K := 2*r.width + r.from
	scale := base / float64(r.from)
	r.taps = make([][]float32, r.to)
	r.first = make([]int, r.to)
	for p := range r.to {
		h := make([]float64, K)
		lo, hi := K, 0
		for k := range K {
			t := (-float64(p)/float64(r.to) + float64(k-r.width)/float64(r.from)) * base
			t = max(-lowpassWidth, min(lowpassWidth, t))
			w := math.Cos(t * math.Pi / lowpassWidth / 2)
			w *= w
			t *= math.Pi
			s := 1.0
			if t != 0 {
				s = math.Sin(t) / t
			}
			h[k] = s * w * scale
			if h[k] != 0 {
				lo, hi = min(lo, k), k+1
			}
		}
		if lo >= hi {
			lo, hi = 0, 0
		}
		r.first[p] = lo
		r.taps[p] = make([]float32, hi-lo)
		for k := lo; k < hi; k++ {
			r.taps[p][k-lo] = float32(h[k])
		}
	}
	return r, nil
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Identity reports whether the rates are equal (samples pass unchanged).
func (r *Resampler) Identity() bool { return r.from == r.to }

// Write feeds samples and appends to dst the output they complete.
func (r *Resampler) Write(dst, in []float32) []float32 {
	if r.Identity() {
		r.in += int64(len(in))
		r.out += int64(len(in))
		return append(dst, in...)
	}
	r.hist = append(r.hist, in...)
	r.in += int64(len(in))
	return r.produce(dst, false)
}

// Flush appends the output that remains once the input has ended (the
// input is taken as zero past its end), so that the total output is
// ceil(n·to/from) samples for n input samples.
func (r *Resampler) Flush(dst []float32) []float32 {
	if r.Identity() {
		return dst
	}
	return r.produce(dst, true)
}

// produce computes outputs while their inputs are available (or, at the
// end, while the output count is below ceil(in·to/from)).
func (r *Resampler) produce(dst []float32, end bool) []float32 {
	total := (r.in*int64(r.to) + int64(r.from) - 1) / int64(r.from)
	for r.out < total {
		p := int(r.out % int64(r.to))
		b := r.out / int64(r.to)
		start := b*int64(r.from) + int64(r.first[p]) - int64(r.width)
		taps := r.taps[p]
		if !end && start+int64(len(taps)) > r.in {
			break
		}
		var acc float32
		for k, h := range taps {
			i := start + int64(k)
			if i < 0 || i >= r.in {
				continue
			}
			acc += h * r.hist[i-r.base]
		}
		dst = append(dst, acc)
		r.out++
	}
	// Drop input no later output needs: output j reads from
	// b·from + min first − width on.
	b := r.out / int64(r.to)
	keep := b*int64(r.from) - int64(r.width)
	if drop := keep - r.base; drop > 0 {
		drop = min(drop, int64(len(r.hist)))
		n := copy(r.hist, r.hist[drop:])
		r.hist = r.hist[:n]
		r.base += drop
	}
	return dst
}

// Resample converts a whole signal from one rate to another.
func Resample(x []float32, from, to int) ([]float32, error) {
	r, err := New(from, to)
	if err != nil {
		return nil, err
	}
	if r.Identity() {
		return append([]float32(nil), x...), nil
	}
	out := make([]float32, 0, int64(len(x))*int64(r.to)/int64(r.from)+1)
	out = r.Write(out, x)
	return r.Flush(out), nil
}
