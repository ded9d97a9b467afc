// Package fbank computes Kaldi-compatible log-mel filterbank features, the
// front end of the A-RWKV audio tagger (and of the AST/AuM recipe it follows).
//
// Compute reproduces torchaudio.compliance.kaldi.fbank step by step: framing
// (25 ms windows every 10 ms by default), optional dither, per-frame DC
// offset removal, pre-emphasis with replicate padding, a symmetric analysis
// window (povey, hanning, hamming, rectangular or blackman), zero padding to
// the next power of two, a power (or magnitude) spectrum, triangular mel
// filters spaced on Kaldi's mel scale 1127·ln(1+f/700), and the natural log
// floored at float32 machine epsilon. AudioSet returns the settings the
// A-RWKV and AST taggers use; their input is 16-bit PCM scaled to [-1, 1)
// (int16 / 32768), which is what package audio/wav returns.
//
// Power-of-two FFTs (the AudioSet settings' 1024 points) use this package's
// own radix-2 transform (see fftPlan for why); other sizes use
// github.com/mjibson/go-dsp/fft. Compute packs two real frames into one
// complex transform (one as the real part, one as the imaginary part) and
// separates their spectra by conjugate symmetry, halving the FFT work.
package fbank

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/mjibson/go-dsp/fft"
)

// Epsilon is the floor applied before every logarithm: float32 machine
// epsilon, as torchaudio's Kaldi compliance module uses.
const Epsilon = 1.1920928955078125e-07

// Window types accepted in Options.Window.
const (
	WindowPovey       = "povey"
	WindowHanning     = "hanning"
	WindowHamming     = "hamming"
	WindowRectangular = "rectangular"
	WindowBlackman    = "blackman"
)

// Options holds the filterbank settings. The field names and the values
// Defaults returns mirror the keyword arguments of
// torchaudio.compliance.kaldi.fbank. The zero Options is not valid; start
// from Defaults or AudioSet.
type Options struct {
	// SampleRate is the sampling rate of the input in Hz (sample_frequency).
	SampleRate float64
	// NumMelBins is the number of triangular mel filters (num_mel_bins); it must exceed 3.
	NumMelBins int
	// FrameLengthMs is the window length in milliseconds (frame_length).
	FrameLengthMs float64
	// FrameShiftMs is the hop between frames in milliseconds (frame_shift).
	FrameShiftMs float64
	// PreemphCoeff is the pre-emphasis coefficient in [0, 1] (preemphasis_coefficient).
	PreemphCoeff float64
	// Window is the analysis window type: one of the Window* constants (window_type).
	Window string
	// BlackmanCoeff is the constant term of the blackman window (blackman_coeff).
	BlackmanCoeff float64
	// LowFreq is the lower edge of the first mel filter in Hz (low_freq).
	LowFreq float64
	// HighFreq is the upper edge of the last mel filter in Hz; a value <= 0
	// is added to the Nyquist frequency (high_freq).
	HighFreq float64
	// Dither is the standard deviation of Gaussian noise added to every
	// sample before analysis (dither); 0 turns it off and keeps Compute deterministic.
	Dither float64
	// DitherSeed seeds the noise generator used when Dither is non-zero.
	DitherSeed uint64
	// RemoveDCOffset subtracts each frame's mean (remove_dc_offset).
	RemoveDCOffset bool
	// RoundToPowerOfTwo zero-pads each frame to the next power of two
	// before the FFT (round_to_power_of_two).
	RoundToPowerOfTwo bool
	// SnipEdges keeps only frames that fit inside the signal; when false the
	// signal is reflected at both ends and frames are centred on multiples
	// of the shift (snip_edges).
	SnipEdges bool
	// UsePower uses the power spectrum; when false the magnitude (use_power).
	UsePower bool
	// UseLogFbank takes the floored log of the filter energies (use_log_fbank).
	UseLogFbank bool
	// UseEnergy adds a log-energy column (use_energy): last when HTKCompat, first otherwise.
	UseEnergy bool
	// RawEnergy measures the energy before pre-emphasis and windowing (raw_energy).
	RawEnergy bool
	// EnergyFloor floors the log energy at log(EnergyFloor) when positive (energy_floor).
	EnergyFloor float64
	// HTKCompat places the energy column last (htk_compat).
	HTKCompat bool
	// SubtractMean subtracts each feature's mean over all frames (subtract_mean).
	SubtractMean bool
}

