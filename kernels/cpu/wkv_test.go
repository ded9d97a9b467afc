package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// TestWKVKernels runs every kernel set's WKV step against a float64
// reference over several tokens of random inputs.
func TestWKVKernels(t *testing.T) {
	const N = 64
	rng := rand.New(rand.NewPCG(1, 2))
	vec := func(lo, hi float64) []float32 {
		v := make([]float32, N)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	for _, ks := range allKernels() {
		t.Run(ks.name, func(t *testing.T) {
			s := make([]float32, N*N)
			ref := make([]float64, N*N)
			for i := range s {
				s[i] = float32(rng.NormFloat64())
				ref[i] = float64(s[i])
			}
			y := make([]float32, N)
			want := make([]float64, N)
			for step := range 20 {
				r, w, k, v := vec(-1, 1), vec(0.5, 1), vec(-1, 1), vec(-2, 2)
				a, b := vec(-0.2, 0), vec(0, 0.2)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				ks.wkv(s, r, w, k, v, a, b, y)
				kernelstest.WKVRef(ref, want, r, w, k, v, a, b, 0)
				for i, yi := range want {
					if d := math.Abs(float64(y[i]) - yi); !(d <= 1e-4*(1+math.Abs(yi))) {
						t.Fatalf("step %d row %d: y = %g, want %g", step, i, y[i], yi)
					}
				}
				for i := range s {
					if d := math.Abs(float64(s[i]) - ref[i]); !(d <= 1e-4*(1+math.Abs(ref[i]))) {
						t.Fatalf("step %d: state[%d] = %g, want %g", step, i, s[i], ref[i])
					}
				}
			}
		})
	}
}

// TestWKVRun runs every kernel set's multi-token WKV (forward, and
// backward through a negative stride, short runs on the one-token kernel
// and long ones on the sequence kernel where a set has one) against a
// float64 recurrence.
func TestWKVRun(t *testing.T) {
	const N, C = 64, 192
	rng := rand.New(rand.NewPCG(3, 9))
	vec := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	for _, ks := range allKernels() {
		p := newPoolWith(1, ks)
		defer p.Close()
		for _, n := range []int{1, wkvSeqMin - 1, wkvSeqMin, 37} {
			for _, reverse := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/n=%d/reverse=%v", ks.name, n, reverse), func(t *testing.T) {
					T := n + 2
					x := &wkvRows{r: vec(T*C, -1, 1), w: vec(T*C, 0.5, 1), k: vec(T*C, -1, 1), v: vec(T*C, -2, 2),
						a: vec(T*C, -0.2, 0), b: vec(T*C, 0, 0.2), y: make([]float32, T*C)}
					const h = 1 // the middle head
					first, stride := 1*C+h*N, C
					if reverse {
						first, stride = n*C+h*N, -C
					}
					S := vec(N*N, -1, 1)
					ref := make([]float64, N*N)
					for i, v := range S {
						ref[i] = float64(v)
					}
					ks.wkvRun(p, S, x, first, stride, n)
					want := make([]float64, T*C)
					for tok := range n {
						o := first + tok*stride
						kernelstest.WKVRef(ref, want, x.r, x.w, x.k, x.v, x.a, x.b, o)
						for i, yi := range want[o : o+N] {
							if d := math.Abs(float64(x.y[o+i]) - yi); !(d <= 1e-4*(1+math.Abs(yi))) {
								t.Fatalf("token %d row %d: y = %g, want %g", tok, i, x.y[o+i], yi)
							}
						}
					}
					for i := range S {
						if d := math.Abs(float64(S[i]) - ref[i]); !(d <= 1e-4*(1+math.Abs(ref[i]))) {
							t.Fatalf("state[%d] = %g, want %g", i, S[i], ref[i])
						}
					}
					for i, v := range x.y {
						if tok := i / C; (tok < 1 || tok > n || i%C/N != h) && v != 0 {
							t.Fatalf("y[%d] (token %d, head %d) written", i, tok, i%C/N)
						}
					}
				})
			}
		}
	}
}

// BenchmarkWKVRun times one head's recurrence over 496 tokens (an A-RWKV
// window) on each kernel set, in ns per token.
func BenchmarkWKVRun(b *testing.B) {
	const N, C, T = 64, 384, 496
	rng := rand.New(rand.NewPCG(1, 1))
	vec := func(n int, lo, hi float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
		return v
	}
	x := &wkvRows{r: vec(T*C, -1, 1), w: vec(T*C, 0.5, 1), k: vec(T*C, -1, 1), v: vec(T*C, -2, 2),
		a: vec(T*C, -0.2, 0), b: vec(T*C, 0, 0.2), y: make([]float32, T*C)}
	for _, ks := range benchKernels() {
		p := newPoolWith(1, ks)
		defer p.Close()
		b.Run(ks.name, func(b *testing.B) {
			S := make([]float32, N*N)
			for b.Loop() {
				clear(S)
				ks.wkvRun(p, S, x, 0, C, T)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*T), "ns/token")
		})
	}
}
