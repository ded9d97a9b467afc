// Package decode reads audio files of the formats Goose imports — WAV,
// FLAC and MP3 — as a stream of mono float32 samples at the file's own
// rate. It recognises a file by its first bytes, not its name.
//
// WAV goes through package wav. FLAC and MP3 use well-kept pure-Go
// decoders (github.com/mewkiz/flac, github.com/hajimehoshi/go-mp3), so
// the engine and the server build without cgo. A decoder that panics on a
// malformed file is caught: every failure is an error naming the format.
package decode

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hajimehoshi/go-mp3"
	"github.com/mewkiz/flac"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/internal/regfile"
)

// ErrUnsupported is wrapped by the error for a file that is not WAV, FLAC
// or MP3.
var ErrUnsupported = errors.New("unsupported audio format")

// A Stream is decoded audio: mono samples in [-1, 1] at Rate.
type Stream interface {
	// Read reads up to len(dst) samples into dst; io.EOF at the end.
	Read(dst []float32) (int, error)
	// Rate is the sampling rate in Hz.
	Rate() int
	// Format names the file's format and layout, e.g. "FLAC, 24-bit,
	// stereo, 48000 Hz".
	Format() string
}

// New recognises the format of r by its first bytes and returns a stream
// of its samples.
func New(r io.Reader) (s Stream, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(12)
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("%s: malformed file (decoder failed: %v)", kind(head), p)
		}
	}()
	switch kind(head) {
	case "WAV":
		wr, err := wav.NewReader(br)
		if err != nil {
			return nil, err
		}
		return wavStream{wr}, nil
	case "FLAC":
		fs, err := flac.New(br)
		if err != nil {
			return nil, fmt.Errorf("flac: %w", err)
		}
		return newFLAC(fs)
	case "MP3":
		d, err := mp3.NewDecoder(br)
		if err != nil {
			return nil, fmt.Errorf("mp3: %w", err)
		}
		return &mp3Stream{d: d}, nil
	}
	return nil, fmt.Errorf("%w (it starts %q): Goose reads WAV, FLAC and MP3 files", ErrUnsupported, head)
}

// kind names the format a file starting with head is in, or "".
func kind(head []byte) string {
	switch {
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return "WAV"
	case bytes.HasPrefix(head, []byte("fLaC")):
		return "FLAC"
	case bytes.HasPrefix(head, []byte("ID3")):
		return "MP3"
	case len(head) >= 2 && head[0] == 0xFF && head[1]&0xE0 == 0xE0 && head[1]&0x06 != 0:
		// MPEG audio frame sync with a layer (a file without an ID3 tag).
		return "MP3"
	}
	return ""
}

// File is an open audio file.
type File struct {
	Stream
	f *os.File
}

