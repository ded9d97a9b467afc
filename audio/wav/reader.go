// Package wav reads and writes RIFF/WAVE audio files.
//
// A Reader streams samples from any io.Reader without holding the file in
// memory: integer PCM of 8, 16, 24 or 32 bits, IEEE float of 32 or 64
// bits, plain or WAVE_FORMAT_EXTENSIBLE, any number of channels (averaged
// to mono) at any rate. A Writer records 16-bit PCM so that a crash loses
// at most what came after its last Flush.
package wav

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Format describes the samples of a WAV file.
type Format struct {
	// Rate is the number of frames per second.
	Rate int
	// Channels per frame.
	Channels int
	// Bits per sample.
	Bits int
	// Float is true for IEEE floating-point samples, false for integers.
	Float bool
}

// String describes f as "16-bit PCM, 2 channels, 44100 Hz".
func (f Format) String() string {
	kind := "PCM"
	if f.Float {
		kind = "float"
	}
	ch := "mono"
	if f.Channels == 2 {
		ch = "stereo"
	} else if f.Channels != 1 {
		ch = fmt.Sprintf("%d channels", f.Channels)
	}
	return fmt.Sprintf("%d-bit %s, %s, %d Hz", f.Bits, kind, ch, f.Rate)
}

// Format tags.
const (
	tagPCM        = 1
	tagFloat      = 3
	tagExtensible = 0xFFFE
)

// maxChannels bounds the channels a file may declare.
const maxChannels = 64

// unknownSize is the data size that streaming writers leave in place;
// such a data chunk lasts to the end of the file.
const unknownSize = 0xFFFFFFFF

// A Reader reads the samples of a WAV file as mono float32 in [-1, 1].
type Reader struct {
	r      io.Reader
	format Format
	// frameBytes is the size of one frame.
	frameBytes int
	// left is the number of data bytes not yet read; -1 when the data
	// runs to the end of the input.
	left  int64
	total int64 // frames in the data chunk; -1 when unknown
	buf   []byte
	err   error
}

// NewReader reads the header of the WAV file in r, up to the start of its
// "data" chunk, skipping other chunks.
func NewReader(r io.Reader) (*Reader, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("wav: reading the RIFF header: %w", noEOF(err))
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("wav: not a RIFF/WAVE file (it starts %q)", hdr[:])
	}
	wr := &Reader{r: r}
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if !haveFmt {
					return nil, errors.New(`wav: no "fmt " chunk`)
				}
				return nil, errors.New(`wav: no "data" chunk`)
			}
			return nil, fmt.Errorf("wav: reading a chunk header: %w", noEOF(err))
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, errors.New(`wav: two "fmt " chunks`)
			}
			if size < 16 || size > 1024 {
				return nil, fmt.Errorf(`wav: "fmt " chunk of %d bytes, want 16 to 1024`, size)
			}
			body := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, fmt.Errorf(`wav: reading the "fmt " chunk: %w`, noEOF(err))
			}
			if err := wr.parseFmt(body[:size]); err != nil {
				return nil, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, errors.New(`wav: "data" chunk before the "fmt " chunk`)
			}
			wr.left, wr.total = size, size/int64(wr.frameBytes)
			if size == unknownSize || size == 0 {
				// Left by a writer that never finished: read to the end.
				wr.left, wr.total = -1, -1
			}
			return wr, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, fmt.Errorf("wav: skipping the %q chunk: %w", id, noEOF(err))
			}
		}
	}
}

func (wr *Reader) parseFmt(body []byte) error {
	tag := binary.LittleEndian.Uint16(body[0:2])
	f := Format{
		Channels: int(binary.LittleEndian.Uint16(body[2:4])),
		Rate:     int(binary.LittleEndian.Uint32(body[4:8])),
		Bits:     int(binary.LittleEndian.Uint16(body[14:16])),
	}
	align := int(binary.LittleEndian.Uint16(body[12:14]))
	if tag == tagExtensible {
		if len(body) < 40 {
			return fmt.Errorf(`wav: extensible "fmt " chunk of %d bytes, want at least 40`, len(body))
		}
		// cbSize, valid bits, channel mask, then the sub-format GUID,
		// whose first two bytes are the format tag.
		tag = binary.LittleEndian.Uint16(body[24:26])
	}
	switch tag {
	case tagPCM:
		if f.Bits != 8 && f.Bits != 16 && f.Bits != 24 && f.Bits != 32 {
			return fmt.Errorf("wav: %d-bit integer PCM is not supported (8, 16, 24 or 32 bits are)", f.Bits)
		}
	case tagFloat:
		if f.Bits != 32 && f.Bits != 64 {
			return fmt.Errorf("wav: %d-bit float samples are not supported (32 or 64 bits are)", f.Bits)
		}
		f.Float = true
	default:
		return fmt.Errorf("wav: format tag %#x is not supported: only uncompressed PCM and float WAV files are", tag)
	}
	if f.Channels < 1 || f.Channels > maxChannels {
		return fmt.Errorf("wav: %d channels, want 1 to %d", f.Channels, maxChannels)
	}
	if f.Rate < 1000 || f.Rate > 1_000_000 {
		return fmt.Errorf("wav: sample rate %d Hz, want 1000 to 1000000", f.Rate)
	}
	wr.frameBytes = f.Channels * f.Bits / 8
	if align != wr.frameBytes {
		return fmt.Errorf("wav: block align %d, want %d for %d channels of %d bits", align, wr.frameBytes, f.Channels, f.Bits)
	}
	wr.format = f
	return nil
}

