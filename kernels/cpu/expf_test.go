package cpu

import (
	"math"
	"testing"
)

func TestExpf(t *testing.T) {
	worst := 0.0
	for x := float32(-103.9); x < 88.7; x += 0.0007 {
		want := math.Exp(float64(x))
		got := float64(expf(x))
		rel := math.Abs(got-want) / want
		if want < 1.2e-38 { // subnormal: absolute error in units of the smallest subnormal
			if math.Abs(got-want) > 2*1.4e-45 {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		worst = max(worst, rel)
		if rel > 3e-7 {
			t.Fatalf("expf(%g) = %g, want %g (relative error %.2g)", x, got, want, rel)
		}
	}
	for _, tc := range []struct{ x, want float32 }{
		{0, 1}, {float32(math.Inf(-1)), 0}, {float32(math.Inf(1)), float32(math.Inf(1))}, {-200, 0}, {100, float32(math.Inf(1))},
	} {
		if got := expf(tc.x); got != tc.want {
			t.Errorf("expf(%g) = %g, want %g", tc.x, got, tc.want)
		}
	}
	if !math.IsNaN(float64(expf(float32(math.NaN())))) {
		t.Error("expf(NaN) is not NaN")
	}
	t.Logf("worst relative error %.2g", worst)
}