// Defaults returns torchaudio.compliance.kaldi.fbank's default options for
// audio sampled at rate Hz.
func Defaults(rate float64) Options {
	return Options{
		SampleRate:        rate,
		NumMelBins:        23,
		FrameLengthMs:     25,
		FrameShiftMs:      10,
		PreemphCoeff:      0.97,
		Window:            WindowPovey,
		BlackmanCoeff:     0.42,
		LowFreq:           20,
		HighFreq:          0,
		Dither:            0,
		RemoveDCOffset:    true,
		RoundToPowerOfTwo: true,
		SnipEdges:         true,
		UsePower:          true,
		UseLogFbank:       true,
		UseEnergy:         false,
		RawEnergy:         true,
		EnergyFloor:       1,
		HTKCompat:         false,
		SubtractMean:      false,
	}
}

// AudioSet returns the options of the A-RWKV / AST audio taggers:
// htk_compat=True, use_energy=False, window_type='hanning', dither=0,
// frame_shift=10 and num_mel_bins=bins. At 32 kHz (A-RWKV) the filters span
// 50–14000 Hz; at any other rate (AST at 16 kHz) they span 20 Hz to Nyquist.
func AudioSet(rate float64, bins int) Options {
	o := Defaults(rate)
	o.NumMelBins = bins
	o.Window = WindowHanning
	o.HTKCompat = true
	o.UseEnergy = false
	o.Dither = 0
	if rate == 32000 {
		o.LowFreq = 50
		o.HighFreq = 14000
	}
	return o
}

// MelScale maps a frequency in Hz to Kaldi's mel scale, 1127·ln(1 + f/700).
func MelScale(f float64) float64 { return 1127 * math.Log1p(f/700) }

// geometry holds the sizes derived from Options.
type geometry struct {
	win, shift, nfft int
}

// validate checks opts the way torchaudio does and returns the frame sizes.
func (o *Options) validate() (geometry, error) {
	var g geometry
	if !(o.SampleRate > 0) || math.IsInf(o.SampleRate, 0) {
		return g, fmt.Errorf("fbank: sample rate %v must be positive and finite", o.SampleRate)
	}
	if !(o.FrameLengthMs > 0) || !(o.FrameShiftMs > 0) || math.IsInf(o.FrameLengthMs, 0) || math.IsInf(o.FrameShiftMs, 0) {
		return g, fmt.Errorf("fbank: frame length %v ms and shift %v ms must be positive and finite", o.FrameLengthMs, o.FrameShiftMs)
	}
	win := o.SampleRate * o.FrameLengthMs * 0.001
	shift := o.SampleRate * o.FrameShiftMs * 0.001
	if win > 1<<24 || shift > 1<<24 {
		return g, fmt.Errorf("fbank: frame of %v samples is too long", win)
	}
	g.win, g.shift = int(win), int(shift)
	if g.win < 2 {
		return g, fmt.Errorf("fbank: frame length %v ms at %v Hz gives %d samples, need at least 2", o.FrameLengthMs, o.SampleRate, g.win)
	}
	if g.shift < 1 {
		return g, fmt.Errorf("fbank: frame shift %v ms at %v Hz gives no samples", o.FrameShiftMs, o.SampleRate)
	}
	g.nfft = g.win
	if o.RoundToPowerOfTwo {
		g.nfft = 1
		for g.nfft < g.win {
			g.nfft <<= 1
		}
	}
	if g.nfft%2 != 0 {
		return g, fmt.Errorf("fbank: FFT size %d must be even (set RoundToPowerOfTwo or use an even frame length)", g.nfft)
	}
	if !(o.PreemphCoeff >= 0 && o.PreemphCoeff <= 1) {
		return g, fmt.Errorf("fbank: pre-emphasis coefficient %v not in [0, 1]", o.PreemphCoeff)
	}
	if o.NumMelBins <= 3 {
		return g, fmt.Errorf("fbank: %d mel bins, need more than 3", o.NumMelBins)
	}
	if o.NumMelBins > 1<<16 {
		return g, fmt.Errorf("fbank: %d mel bins is too many", o.NumMelBins)
	}
	switch o.Window {
	case WindowPovey, WindowHanning, WindowHamming, WindowRectangular, WindowBlackman:
	default:
		return g, fmt.Errorf("fbank: unknown window type %q", o.Window)
	}
	if math.IsNaN(o.Dither) || math.IsInf(o.Dither, 0) || o.Dither < 0 {
		return g, fmt.Errorf("fbank: dither %v must be a finite non-negative number", o.Dither)
	}
	if math.IsNaN(o.EnergyFloor) || math.IsInf(o.EnergyFloor, 0) {
		return g, fmt.Errorf("fbank: energy floor %v must be finite", o.EnergyFloor)
	}
	nyquist := 0.5 * o.SampleRate
	low, high := o.LowFreq, o.HighFreq
	if high <= 0 {
		high += nyquist
	}
	if !(low >= 0 && low < nyquist) || !(high > 0 && high <= nyquist) || !(low < high) {
		return g, fmt.Errorf("fbank: mel range low %v Hz, high %v Hz (as given %v) invalid for Nyquist %v Hz", low, high, o.HighFreq, nyquist)
	}
	return g, nil
}

