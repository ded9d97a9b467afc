// Package wav reads RIFF/WAVE audio a block at a time, so that a recording
// of any length is processed in constant memory: the header is read and
// checked first, then Read returns the samples of the "data" chunk in
// caller-sized blocks.
//
// Supported encodings: integer PCM of 8 (unsigned), 16, 24 and 32 bits and
// IEEE float of 32 and 64 bits, as plain format tags or inside
// WAVE_FORMAT_EXTENSIBLE; any sampling rate from 1 Hz to MaxRate; any
// number of channels up to MaxChannels, downmixed to mono by averaging.
// Integer samples are scaled to [-1, 1) by 2^(bits−1) (int16/32768 for
// 16-bit, as torchaudio loads them).
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Limits on a header's fields. Real recordings are far inside them; a
// corrupt header outside them is refused before anything is allocated.
const (
	MaxRate     = 1_000_000 // samples per second
	MaxChannels = 64
	maxFmt      = 1024 // bytes of a "fmt " chunk
	maxSkip     = 1 << 30
)

// Format describes a WAV file's sample encoding.
type Format struct {
	Rate     int  // samples per second per channel
	Channels int  // interleaved channels in the file
	Bits     int  // bits per sample: 8, 16, 24, 32 (or 64 for float)
	Float    bool // IEEE float samples (format 3)
}

// frameBytes is the size of one frame (one sample of every channel).
func (f Format) frameBytes() int { return f.Channels * f.Bits / 8 }

func (f Format) String() string {
	kind := "PCM"
	if f.Float {
		kind = "float"
	}
	return fmt.Sprintf("%d-bit %s, %d Hz, %d channel(s)", f.Bits, kind, f.Rate, f.Channels)
}

// ErrTruncated is wrapped by Read when the data chunk ends before its
// declared size.
var ErrTruncated = errors.New("wav: data chunk truncated")

// unknownSize is the data size streaming writers put in a header they
// cannot rewrite: the data runs to the end of the file.
const unknownSize = 0xFFFFFFFF

// Reader decodes the samples of a WAV stream as mono float32.
type Reader struct {
	r      io.Reader
	format Format
	frame  int   // bytes per frame
	size   int64 // declared data bytes, or -1 when it runs to EOF
	left   int64 // data bytes not yet read (when size >= 0)
	read   int64 // frames returned so far
	buf    []byte
	err    error // sticky
}

// NewReader reads the RIFF header and the chunks up to "data" and checks
// the format. It reads nothing of the samples.
func NewReader(r io.Reader) (*Reader, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("wav: reading RIFF header: %w", noEOF(err))
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("wav: not a RIFF/WAVE file (starts %q)", hdr[:])
	}
	var (
		f       Format
		haveFmt bool
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if !haveFmt {
					return nil, errors.New("wav: no \"fmt \" chunk")
				}
				return nil, errors.New("wav: no \"data\" chunk")
			}
			return nil, fmt.Errorf("wav: reading chunk header: %w", noEOF(err))
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, errors.New("wav: two \"fmt \" chunks")
			}
			if size < 16 || size > maxFmt {
				return nil, fmt.Errorf("wav: \"fmt \" chunk of %d bytes, want 16 to %d", size, maxFmt)
			}
			body := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, fmt.Errorf("wav: reading \"fmt \" chunk: %w", noEOF(err))
			}
			var err error
			if f, err = parseFmt(body[:size]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New("wav: \"data\" chunk before \"fmt \" chunk")
			}
			rd := &Reader{r: r, format: f, frame: f.frameBytes(), size: size, left: size}
			if size == unknownSize {
				rd.size, rd.left = -1, -1
			} else if size%int64(rd.frame) != 0 {
				return nil, fmt.Errorf("wav: data chunk of %d bytes is not a whole number of %d-byte frames", size, rd.frame)
			}
			return rd, nil
		default:
			if size > maxSkip {
				return nil, fmt.Errorf("wav: %q chunk of %d bytes before the samples", id, size)
			}
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("wav: skipping %q chunk: %w", id, noEOF(err))
			}
		}
	}
}

// parseFmt checks a "fmt " chunk body.
func parseFmt(body []byte) (Format, error) {
	le := binary.LittleEndian
	tag := le.Uint16(body[0:2])
	f := Format{
		Channels: int(le.Uint16(body[2:4])),
		Rate:     int(le.Uint32(body[4:8])),
		Bits:     int(le.Uint16(body[14:16])),
	}
	align := int(le.Uint16(body[12:14]))
	if tag == 0xFFFE {
		// WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, channel mask, sub-format GUID.
		if len(body) < 40 {
			return f, fmt.Errorf("wav: extensible \"fmt \" chunk of %d bytes, want at least 40", len(body))
		}
		tag = le.Uint16(body[24:26])
	}
	switch tag {
	case 1:
		if f.Bits != 8 && f.Bits != 16 && f.Bits != 24 && f.Bits != 32 {
			return f, fmt.Errorf("wav: %d-bit integer PCM is not supported (8, 16, 24 or 32)", f.Bits)
		}
	case 3:
		f.Float = true
		if f.Bits != 32 && f.Bits != 64 {
			return f, fmt.Errorf("wav: %d-bit float is not supported (32 or 64)", f.Bits)
		}
	default:
		return f, fmt.Errorf("wav: format tag %#x is neither integer PCM (1) nor float (3): compressed WAV is not supported", tag)
	}
	if f.Channels < 1 || f.Channels > MaxChannels {
		return f, fmt.Errorf("wav: %d channels, want 1 to %d", f.Channels, MaxChannels)
	}
	if f.Rate < 1 || f.Rate > MaxRate {
		return f, fmt.Errorf("wav: sample rate %d Hz, want 1 to %d", f.Rate, MaxRate)
	}
	if align != f.frameBytes() {
		return f, fmt.Errorf("wav: block align %d, want %d for %d channels of %d bits", align, f.frameBytes(), f.Channels, f.Bits)
	}
	return f, nil
}

