//go:build !purego

package sample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpBlocksAVX2 requires the vector exponential to give expNeg's
// values and expRange's four partial sums to the bit, on rows spanning
// the whole range expNeg takes: near 0, near and past the −104 cutoff,
// −∞, and tiny differences.
func TestExpBlocksAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	tab := expTable()
	const scale, step = expTableSize / math.Ln2, math.Ln2 / expTableSize
	for trial := range 200 {
		n := 4 * (1 + rng.IntN(300))
		x := make([]float32, n)
		for i := range x {
			switch rng.IntN(6) {
			case 0:
				x[i] = float32(-rng.Float64() * 120) // past the cutoff too
			case 1:
				x[i] = float32(-104 + rng.Float64()*0.01 - 0.005)
			case 2:
				x[i] = float32(math.Inf(-1))
			case 3:
				x[i] = -float32(rng.Float64() * 1e-6)
			default:
				x[i] = float32(rng.NormFloat64() * 8)
			}
		}
		m := float64(x[0])
		for _, v := range x {
			m = max(m, float64(v))
		}
		if trial%7 == 0 {
			m += 3.25 // a maximum that is not an element
		}
		var want [4]float64
		wantE := make([]float32, n)
		for i, v := range x {
			wantE[i] = expNeg(float64(v)-m, &tab)
			want[i%4] += float64(wantE[i])
		}
		got := make([]float32, n)
		var sums [4]float64
		c := [8]float64{m, scale, 0.5, step, 1, 1.0 / 6, 1.0 / 24, -104}
		expBlocksAVX2(&got[0], &x[0], n/4, &c, &tab, &sums)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(wantE[i]) {
				t.Fatalf("trial %d, element %d (x %v, m %v): %v, expNeg %v", trial, i, x[i], m, got[i], wantE[i])
			}
		}
		for j := range sums {
			if math.Float64bits(sums[j]) != math.Float64bits(want[j]) {
				t.Fatalf("trial %d, sum %d: %v, expRange's %v", trial, j, sums[j], want[j])
			}
		}
	}
}

// TestMaxScaleAVX2 requires softmax's vector maximum and scaling to give
// the Go loops' results to the bit (the maximum up to the sign of a zero).
func TestMaxScaleAVX2(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 200 {
		n := 1 + rng.IntN(2000)
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 10)
			if rng.IntN(50) == 0 {
				x[i] = float32(math.Inf(-1))
			}
		}
		want := float32(math.Inf(-1))
		for _, v := range x {
			if v > want {
				want = v
			}
		}
		got, done := maxFast(x)
		for _, v := range x[done:] {
			if v > got {
				got = v
			}
		}
		if got != want {
			t.Fatalf("trial %d: maximum %v, the loop's %v", trial, got, want)
		}
		inv := 1 / (1 + rng.Float64()*1e4)
		y := append([]float32(nil), x...)
		for i := scaleFast(y, inv); i < n; i++ {
			y[i] = float32(float64(y[i]) * inv)
		}
		for i, v := range x {
			if w := float32(float64(v) * inv); math.Float32bits(y[i]) != math.Float32bits(w) {
				t.Fatalf("trial %d, element %d: scaled %v, the loop's %v", trial, i, y[i], w)
			}
		}
	}
}
