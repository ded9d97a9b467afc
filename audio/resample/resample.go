// Package resample converts audio between sampling rates with a
// band-limited (windowed-sinc) interpolator.
//
// Each output sample at input time t is Σ x[j]·h(t−j) over the input
// samples within W of t, where h is a sinc low-pass at a little under the
// lower of the two Nyquist frequencies, shaped by a Kaiser window (β = 10,
// about 100 dB of stop-band attenuation). Content above the new Nyquist
// frequency is removed rather than folded back (no aliasing), and a tone
// below it keeps its frequency and amplitude. For a rational ratio whose
// reduced denominator is small (48 kHz or 44.1 kHz to 32 kHz, any multiple
// of 8 kHz) the filter taps are tabulated once per phase; other ratios
// evaluate them per output sample.
//
// The filter is not causal: output n sits at input time n·from/to, with no
// delay, so a Resampler holds back the last W input samples until it has
// seen enough of the future or is flushed.
package resample

import (
	"fmt"
	"math"
)

const (
	// zeros is the number of sinc zero crossings on each side of the
	// centre; with rolloff and beta it sets the transition band.
	zeros = 32
	// rolloff places the cut-off just below the lower Nyquist frequency,
	// so the transition band ends near it.
	rolloff = 0.91
	// beta is the Kaiser window's shape parameter.
	beta = 10.0
	// maxTable caps the phases tabulated for one ratio.
	maxTable = 4096
)

// Resampler converts a stream of mono samples from one rate to another.
// The zero value is not usable; call New.
type Resampler struct {
	from, to int
	l, m     int64 // reduced ratio: output n is at input time n·m/l
	fc       float64
	w        float64 // half-width of the filter in input samples
	r        int     // taps on each side: ceil(w)
	table    []float32
	win      kaiser

	buf    []float32 // input samples from absolute index base on
	base   int64
	i      int64 // next output's integer input position (absolute)
	p      int64 // its phase: time = i + p/l
	in     int64 // input samples written
	out    int64 // output samples produced
	closed bool
}

// New returns a resampler from rate from to rate to (in Hz).
func New(from, to int) (*Resampler, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("resample: rates %d Hz to %d Hz: rates must be positive", from, to)
	}
	if from > 1<<24 || to > 1<<24 {
		return nil, fmt.Errorf("resample: rates %d Hz to %d Hz: too high", from, to)
	}
	g := gcd(int64(from), int64(to))
	rs := &Resampler{from: from, to: to, l: int64(to) / g, m: int64(from) / g}
	rs.fc = rolloff * math.Min(1, float64(to)/float64(from))
	rs.w = zeros / rs.fc
	rs.r = int(math.Ceil(rs.w))
	rs.win = newKaiser(beta)
	if from != to && rs.l <= maxTable {
		taps := 2*rs.r + 1
		rs.table = make([]float32, int(rs.l)*taps)
		for p := int64(0); p < rs.l; p++ {
			frac := float64(p) / float64(rs.l)
			row := rs.table[int(p)*taps : int(p+1)*taps]
			for k := range row {
				row[k] = float32(rs.h(frac - float64(k-rs.r)))
			}
		}
	}
	// Samples before the start are zeros.
	rs.buf = make([]float32, rs.r)
	rs.base = -int64(rs.r)
	return rs, nil
}

// h is the filter's impulse response at τ input samples from the centre.
func (rs *Resampler) h(tau float64) float64 {
	if math.Abs(tau) >= rs.w {
		return 0
	}
	x := rs.fc * tau
	s := 1.0
	if x != 0 {
		s = math.Sin(math.Pi*x) / (math.Pi * x)
	}
	return rs.fc * s * rs.win.at(tau/rs.w)
}

// Latency is the number of input samples the resampler holds back before
// it can produce the outputs they affect.
func (rs *Resampler) Latency() int { return rs.r }

// Write resamples src, appending the output samples now complete to dst,
// and returns the extended slice.
func (rs *Resampler) Write(dst, src []float32) []float32 {
	if rs.closed {
		return dst
	}
	if rs.from == rs.to {
		rs.in += int64(len(src))
		rs.out += int64(len(src))
		return append(dst, src...)
	}
	rs.buf = append(rs.buf, src...)
	rs.in += int64(len(src))
	return rs.drain(dst, rs.in)
}

// Flush ends the stream: it produces the outputs that waited for future
// samples (taking them as silence), so that the total output is
// ceil(inputs·to/from) samples, and appends them to dst. Later writes are
// ignored.
func (rs *Resampler) Flush(dst []float32) []float32 {
	if rs.closed {
		return dst
	}
	rs.closed = true
	if rs.from == rs.to {
		return dst
	}
	// Every output before the end needs at most r samples past it.
	rs.buf = append(rs.buf, make([]float32, rs.r+1)...)
	return rs.drain(dst, rs.in+int64(rs.r)+1)
}

// drain produces every output whose taps end before absolute input index
// avail, then drops the input no later output needs.
func (rs *Resampler) drain(dst []float32, avail int64) []float32 {
	taps := 2*rs.r + 1
	limit := ceilDiv(rs.in*rs.l, rs.m) // outputs of the whole signal so far, at most
	if !rs.closed {
		limit = math.MaxInt64
	}
	for rs.i+int64(rs.r) < avail && rs.out < limit {
		start := int(rs.i - int64(rs.r) - rs.base)
		x := rs.buf[start : start+taps]
		var acc float32
		if rs.table != nil {
			acc = dot(rs.table[int(rs.p)*taps:int(rs.p+1)*taps], x)
		} else {
			frac := float64(rs.p) / float64(rs.l)
			var sum float64
			for k := range x {
				sum += rs.h(frac-float64(k-rs.r)) * float64(x[k])
			}
			acc = float32(sum)
		}
		dst = append(dst, acc)
		rs.out++
		rs.p += rs.m
		rs.i += rs.p / rs.l
		rs.p %= rs.l
	}
	// Keep input from the next output's first tap on.
	if keep := rs.i - int64(rs.r); keep > rs.base {
		drop := int(min(keep-rs.base, int64(len(rs.buf))))
		n := copy(rs.buf, rs.buf[drop:])
		rs.buf = rs.buf[:n]
		rs.base += int64(drop)
	}
	return dst
}

// dot is Σ a[k]·b[k] over a, in four interleaved sums.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	k := 0
	for ; k+4 <= len(a); k += 4 {
		s0 += a[k] * b[k]
		s1 += a[k+1] * b[k+1]
		s2 += a[k+2] * b[k+2]
		s3 += a[k+3] * b[k+3]
	}
	for ; k < len(a); k++ {
		s0 += a[k] * b[k]
	}
	return (s0 + s1) + (s2 + s3)
}

// Resample converts a whole signal from rate from to rate to. The result
// has ceil(len(pcm)·to/from) samples; sample n is at time n/to.
func Resample(pcm []float32, from, to int) ([]float32, error) {
	rs, err := New(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]float32, 0, ceilDiv(int64(len(pcm))*int64(to), int64(from))+1)
	out = rs.Write(out, pcm)
	return rs.Flush(out), nil
}

// kaiser is a Kaiser window, w(x) = I0(β√(1−x²))/I0(β) for |x| ≤ 1.
type kaiser struct{ beta, norm float64 }

func newKaiser(beta float64) kaiser { return kaiser{beta, 1 / besselI0(beta)} }

func (k kaiser) at(x float64) float64 {
	if x <= -1 || x >= 1 {
		return 0
	}
	return besselI0(k.beta*math.Sqrt(1-x*x)) * k.norm
}

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (converges quickly for the arguments used here).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