// window returns the symmetric analysis window of length n.
func window(kind string, n int, blackman float64) []float64 {
	w := make([]float64, n)
	a := 2 * math.Pi / float64(n-1)
	for i := range w {
		x := float64(i)
		switch kind {
		case WindowHanning:
			w[i] = 0.5 - 0.5*math.Cos(a*x)
		case WindowPovey:
			w[i] = math.Pow(0.5-0.5*math.Cos(a*x), 0.85)
		case WindowHamming:
			w[i] = 0.54 - 0.46*math.Cos(a*x)
		case WindowRectangular:
			w[i] = 1
		case WindowBlackman:
			w[i] = blackman - 0.5*math.Cos(a*x) + (0.5-blackman)*math.Cos(2*a*x)
		}
	}
	return w
}

// melFilter is one triangular filter: weights for FFT bins start..start+len(w)-1.
type melFilter struct {
	start int
	w     []float64
}

// melBanks builds the filters of torchaudio's get_mel_banks (without VTLN):
// triangles in mel over FFT bins 0..nfft/2-1; the Nyquist bin gets weight 0.
func melBanks(bins, nfft int, rate, low, high float64) []melFilter {
	if high <= 0 {
		high += 0.5 * rate
	}
	nbins := nfft / 2
	binWidth := rate / float64(nfft)
	melLow, melHigh := MelScale(low), MelScale(high)
	delta := (melHigh - melLow) / float64(bins+1)
	mel := make([]float64, nbins)
	for k := range mel {
		mel[k] = MelScale(binWidth * float64(k))
	}
	filters := make([]melFilter, bins)
	for b := range filters {
		left := melLow + float64(b)*delta
		center := left + delta
		right := center + delta
		first, last := -1, -1
		var w []float64
		for k := 0; k < nbins; k++ {
			up := (mel[k] - left) / (center - left)
			down := (right - mel[k]) / (right - center)
			v := math.Max(0, math.Min(up, down))
			if v > 0 {
				if first < 0 {
					first = k
				}
				last = k
			}
			w = append(w, v)
		}
		if first < 0 {
			filters[b] = melFilter{}
			continue
		}
		filters[b] = melFilter{start: first, w: w[first : last+1]}
	}
	return filters
}

// minPairsPerWorker is the fewest frame pairs worth a goroutine.
const minPairsPerWorker = 32

// ErrTooShort is wrapped by Compute when the input holds fewer samples than one frame.
var ErrTooShort = errors.New("fbank: input shorter than one frame")