// Format returns the file's sample format.
func (wr *Reader) Format() Format { return wr.format }

// Frames returns the number of frames the header declares, or -1 when the
// data runs to the end of the file (a recording that was not finished).
func (wr *Reader) Frames() int64 { return wr.total }

// Read reads up to len(dst) frames, each averaged over its channels, into
// dst. It returns the number of frames read and io.EOF at the end of the
// data; a data chunk shorter than its header says is an error wrapping
// io.ErrUnexpectedEOF.
func (wr *Reader) Read(dst []float32) (int, error) {
	if wr.err != nil {
		return 0, wr.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	want := int64(len(dst)) * int64(wr.frameBytes)
	if wr.left >= 0 {
		want = min(want, wr.left-wr.left%int64(wr.frameBytes))
		if want == 0 {
			wr.err = io.EOF
			return 0, io.EOF
		}
	}
	want = min(want, int64(64<<10/wr.frameBytes*wr.frameBytes))
	if want == 0 {
		want = int64(wr.frameBytes)
	}
	if int64(cap(wr.buf)) < want {
		wr.buf = make([]byte, want)
	}
	buf := wr.buf[:want]
	n, err := io.ReadFull(wr.r, buf)
	frames := n / wr.frameBytes
	if wr.left >= 0 {
		wr.left -= int64(n)
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if wr.left >= 0 || n%wr.frameBytes != 0 {
			wr.err = fmt.Errorf("wav: the data chunk ends early (%w)", io.ErrUnexpectedEOF)
		} else {
			wr.err = io.EOF
		}
	default:
		wr.err = fmt.Errorf("wav: reading samples: %w", err)
	}
	wr.decode(dst[:frames], buf[:frames*wr.frameBytes])
	if frames == 0 {
		return 0, wr.err
	}
	return frames, nil
}

// decode converts whole frames in b into mono samples in dst.
func (wr *Reader) decode(dst []float32, b []byte) {
	f := wr.format
	bytes := f.Bits / 8
	inv := 1 / float64(f.Channels)
	for i := range dst {
		frame := b[i*wr.frameBytes : (i+1)*wr.frameBytes]
		var sum float64
		for c := 0; c < f.Channels; c++ {
			s := frame[c*bytes : (c+1)*bytes]
			sum += sample(s, f.Bits, f.Float)
		}
		dst[i] = float32(sum * inv)
	}
}

// sample decodes one little-endian sample to [-1, 1]. Floats beyond it
// are clipped; non-finite ones read as 0.
func sample(s []byte, bits int, float bool) float64 {
	if float {
		var v float64
		if bits == 32 {
			v = float64(math.Float32frombits(binary.LittleEndian.Uint32(s)))
		} else {
			v = math.Float64frombits(binary.LittleEndian.Uint64(s))
		}
		if math.IsNaN(v) {
			return 0
		}
		return max(-1, min(1, v))
	}
	switch bits {
	case 8:
		return (float64(s[0]) - 128) / 128 // 8-bit WAV is unsigned
	case 16:
		return float64(int16(binary.LittleEndian.Uint16(s))) / (1 << 15)
	case 24:
		v := int32(uint32(s[0])<<8|uint32(s[1])<<16|uint32(s[2])<<24) >> 8
		return float64(v) / (1 << 23)
	default:
		return float64(int32(binary.LittleEndian.Uint32(s))) / (1 << 31)
	}
}

// ReadAll reads the whole WAV file in r as mono samples, refusing one of
// more than maxFrames frames (0 means no limit) with an error that says
// how long it is.
func ReadAll(r io.Reader, maxFrames int64) ([]float32, Format, error) {
	wr, err := NewReader(r)
	if err != nil {
		return nil, Format{}, err
	}
	f := wr.Format()
	if maxFrames > 0 && wr.Frames() > maxFrames {
		return nil, f, fmt.Errorf("wav: %d frames (%.0f s at %d Hz) is over the limit of %d", wr.Frames(), float64(wr.Frames())/float64(f.Rate), f.Rate, maxFrames)
	}
	var out []float32
	if n := wr.Frames(); n > 0 {
		out = make([]float32, 0, n)
	}
	chunk := make([]float32, 16384)
	for {
		n, err := wr.Read(chunk)
		out = append(out, chunk[:n]...)
		if maxFrames > 0 && int64(len(out)) > maxFrames {
			return nil, f, fmt.Errorf("wav: more than %d frames (%.0f s at %d Hz)", maxFrames, float64(maxFrames)/float64(f.Rate), f.Rate)
		}
		if err == io.EOF {
			return out, f, nil
		}
		if err != nil {
			return nil, f, err
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
