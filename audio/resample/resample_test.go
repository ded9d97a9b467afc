package resample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func sine(n, rate int, freq float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(0.5 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return x
}

// TestSine resamples a tone well inside both bands: away from the edges
// the output is the same tone sampled at the new rate.
func TestSine(t *testing.T) {
	for _, tc := range []struct{ from, to int }{{48000, 32000}, {44100, 32000}, {16000, 32000}, {8000, 32000}, {22050, 32000}, {32000, 16000}} {
		n := tc.from / 2
		x := sine(n, tc.from, 440)
		y, err := Resample(x, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		want := (int64(n)*int64(tc.to) + int64(tc.from) - 1) / int64(tc.from)
		if int64(len(y)) != want {
			t.Errorf("%d→%d: %d samples, want %d", tc.from, tc.to, len(y), want)
		}
		ref := sine(len(y), tc.to, 440)
		var maxd float64
		for i := len(y) / 10; i < len(y)*9/10; i++ {
			maxd = max(maxd, math.Abs(float64(y[i]-ref[i])))
		}
		if maxd > 2e-3 {
			t.Errorf("%d→%d: max |Δ| %.3g from the ideal tone", tc.from, tc.to, maxd)
		}
	}
}

// TestAntiAlias: a tone above the new Nyquist frequency is removed.
func TestAntiAlias(t *testing.T) {
	x := sine(48000, 48000, 20000)
	y, err := Resample(x, 48000, 32000)
	if err != nil {
		t.Fatal(err)
	}
	var e float64
	for _, v := range y[len(y)/10 : len(y)*9/10] {
		e = max(e, math.Abs(float64(v)))
	}
	if e > 0.01 {
		t.Errorf("20 kHz tone survives resampling to 32 kHz with amplitude %.3g", e)
	}
}

// TestStreamingMatchesWhole writes random blocks and requires the output
// of one call on the whole signal, bit for bit.
func TestStreamingMatchesWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct{ from, to int }{{44100, 32000}, {48000, 32000}, {16000, 32000}, {32000, 32000}, {11025, 32000}} {
		x := make([]float32, 20000)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 0.3)
		}
		whole, err := Resample(x, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := New(tc.from, tc.to)
		var got []float32
		for off := 0; off < len(x); {
			n := min(len(x)-off, rng.IntN(3000))
			got = r.Write(got, x[off:off+n])
			off += n
			if len(r.hist) > 3000+4*r.width+2*r.from {
				t.Fatalf("%d→%d: history grew to %d samples", tc.from, tc.to, len(r.hist))
			}
		}
		got = r.Flush(got)
		if !slices.Equal(got, whole) {
			t.Errorf("%d→%d: streamed output (%d) differs from whole (%d)", tc.from, tc.to, len(got), len(whole))
		}
	}
}

func TestBadRates(t *testing.T) {
	for _, r := range [][2]int{{0, 32000}, {32000, -1}, {2_000_000, 32000}} {
		if _, err := New(r[0], r[1]); err == nil {
			t.Errorf("New(%d, %d) accepted", r[0], r[1])
		}
	}
}