// Format returns the file's encoding.
func (r *Reader) Format() Format { return r.format }

// Rate returns the sampling rate in Hz.
func (r *Reader) Rate() int { return r.format.Rate }

// Frames returns the number of frames (mono samples after downmixing) the
// header declares, or -1 when the data runs to the end of the stream.
func (r *Reader) Frames() int64 {
	if r.size < 0 {
		return -1
	}
	return r.size / int64(r.frame)
}

// Duration returns the declared length, or -1 when unknown.
func (r *Reader) Duration() time.Duration {
	n := r.Frames()
	if n < 0 {
		return -1
	}
	return time.Duration(float64(n) / float64(r.format.Rate) * float64(time.Second))
}

// Read decodes up to len(dst) frames into dst as mono samples and returns
// how many it wrote. At the end of the data it returns io.EOF; a data
// chunk shorter than declared gives an error wrapping ErrTruncated after
// the last whole frame; a non-finite float sample is an error naming it.
func (r *Reader) Read(dst []float32) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	want := int64(len(dst)) * int64(r.frame)
	if r.left >= 0 {
		if r.left == 0 {
			r.err = io.EOF
			return 0, io.EOF
		}
		want = min(want, r.left)
	}
	want = min(want, 1<<20-(1<<20)%int64(r.frame))
	if int64(cap(r.buf)) < want {
		r.buf = make([]byte, want)
	}
	buf := r.buf[:want]
	got, err := io.ReadFull(r.r, buf)
	whole := got - got%r.frame
	n := whole / r.frame
	if derr := r.decode(dst[:n], buf[:whole]); derr != nil {
		r.err = derr
		return 0, derr
	}
	r.read += int64(n)
	if r.left >= 0 {
		r.left -= int64(got)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if r.size >= 0 {
			r.err = fmt.Errorf("%w: %d of %d bytes", ErrTruncated, r.size-r.left, r.size)
		} else if got%r.frame != 0 {
			r.err = fmt.Errorf("%w: %d stray bytes after the last whole frame", ErrTruncated, got%r.frame)
		} else {
			r.err = io.EOF
		}
		if n == 0 {
			return 0, r.err
		}
	default:
		r.err = fmt.Errorf("wav: reading samples: %w", err)
		if n == 0 {
			return 0, r.err
		}
	}
	return n, nil
}

// decode converts whole frames of raw to mono.
func (r *Reader) decode(dst []float32, raw []byte) error {
	f := r.format
	ch := f.Channels
	bps := f.Bits / 8
	le := binary.LittleEndian
	inv := 1 / float64(ch)
	for i := range dst {
		fr := raw[i*r.frame:]
		var sum float64
		for c := range ch {
			p := fr[c*bps:]
			var v float64
			switch {
			case f.Float && bps == 4:
				v = float64(math.Float32frombits(le.Uint32(p)))
			case f.Float:
				v = math.Float64frombits(le.Uint64(p))
			case bps == 1:
				v = (float64(p[0]) - 128) / 128
			case bps == 2:
				v = float64(int16(le.Uint16(p))) / (1 << 15)
			case bps == 3:
				v = float64(int32(uint32(p[0])<<8|uint32(p[1])<<16|uint32(p[2])<<24)>>8) / (1 << 23)
			default:
				v = float64(int32(le.Uint32(p))) / (1 << 31)
			}
			sum += v
		}
		m := sum * inv
		if math.IsNaN(m) || math.IsInf(m, 0) || math.Abs(m) > math.MaxFloat32 {
			return fmt.Errorf("wav: sample %d is %v", r.read+int64(i), m)
		}
		dst[i] = float32(m)
	}
	return nil
}

// ReadAll reads the remaining samples of r, refusing more than maxFrames
// (so a hostile header or an endless stream cannot exhaust memory).
func ReadAll(r *Reader, maxFrames int64) ([]float32, error) {
	if n := r.Frames(); n > maxFrames {
		return nil, fmt.Errorf("wav: %d samples (%v) exceed the limit of %d", n, r.Duration(), maxFrames)
	}
	var out []float32
	if n := r.Frames(); n > 0 {
		out = make([]float32, 0, n)
	}
	buf := make([]float32, 1<<14)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if int64(len(out)) > maxFrames {
			return nil, fmt.Errorf("wav: more than %d samples", maxFrames)
		}
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// noEOF reports a premature end of input as io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
