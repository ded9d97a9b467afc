package resample

import (
	"math"
	"math/rand/v2"
	"testing"
)

// tone is a float64 sine of frequency f Hz and amplitude a at rate Hz.
func tone(n int, f, a float64, rate int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(a * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
	}
	return x
}

// fit returns the amplitude of the best fitting sine and cosine of
// frequency f over y[lo:hi] (float64 least squares on whole periods is a
// projection), and the RMS of what is left.
func fit(y []float32, f float64, rate, lo, hi int) (amp, resid float64) {
	var ss, cc, s2, ys, yc float64
	for i := lo; i < hi; i++ {
		w := 2 * math.Pi * f * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		cc += c * c
		s2 += s * c
		ys += float64(y[i]) * s
		yc += float64(y[i]) * c
	}
	det := ss*cc - s2*s2
	a := (ys*cc - yc*s2) / det
	b := (yc*ss - ys*s2) / det
	var r float64
	for i := lo; i < hi; i++ {
		w := 2 * math.Pi * f * float64(i) / float64(rate)
		e := float64(y[i]) - a*math.Sin(w) - b*math.Cos(w)
		r += e * e
	}
	return math.Hypot(a, b), math.Sqrt(r / float64(hi-lo))
}

func TestToneKeepsFrequencyAndAmplitude(t *testing.T) {
	for _, tc := range []struct {
		from, to int
		f        float64
	}{
		{48000, 32000, 1000},
		{48000, 32000, 12000},
		{44100, 32000, 440},
		{44100, 32000, 13000},
		{22050, 32000, 3000},
		{16000, 32000, 6000},
		{8000, 32000, 440},
		{96000, 32000, 5000},
		{44056, 32000, 2500}, // 4004 phases: tabulated
		{44057, 32000, 2500}, // 32000 phases: evaluated per sample
		{32000, 32000, 1000},
	} {
		in := tone(tc.from, tc.f, 0.5, tc.from) // one second
		out, err := Resample(in, tc.from, tc.to)
		if err != nil {
			t.Fatal(err)
		}
		if want := (len(in)*tc.to + tc.from - 1) / tc.from; len(out) != want {
			t.Errorf("%d→%d: %d samples, want %d", tc.from, tc.to, len(out), want)
		}
		// Away from the edges (where the signal starts from silence) the
		// output is the same tone sampled at the new rate.
		edge := tc.to / 20
		amp, resid := fit(out, tc.f, tc.to, edge, len(out)-edge)
		if math.Abs(amp-0.5) > 0.5*2e-3 || resid > 0.5*1e-3 {
			t.Errorf("%d→%d, %g Hz tone of amplitude 0.5: amplitude %.5f, residual RMS %.2g", tc.from, tc.to, tc.f, amp, resid)
		}
	}
}

func TestNoAliasing(t *testing.T) {
	// Tones above the new Nyquist frequency (16 kHz) must vanish rather
	// than fold back into the band.
	for _, tc := range []struct {
		from int
		f    float64
	}{
		{48000, 17000},
		{48000, 20000},
		{48000, 23000},
		{44100, 18000},
		{44100, 21000},
		{96000, 40000},
	} {
		in := tone(tc.from, tc.f, 0.9, tc.from)
		out, err := Resample(in, tc.from, 32000)
		if err != nil {
			t.Fatal(err)
		}
		edge := 32000 / 20
		var sum float64
		for _, v := range out[edge : len(out)-edge] {
			sum += float64(v) * float64(v)
		}
		rms := math.Sqrt(sum / float64(len(out)-2*edge))
		if db := 20 * math.Log10(rms/(0.9/math.Sqrt2)); db > -80 {
			t.Errorf("%d Hz tone at %d Hz: %.1f dB left after resampling to 32 kHz, want ≤ -80 dB", int(tc.f), tc.from, db)
		}
	}
}

// TestMatchesDirectSum compares the tabulated, streaming filter with a
// direct float64 evaluation of the same formula.
func TestMatchesDirectSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, 4000)
	for i := range in {
		in[i] = float32(rng.Float64()*2 - 1)
	}
	for _, r := range [][2]int{{48000, 32000}, {44100, 32000}, {8000, 32000}, {44057, 32000}} {
		rs, _ := New(r[0], r[1])
		got, _ := Resample(in, r[0], r[1])
		for n := range got {
			t0 := float64(n) * float64(r[0]) / float64(r[1])
			var want float64
			for j := int(t0) - rs.r - 1; j <= int(t0)+rs.r+1; j++ {
				if j >= 0 && j < len(in) {
					want += rs.h(t0-float64(j)) * float64(in[j])
				}
			}
			if math.Abs(float64(got[n])-want) > 2e-5 {
				t.Fatalf("%d→%d sample %d: %g, direct sum %g", r[0], r[1], n, got[n], want)
			}
		}
	}
}

func TestStreamingEqualsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	in := make([]float32, 10007)
	for i := range in {
		in[i] = float32(rng.NormFloat64() * 0.3)
	}
	for _, r := range [][2]int{{48000, 32000}, {44100, 32000}, {16000, 32000}, {32000, 32000}} {
		whole, _ := Resample(in, r[0], r[1])
		rs, _ := New(r[0], r[1])
		var got []float32
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rng.IntN(700))
			got = rs.Write(got, rest[:n])
			rest = rest[n:]
		}
		got = rs.Flush(got)
		got = rs.Write(got, in[:10]) // ignored after Flush
		if len(got) != len(whole) {
			t.Fatalf("%d→%d: streamed %d samples, whole %d", r[0], r[1], len(got), len(whole))
		}
		for i := range got {
			if got[i] != whole[i] {
				t.Fatalf("%d→%d sample %d: streamed %g, whole %g", r[0], r[1], i, got[i], whole[i])
			}
		}
	}
}

func TestShortAndBad(t *testing.T) {
	for _, n := range []int{0, 1, 2, 5} {
		out, err := Resample(make([]float32, n), 48000, 32000)
		if err != nil || len(out) != (n*2+2)/3 {
			t.Errorf("%d samples: %d out, %v", n, len(out), err)
		}
	}
	for _, r := range [][2]int{{0, 32000}, {48000, -1}, {1 << 30, 32000}} {
		if _, err := New(r[0], r[1]); err == nil {
			t.Errorf("New(%d, %d): no error", r[0], r[1])
		}
	}
}

func BenchmarkResample48kTo32k(b *testing.B) {
	in := tone(48000*10, 1000, 0.5, 48000)
	b.SetBytes(int64(len(in) * 4))
	for b.Loop() {
		Resample(in, 48000, 32000)
	}
}
