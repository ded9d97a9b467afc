package cpu

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVisionElementwise checks the vectorised exponential and GELU (and
// their portable forms) against float64 on random values, tails included.
func TestVisionElementwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 7, 8, 9, 64, 301} {
		row := make([]float32, n)
		for i := range row {
			row[i] = float32(rng.NormFloat64() * 20)
		}
		row[0] = -200 // underflows to 0
		m := float32(math.Inf(-1))
		for _, v := range row {
			m = max(m, v)
		}
		if got := rowMax(row); got != m {
			t.Errorf("n=%d: rowMax %g, want %g", n, got, m)
		}
		for name, f := range map[string]func([]float32, float32) float32{"vector": expShiftSum, "generic": expShiftSumGeneric} {
			got := append([]float32(nil), row...)
			sum := f(got, m)
			var want float64
			for i, v := range row {
				e := math.Exp(float64(v - m))
				want += e
				if d := math.Abs(float64(got[i]) - e); d > 1e-6*e+1e-30 {
					t.Fatalf("%s n=%d: e^(%g) = %g, want %g", name, n, row[i]-m, got[i], e)
				}
			}
			if math.Abs(float64(sum)-want) > 1e-6*want {
				t.Errorf("%s n=%d: sum %g, want %g", name, n, sum, want)
			}
		}
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
		}
		x[0] = -9
		d := make([]float32, n)
		geluErfRange(d, x)
		for i, v := range x {
			want := 0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2))
			if diff := math.Abs(float64(d[i]) - want); diff > 1e-6*math.Abs(want)+1e-7 {
				t.Fatalf("n=%d: GELU(%g) = %g, want %g", n, v, d[i], want)
			}
		}
	}
}

func BenchmarkVisionElementwise(b *testing.B) {
	row := make([]float32, 4096)
	for i := range row {
		row[i] = float32(i%97) * -0.1
	}
	b.Run("exp", func(b *testing.B) {
		for b.Loop() {
			expShiftSum(row, 0)
		}
	})
	b.Run("gelu-scalar", func(b *testing.B) {
		d := make([]float32, len(row))
		for b.Loop() {
			for i, v := range row {
				d[i] = geluErf(v)
			}
		}
	})
	b.Run("gelu", func(b *testing.B) {
		d := make([]float32, len(row))
		for b.Loop() {
			geluErfRange(d, row)
		}
	})
}