// Compute returns the Kaldi filterbank features of samples (scaled like
// int16/32768 for the AudioSet settings) as frames × features, where
// features is NumMelBins plus one when UseEnergy is set.
func Compute(samples []float32, opts Options) ([][]float32, error) {
	g, err := opts.validate()
	if err != nil {
		return nil, err
	}
	n := len(samples)
	if n < g.win {
		return nil, fmt.Errorf("%w: %d samples, frame is %d (%v ms at %v Hz)", ErrTooShort, n, g.win, opts.FrameLengthMs, opts.SampleRate)
	}
	for i, s := range samples {
		if math.IsNaN(float64(s)) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("fbank: sample %d is %v", i, s)
		}
	}

	// Frame start positions and the sample index of each padded position.
	var frames, pad int
	if opts.SnipEdges {
		frames = 1 + (n-g.win)/g.shift
	} else {
		frames = (n + g.shift/2) / g.shift
		pad = g.win/2 - g.shift/2
	}
	// at maps a position in the (reflect-padded) signal to a sample index.
	// torchaudio pads the left with x[pad-1..0] and the right with the whole
	// signal reversed, so both ends repeat the edge sample.
	at := func(p int) int {
		i := p - pad
		if i < 0 {
			i = -i - 1
		}
		if i >= n {
			i = 2*n - 1 - i
		}
		return i
	}

	var noise *rand.Rand
	if opts.Dither != 0 {
		noise = rand.New(rand.NewPCG(opts.DitherSeed, 0x9e3779b97f4a7c15))
	}
	win := window(opts.Window, g.win, opts.BlackmanCoeff)
	filters := melBanks(opts.NumMelBins, g.nfft, opts.SampleRate, opts.LowFreq, opts.HighFreq)
	nbins := g.nfft/2 + 1
	nfeat := opts.NumMelBins
	if opts.UseEnergy {
		nfeat++
	}
	melOff := 0
	if opts.UseEnergy && !opts.HTKCompat {
		melOff = 1
	}

	out := make([][]float32, frames)
	flat := make([]float32, frames*nfeat)
	for i := range out {
		out[i] = flat[i*nfeat : (i+1)*nfeat : (i+1)*nfeat]
	}

	// prepare fills buf (length nfft) with frame f after dither, DC
	// removal, pre-emphasis, windowing and zero padding, and returns the
	// frame's log energy when UseEnergy is set.
	prepare := func(f int, buf []float64) float64 {
		x := buf[:g.win]
		start := f * g.shift
		for j := range x {
			x[j] = float64(samples[at(start+j)])
		}
		if noise != nil {
			for j := range x {
				x[j] += noise.NormFloat64() * opts.Dither
			}
		}
		if opts.RemoveDCOffset {
			var mean float64
			for _, v := range x {
				mean += v
			}
			mean /= float64(len(x))
			for j := range x {
				x[j] -= mean
			}
		}
		var energy float64
		if opts.UseEnergy && opts.RawEnergy {
			energy = logEnergy(x, opts.EnergyFloor)
		}
		if c := opts.PreemphCoeff; c != 0 {
			for j := len(x) - 1; j > 0; j-- {
				x[j] -= c * x[j-1]
			}
			x[0] -= c * x[0]
		}
		for j := range x {
			x[j] *= win[j]
		}
		for j := g.win; j < len(buf); j++ {
			buf[j] = 0
		}
		if opts.UseEnergy && !opts.RawEnergy {
			energy = logEnergy(buf, opts.EnergyFloor)
		}
		return energy
	}

	// finish turns one frame's spectrum into features.
	finish := func(f int, spec []float64, energy float64) {
		row := out[f]
		if !opts.UsePower {
			for k, v := range spec {
				spec[k] = math.Sqrt(v)
			}
		}
		for b, flt := range filters {
			var e float64
			for j, w := range flt.w {
				e += w * spec[flt.start+j]
			}
			if opts.UseLogFbank {
				e = math.Log(math.Max(e, Epsilon))
			}
			row[melOff+b] = float32(e)
		}
		if opts.UseEnergy {
			if opts.HTKCompat {
				row[nfeat-1] = float32(energy)
			} else {
				row[0] = float32(energy)
			}
		}
	}

	N := g.nfft
	var plan *fftPlan
	if isPowerOfTwo(N) {
		plan = newFFTPlan(N)
	}
	// run computes the frame pairs starting at frames lo, lo+2, … < hi
	// with buffers of its own.
	run := func(lo, hi int) {
		a := make([]float64, N)
		b := make([]float64, N)
		z := make([]complex128, N)
		spec := make([]float64, nbins)
		for f := lo; f < hi; f += 2 {
			ea := prepare(f, a)
			pair := f+1 < frames
			var eb float64
			if pair {
				eb = prepare(f+1, b)
			} else {
				clear(b)
			}
			for j := range z {
				z[j] = complex(a[j], b[j])
			}
			// Z = FFT(a + i·b); A_k = (Z_k + conj Z_{N-k})/2, B_k = (Z_k − conj Z_{N-k})/(2i).
			Z := z
			if plan != nil {
				plan.transform(z)
			} else {
				Z = fft.FFT(z)
			}
			for k := 0; k < nbins; k++ {
				zk, zc := Z[k], conj(Z[(N-k)%N])
				A := (zk + zc) * 0.5
				spec[k] = real(A)*real(A) + imag(A)*imag(A)
			}
			finish(f, spec, ea)
			if pair {
				for k := 0; k < nbins; k++ {
					zk, zc := Z[k], conj(Z[(N-k)%N])
					B := (zk - zc) * complex(0, -0.5)
					spec[k] = real(B)*real(B) + imag(B)*imag(B)
				}
				finish(f+1, spec, eb)
			}
		}
	}
	// Frames are independent (without dither, whose random sequence runs
	// in frame order): long inputs are split over the cores, in ranges of
	// whole pairs. Every frame is computed the same way either way.
	pairs := (frames + 1) / 2
	workers := min(runtime.GOMAXPROCS(0), pairs/minPairsPerWorker)
	if noise != nil || workers <= 1 {
		run(0, frames)
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			lo, hi := 2*(w*pairs/workers), 2*((w+1)*pairs/workers)
			wg.Go(func() { run(lo, min(hi, frames)) })
		}
		wg.Wait()
	}

	if opts.SubtractMean {
		for c := 0; c < nfeat; c++ {
			var mean float64
			for _, row := range out {
				mean += float64(row[c])
			}
			mean /= float64(frames)
			for _, row := range out {
				row[c] = float32(float64(row[c]) - mean)
			}
		}
	}
	return out, nil
}

func conj(c complex128) complex128 { return complex(real(c), -imag(c)) }

// logEnergy returns ln(max(Σx², eps)), floored at ln(floor) when floor > 0.
func logEnergy(x []float64, floor float64) float64 {
	var s float64
	for _, v := range x {
		s += v * v
	}
	e := math.Log(math.Max(s, Epsilon))
	if floor > 0 {
		e = math.Max(e, math.Log(floor))
	}
	return e
}
