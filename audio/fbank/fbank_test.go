package fbank

import (
	"errors"
	"math"
	"math/cmplx"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/mjibson/go-dsp/fft"
)

const testdata = "../../testdata/fbank"

// Golden agreement: max |Δ| ≤ tol (1e-3) in the log domain for every value
// whose reference is at least ln(Epsilon)+floorMargin, i.e. whose mel energy
// is more than e (≈ 2.7) times the float32-epsilon floor. Values below that
// are "near the floor": there the reference's float32 rounding can decide
// whether the floor applies, so they only need to agree within floorTol, and
// at most maxNearFloor of all values may fall in that class so the exclusion
// cannot hide a broken spectrum. (In tone.wav they are 11 silent frames at
// both rates plus, at 16 kHz, mel bin 3, whose triangle holds no FFT bin;
// in practice they match exactly.)
const (
	tol          = 1e-3
	floorMargin  = 1.0
	floorTol     = 0.05
	maxNearFloor = 0.06 // fraction of all values
)

func readTone(t testing.TB) ([]float32, int) {
	t.Helper()
	f, err := os.Open(filepath.Join(testdata, "tone.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, format, err := wav.ReadAll(f, 1<<24)
	if err != nil {
		t.Fatalf("tone.wav: %v", err)
	}
	return s, format.Rate
}

func TestGolden(t *testing.T) {
	samples, rate := readTone(t)
	if rate != 32000 {
		t.Fatalf("tone.wav rate %d, want 32000", rate)
	}
	half := make([]float32, 0, len(samples)/2+1)
	for i := 0; i < len(samples); i += 2 {
		half = append(half, samples[i])
	}
	cases := []struct {
		name    string
		file    string
		samples []float32
		opts    Options
	}{
		{"32k", "tone.fbank.npy", samples, AudioSet(32000, 128)},
		{"16k", "tone.fbank16k.npy", half, AudioSet(16000, 128)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ref, err := npy.ReadFile(filepath.Join(testdata, c.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(ref.Shape) != 2 {
				t.Fatalf("%s: shape %v, want 2-D", c.file, ref.Shape)
			}
			got, err := Compute(c.samples, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != ref.Shape[0] || len(got[0]) != ref.Shape[1] {
				t.Fatalf("got %d×%d, want %v", len(got), len(got[0]), ref.Shape)
			}
			floor := math.Log(Epsilon) + floorMargin
			var maxD, maxFloorD float64
			near, worst := 0, [2]int{}
			cols := ref.Shape[1]
			for i, row := range got {
				for j, v := range row {
					want := float64(ref.Data[i*cols+j])
					d := math.Abs(float64(v) - want)
					if want < floor {
						near++
						maxFloorD = math.Max(maxFloorD, d)
						continue
					}
					if d > maxD {
						maxD, worst = d, [2]int{i, j}
					}
				}
			}
			t.Logf("max |Δ| %.3g at frame %d bin %d; %d of %d values near the floor (max |Δ| %.3g there)",
				maxD, worst[0], worst[1], near, len(ref.Data), maxFloorD)
			if maxD > tol {
				t.Errorf("max |Δ| %g > %g at frame %d bin %d", maxD, tol, worst[0], worst[1])
			}
			if maxFloorD > floorTol {
				t.Errorf("near-floor max |Δ| %g > %g", maxFloorD, floorTol)
			}
			if float64(near) > maxNearFloor*float64(len(ref.Data)) {
				t.Errorf("%d of %d values near the floor, at most %.0f%% allowed", near, len(ref.Data), 100*maxNearFloor)
			}
		})
	}
}

// TestNaiveDFT checks the packed two-frames-per-FFT path against a direct
// DFT, for a frame count that is odd (so the unpaired last frame is covered)
// and with energy, magnitude and snip_edges=false options.
func TestNaiveDFT(t *testing.T) {
	samples, _ := readTone(t)
	samples = samples[:2*800+3*320+17]
	for _, o := range []Options{
		AudioSet(32000, 40),
		func() Options {
			o := Defaults(32000)
			o.UseEnergy, o.UsePower, o.SnipEdges = true, false, false
			return o
		}(),
		func() Options {
			o := Defaults(32000)
			o.UseEnergy, o.RawEnergy, o.HTKCompat, o.Window = true, false, true, WindowBlackman
			return o
		}(),
	} {
		got, err := Compute(samples, o)
		if err != nil {
			t.Fatal(err)
		}
		want := naive(samples, o)
		if len(got) != len(want) {
			t.Fatalf("%+v: %d frames, naive %d", o, len(got), len(want))
		}
		for i := range got {
			for j := range got[i] {
				if d := math.Abs(float64(got[i][j] - want[i][j])); d > 1e-4 {
					t.Fatalf("%s: frame %d feature %d: got %g, naive %g", o.Window, i, j, got[i][j], want[i][j])
				}
			}
		}
	}
}

// naive is an independent, slow transcription of the Kaldi recipe.
func naive(x []float32, o Options) [][]float32 {
	win := int(o.SampleRate * o.FrameLengthMs / 1000)
	shift := int(o.SampleRate * o.FrameShiftMs / 1000)
	nfft := 1
	for nfft < win {
		nfft *= 2
	}
	n := len(x)
	var padded []float32
	var frames int
	if o.SnipEdges {
		padded, frames = x, 1+(n-win)/shift
	} else {
		p := win/2 - shift/2
		for i := p - 1; i >= 0; i-- {
			padded = append(padded, x[i])
		}
		padded = append(padded, x...)
		for i := n - 1; i >= 0; i-- {
			padded = append(padded, x[i])
		}
		frames = (n + shift/2) / shift
	}
	var out [][]float32
	for f := 0; f < frames; f++ {
		fr := make([]float64, win)
		for j := range fr {
			fr[j] = float64(padded[f*shift+j])
		}
		var mean float64
		for _, v := range fr {
			mean += v / float64(win)
		}
		for j := range fr {
			fr[j] -= mean
		}
		energy := func(v []float64) float64 {
			s := 0.0
			for _, a := range v {
				s += a * a
			}
			return math.Max(math.Log(math.Max(s, Epsilon)), math.Log(o.EnergyFloor))
		}
		var e float64
		if o.RawEnergy {
			e = energy(fr)
		}
		pre := make([]float64, win)
		for j := range fr {
			prev := fr[0]
			if j > 0 {
				prev = fr[j-1]
			}
			pre[j] = fr[j] - o.PreemphCoeff*prev
		}
		for j := range pre {
			a := 2 * math.Pi * float64(j) / float64(win-1)
			var w float64
			switch o.Window {
			case WindowHanning:
				w = 0.5 - 0.5*math.Cos(a)
			case WindowPovey:
				w = math.Pow(0.5-0.5*math.Cos(a), 0.85)
			case WindowBlackman:
				w = 0.42 - 0.5*math.Cos(a) + 0.08*math.Cos(2*a)
			}
			pre[j] *= w
		}
		if !o.RawEnergy {
			e = energy(pre)
		}
		spec := make([]float64, nfft/2)
		for k := range spec {
			var re, im float64
			for j, v := range pre {
				re += v * math.Cos(2*math.Pi*float64(k*j)/float64(nfft))
				im -= v * math.Sin(2*math.Pi*float64(k*j)/float64(nfft))
			}
			spec[k] = re*re + im*im
			if !o.UsePower {
				spec[k] = math.Sqrt(spec[k])
			}
		}
		high := o.HighFreq
		if high <= 0 {
			high += o.SampleRate / 2
		}
		ml, mh := MelScale(o.LowFreq), MelScale(high)
		d := (mh - ml) / float64(o.NumMelBins+1)
		var row []float32
		for b := 0; b < o.NumMelBins; b++ {
			l, c, r := ml+float64(b)*d, ml+float64(b+1)*d, ml+float64(b+2)*d
			var s float64
			for k, p := range spec {
				m := MelScale(float64(k) * o.SampleRate / float64(nfft))
				if m > l && m < r {
					if m <= c {
						s += p * (m - l) / (c - l)
					} else {
						s += p * (r - m) / (r - c)
					}
				}
			}
			row = append(row, float32(math.Log(math.Max(s, Epsilon))))
		}
		if o.UseEnergy {
			if o.HTKCompat {
				row = append(row, float32(e))
			} else {
				row = append([]float32{float32(e)}, row...)
			}
		}
		out = append(out, row)
	}
	return out
}

func TestComputeErrors(t *testing.T) {
	ok := make([]float32, 16000)
	mod := func(f func(*Options)) Options {
		o := AudioSet(16000, 128)
		f(&o)
		return o
	}
	cases := []struct {
		name    string
		samples []float32
		opts    Options
		want    string
	}{
		{"zero options", ok, Options{}, "sample rate"},
		{"too short", ok[:399], AudioSet(16000, 128), "shorter than one frame"},
		{"empty", nil, AudioSet(16000, 128), "shorter than one frame"},
		{"nan sample", append(make([]float32, 500), float32(math.NaN())), AudioSet(16000, 128), "sample 500"},
		{"negative rate", ok, mod(func(o *Options) { o.SampleRate = -1 }), "sample rate"},
		{"nan rate", ok, mod(func(o *Options) { o.SampleRate = math.NaN() }), "sample rate"},
		{"zero shift", ok, mod(func(o *Options) { o.FrameShiftMs = 0 }), "shift"},
		{"tiny shift", ok, mod(func(o *Options) { o.FrameShiftMs = 0.01 }), "shift"},
		{"one-sample frame", ok, mod(func(o *Options) { o.FrameLengthMs = 0.1 }), "need at least 2"},
		{"huge frame", ok, mod(func(o *Options) { o.FrameLengthMs = 1e12 }), "too long"},
		{"odd fft", ok, mod(func(o *Options) { o.RoundToPowerOfTwo = false; o.FrameLengthMs = 25.0625 }), "must be even"},
		{"preemph", ok, mod(func(o *Options) { o.PreemphCoeff = 1.5 }), "pre-emphasis"},
		{"few bins", ok, mod(func(o *Options) { o.NumMelBins = 3 }), "mel bins"},
		{"window", ok, mod(func(o *Options) { o.Window = "kaiser" }), "window type"},
		{"dither", ok, mod(func(o *Options) { o.Dither = -1 }), "dither"},
		{"low above nyquist", ok, mod(func(o *Options) { o.LowFreq = 9000 }), "mel range"},
		{"high above nyquist", ok, mod(func(o *Options) { o.HighFreq = 9000 }), "mel range"},
		{"low above high", ok, mod(func(o *Options) { o.LowFreq = 4000; o.HighFreq = 3000 }), "mel range"},
		{"high offset below low", ok, mod(func(o *Options) { o.HighFreq = -7990 }), "mel range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Compute(c.samples, c.opts)
			if err == nil {
				t.Fatalf("no error, got %d frames", len(got))
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not mention %q", err, c.want)
			}
		})
	}
	if _, err := Compute(ok[:10], AudioSet(16000, 128)); !errors.Is(err, ErrTooShort) {
		t.Errorf("short input: %v, want ErrTooShort", err)
	}
}

func TestFrameCounts(t *testing.T) {
	x := make([]float32, 16079)
	for i := range x {
		x[i] = float32(math.Sin(float64(i) * 0.1))
	}
	for _, c := range []struct {
		n    int
		snip bool
		want int
	}{
		{400, true, 1}, {559, true, 1}, {560, true, 2}, {16000, true, 98},
		{400, false, 3}, {16000, false, 100}, {16079, false, 100},
	} {
		o := AudioSet(16000, 23)
		o.SnipEdges = c.snip
		got, err := Compute(x[:c.n], o)
		if err != nil {
			t.Fatalf("n=%d snip=%v: %v", c.n, c.snip, err)
		}
		if len(got) != c.want {
			t.Errorf("n=%d snip=%v: %d frames, want %d", c.n, c.snip, len(got), c.want)
		}
	}
}

func TestDither(t *testing.T) {
	x := make([]float32, 4000)
	o := AudioSet(16000, 23)
	o.Dither = 1
	a, err := Compute(x, o)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Compute(x, o)
	o.DitherSeed = 7
	c, _ := Compute(x, o)
	if a[3][5] != b[3][5] {
		t.Errorf("same seed gave %g and %g", a[3][5], b[3][5])
	}
	if a[3][5] == c[3][5] {
		t.Errorf("different seeds gave the same value %g", a[3][5])
	}
	// Silence without dither sits exactly on the floor; with dither it must not.
	if a[3][5] <= float32(math.Log(Epsilon)) {
		t.Errorf("dithered silence at the floor: %g", a[3][5])
	}
}

// TestFFTMatchesGoDSP checks the radix-2 transform against go-dsp's FFT
// on random input at every power-of-two size up to 4096.
func TestFFTMatchesGoDSP(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 2; n <= 4096; n <<= 1 {
		z := make([]complex128, n)
		for i := range z {
			z[i] = complex(rng.NormFloat64(), rng.NormFloat64())
		}
		want := fft.FFT(z)
		got := append([]complex128(nil), z...)
		newFFTPlan(n).transform(got)
		var maxd, scale float64
		for i := range got {
			maxd = max(maxd, cmplx.Abs(got[i]-want[i]))
			scale = max(scale, cmplx.Abs(want[i]))
		}
		if maxd > 1e-12*scale {
			t.Errorf("n=%d: max |Δ| %.3g (scale %.3g)", n, maxd, scale)
		}
	}
}

// BenchmarkComputeClip is the front end of one 10 s clip at the AudioSet
// settings (992 frames of 128 mel bins).
func BenchmarkComputeClip(b *testing.B) {
	x := make([]float32, 317920)
	for i := range x {
		x[i] = float32(0.3 * math.Sin(float64(i)*0.01))
	}
	opts := AudioSet(32000, 128)
	for b.Loop() {
		if _, err := Compute(x, opts); err != nil {
			b.Fatal(err)
		}
	}
}