// Open opens the audio file at path. It refuses anything but a regular
// file before reading it (a FIFO or a device would block or never end;
// see internal/regfile). Errors name the file.
func Open(path string) (*File, error) {
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := New(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return &File{Stream: s, f: f}, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadAll reads the whole stream, refusing more than maxSamples samples
// (0: no limit) with an error that gives the limit in seconds. A decoding
// error is returned with the samples read before it.
func ReadAll(s Stream, maxSamples int) ([]float32, error) {
	var out []float32
	chunk := make([]float32, 32768)
	for {
		n, err := s.Read(chunk)
		out = append(out, chunk[:n]...)
		if maxSamples > 0 && len(out) > maxSamples {
			return nil, fmt.Errorf("the audio is longer than %d s, the most Goose imports", maxSamples/s.Rate())
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

type wavStream struct{ r *wav.Reader }

func (w wavStream) Read(dst []float32) (int, error) { return w.r.Read(dst) }
func (w wavStream) Rate() int                       { return w.r.Format().Rate }
func (w wavStream) Format() string                  { return "WAV, " + w.r.Format().String() }

// flacStream decodes FLAC frames one at a time.
type flacStream struct {
	s       *flac.Stream
	rate    int
	bits    int
	ch      int
	total   uint64    // samples per channel the header declares; 0 if unknown
	done    uint64    // samples per channel decoded
	pending []float32 // decoded samples not yet read
	err     error
}

func newFLAC(s *flac.Stream) (*flacStream, error) {
	info := s.Info
	if info.SampleRate == 0 || info.NChannels == 0 || info.BitsPerSample < 4 || info.BitsPerSample > 32 {
		return nil, fmt.Errorf("flac: unsupported stream: %d channels of %d bits at %d Hz", info.NChannels, info.BitsPerSample, info.SampleRate)
	}
	return &flacStream{s: s, rate: int(info.SampleRate), bits: int(info.BitsPerSample), ch: int(info.NChannels), total: info.NSamples}, nil
}

func (f *flacStream) Rate() int { return f.rate }
func (f *flacStream) Format() string {
	return fmt.Sprintf("FLAC, %d-bit, %s, %d Hz", f.bits, channels(f.ch), f.rate)
}

func (f *flacStream) Read(dst []float32) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			f.err = fmt.Errorf("flac: malformed frame (decoder failed: %v)", p)
			err = f.err
		}
	}()
	for n < len(dst) {
		if len(f.pending) == 0 {
			if f.err != nil {
				break
			}
			fr, err := f.s.ParseNext()
			if err == io.EOF {
				f.err = io.EOF
				if f.done < f.total {
					// The decoder reports a frame cut short as the end.
					f.err = fmt.Errorf("flac: the file ends after %d of its %d samples (%w)", f.done, f.total, io.ErrUnexpectedEOF)
				}
				break
			}
			if err != nil {
				f.err = fmt.Errorf("flac: %w", err)
				break
			}
			if len(fr.Subframes) != f.ch {
				f.err = fmt.Errorf("flac: a frame of %d channels in a %d-channel stream", len(fr.Subframes), f.ch)
				break
			}
			count := len(fr.Subframes[0].Samples)
			f.done += uint64(count)
			scale := 1 / (float64(int64(1)<<(f.bits-1)) * float64(f.ch))
			f.pending = f.pending[:0]
			for i := 0; i < count; i++ {
				var sum int64
				for _, sf := range fr.Subframes {
					if i < len(sf.Samples) {
						sum += int64(sf.Samples[i])
					}
				}
				f.pending = append(f.pending, float32(max(-1, min(1, float64(sum)*scale))))
			}
			continue
		}
		k := copy(dst[n:], f.pending)
		n += k
		f.pending = f.pending[k:]
	}
	if n == 0 && f.err != nil {
		return 0, f.err
	}
	return n, nil
}

// mp3Stream averages go-mp3's 16-bit stereo output to mono.
type mp3Stream struct {
	d   *mp3.Decoder
	buf []byte
	odd []byte // a partial frame from the last read
	err error
}

func (m *mp3Stream) Rate() int { return m.d.SampleRate() }
func (m *mp3Stream) Format() string {
	return fmt.Sprintf("MP3, %d Hz", m.d.SampleRate())
}

func (m *mp3Stream) Read(dst []float32) (n int, err error) {
	defer func() {
		if p := recover(); p != nil {
			m.err = fmt.Errorf("mp3: malformed frame (decoder failed: %v)", p)
			n, err = 0, m.err
		}
	}()
	if m.err != nil {
		return 0, m.err
	}
	if len(dst) == 0 {
		return 0, nil
	}
	want := 4 * len(dst)
	if cap(m.buf) < want {
		m.buf = make([]byte, want)
	}
	b := append(m.buf[:0], m.odd...)
	for len(b) < 4 {
		k, rerr := m.d.Read(m.buf[len(b):want])
		b = m.buf[:len(b)+k]
		if rerr == io.EOF {
			m.err = io.EOF
			break
		}
		if rerr != nil {
			m.err = fmt.Errorf("mp3: %w", rerr)
			break
		}
	}
	frames := len(b) / 4
	for i := 0; i < frames; i++ {
		l := int16(uint16(b[4*i]) | uint16(b[4*i+1])<<8)
		r := int16(uint16(b[4*i+2]) | uint16(b[4*i+3])<<8)
		dst[i] = float32(int32(l)+int32(r)) / 65536
	}
	m.odd = append(m.odd[:0], b[4*frames:]...)
	if frames == 0 {
		return 0, m.err
	}
	return frames, nil
}

func channels(n int) string {
	switch n {
	case 1:
		return "mono"
	case 2:
		return "stereo"
	}
	return fmt.Sprintf("%d channels", n)
}
