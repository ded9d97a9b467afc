package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
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
			for step := range 20 {
				r, w, k, v := vec(-1, 1), vec(0.5, 1), vec(-1, 1), vec(-2, 2)
				a, b := vec(-0.2, 0), vec(0, 0.2)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				ks.wkv(s, r, w, k, v, a, b, y)
				for i := range N {
					var sa float64
					for j := range N {
						sa += float64(a[j]) * ref[i*N+j]
					}
					var yi float64
					for j := range N {
						x := ref[i*N+j]*float64(w[j]) + float64(k[j])*float64(v[i]) + sa*float64(b[j])
						ref[i*N+j] = x
						yi += x * float64(r[j])
					}
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
