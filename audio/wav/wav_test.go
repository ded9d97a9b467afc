package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// build returns a WAV file: a "fmt " chunk with the given tag, rate,
// channels and bits, optional extra chunks, and data (raw bytes).
func build(tag uint16, rate, channels, bits int, data []byte, extra ...[]byte) []byte {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	b.WriteString("fmt ")
	binary.Write(&b, le, uint32(16))
	align := channels * bits / 8
	binary.Write(&b, le, []uint16{tag, uint16(channels)})
	binary.Write(&b, le, []uint32{uint32(rate), uint32(rate * align)})
	binary.Write(&b, le, []uint16{uint16(align), uint16(bits)})
	for _, e := range extra {
		b.Write(e)
	}
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func pcm16(v ...int16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(x))
	}
	return b
}

func readAll(t *testing.T, data []byte) ([]float32, Format) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadAll(r, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return s, r.Format()
}

func TestEncodings(t *testing.T) {
	f32 := make([]byte, 8)
	binary.LittleEndian.PutUint32(f32, math.Float32bits(0.25))
	binary.LittleEndian.PutUint32(f32[4:], math.Float32bits(-1))
	f64 := make([]byte, 16)
	binary.LittleEndian.PutUint64(f64, math.Float64bits(0.5))
	binary.LittleEndian.PutUint64(f64[8:], math.Float64bits(-0.125))
	i32 := make([]byte, 8)
	binary.LittleEndian.PutUint32(i32, uint32(1<<30))
	binary.LittleEndian.PutUint32(i32[4:], uint32(0x80000000))
	tests := []struct {
		name string
		data []byte
		want []float32
	}{
		{"pcm16 mono", build(1, 8000, 1, 16, pcm16(0, 16384, -32768, 32767)), []float32{0, 0.5, -1, 32767.0 / 32768}},
		{"pcm16 stereo", build(1, 16000, 2, 16, pcm16(100, 300, -32768, -32768)), []float32{200.0 / 32768, -1}},
		{"pcm8", build(1, 8000, 1, 8, []byte{128, 192, 0}), []float32{0, 0.5, -1}},
		{"pcm24", build(1, 48000, 1, 24, []byte{0, 0, 0x40, 0, 0, 0x80}), []float32{0.5, -1}},
		{"pcm32", build(1, 44100, 1, 32, i32), []float32{0.5, -1}},
		{"float32", build(3, 32000, 1, 32, f32), []float32{0.25, -1}},
		{"float64 stereo", build(3, 22050, 2, 64, f64), []float32{0.1875}},
		{"odd chunk skipped", build(1, 8000, 1, 16, pcm16(8192), append([]byte("LIST"), 3, 0, 0, 0, 'a', 'b', 'c', 0)), []float32{0.25}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := readAll(t, tc.data)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("sample %d = %g, want %g", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestExtensible(t *testing.T) {
	le := binary.LittleEndian
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVEfmt ")
	binary.Write(&b, le, uint32(40))
	binary.Write(&b, le, []uint16{0xFFFE, 1})
	binary.Write(&b, le, []uint32{24000, 48000})
	binary.Write(&b, le, []uint16{2, 16, 22, 16})
	binary.Write(&b, le, uint32(4))
	b.Write([]byte{1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71})
	b.WriteString("data")
	binary.Write(&b, le, uint32(2))
	b.Write(pcm16(-16384))
	got, f := readAll(t, b.Bytes())
	if f.Rate != 24000 || len(got) != 1 || got[0] != -0.5 {
		t.Fatalf("format %v, samples %v", f, got)
	}
}

func TestBadHeaders(t *testing.T) {
	mono := build(1, 8000, 1, 16, pcm16(0, 1, 2, 3))
	patch := func(b []byte, off int, v ...byte) []byte {
		c := bytes.Clone(b)
		copy(c[off:], v)
		return c
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "RIFF header"},
		{"not riff", patch(mono, 0, 'R', 'I', 'F', 'X'), "not a RIFF/WAVE"},
		{"no chunks", mono[:12], "no \"fmt \" chunk"},
		{"no data", mono[:36], "no \"data\" chunk"},
		{"compressed", patch(mono, 20, 2, 0), "compressed WAV"},
		{"12 bit", patch(mono, 34, 12, 0), "12-bit integer PCM"},
		{"float16", patch(patch(mono, 20, 3, 0), 34, 16, 0), "16-bit float"},
		{"zero channels", patch(mono, 22, 0, 0), "0 channels"},
		{"many channels", patch(mono, 22, 0, 1), "256 channels"},
		{"bad align", patch(mono, 32, 4, 0), "block align"},
		{"zero rate", patch(mono, 24, 0, 0, 0, 0), "sample rate 0"},
		{"huge rate", patch(mono, 24, 0, 0, 0, 0x10), "sample rate"},
		{"short fmt", patch(mono, 16, 8, 0, 0, 0), "\"fmt \" chunk of 8 bytes"},
		{"huge fmt", patch(mono, 16, 0, 0, 1, 0), "\"fmt \" chunk of 65536 bytes"},
		{"odd data", patch(mono, 40, 7, 0, 0, 0), "whole number"},
		{"truncated fmt", mono[:30], "unexpected EOF"},
		{"data first", append([]byte("RIFF\x00\x00\x00\x00WAVE"), mono[36:]...), "before"},
		{"huge skipped chunk", append(bytes.Clone(mono[:36]), 'J', 'U', 'N', 'K', 0xff, 0xff, 0xff, 0xff), "\"JUNK\" chunk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestTruncatedAndNonFinite(t *testing.T) {
	mono := build(1, 8000, 1, 16, pcm16(0, 1, 2, 3))
	r, err := NewReader(bytes.NewReader(mono[:len(mono)-3]))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]float32, 8)
	n, err := r.Read(buf)
	if n != 2 || err != nil {
		t.Fatalf("first read: %d, %v; want the 2 whole samples", n, err)
	}
	if _, err := r.Read(buf); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "5 of 8 bytes") {
		t.Fatalf("second read: %v, want truncated 5 of 8 bytes", err)
	}

	nan := make([]byte, 8)
	binary.LittleEndian.PutUint32(nan[4:], math.Float32bits(float32(math.Inf(1))))
	r, err = NewReader(bytes.NewReader(build(3, 8000, 1, 32, nan)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAll(r, 10); err == nil || !strings.Contains(err.Error(), "sample 1 is +Inf") {
		t.Fatalf("err = %v, want sample 1 is +Inf", err)
	}

	r, err = NewReader(bytes.NewReader(mono))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadAll(r, 3); err == nil || !strings.Contains(err.Error(), "exceed the limit") {
		t.Fatalf("err = %v, want a limit error", err)
	}
}

// TestUnknownSize reads a streamed file whose header says 0xFFFFFFFF:
// the data runs to the end.
func TestUnknownSize(t *testing.T) {
	data := build(1, 8000, 1, 16, pcm16(1, 2, 3, 4, 5))
	binary.LittleEndian.PutUint32(data[40:], 0xFFFFFFFF)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if r.Frames() != -1 {
		t.Errorf("Frames = %d, want -1", r.Frames())
	}
	s, err := ReadAll(r, 100)
	if err != nil || len(s) != 5 {
		t.Fatalf("%d samples, %v", len(s), err)
	}
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestStreamsInConstantMemory reads 256 MiB of samples in blocks: the
// reader must not allocate more than a small buffer (a whole-file read
// would take 256 MiB plus 512 MiB of floats).
func TestStreamsInConstantMemory(t *testing.T) {
	const size = 256 << 20
	hdr := build(1, 32000, 2, 16, nil)
	binary.LittleEndian.PutUint32(hdr[40:], size)
	r, err := NewReader(io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeros{}, size)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Frames() != size/4 || r.Duration() < 2090*time.Second {
		t.Fatalf("Frames %d, duration %v", r.Frames(), r.Duration())
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	buf := make([]float32, 32000)
	var total int64
	for {
		n, err := r.Read(buf)
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if total != size/4 {
		t.Errorf("read %d frames, want %d", total, size/4)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("reading allocated %d bytes, want under 4 MiB", alloc)
	}
}

func TestOpenRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.wav")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := Open(fifo)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(FIFO) = %v, want not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Open blocked on a FIFO")
	}
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Open(dir) = %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		if _, err := Open("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(/dev/zero) = %v", err)
		}
	}
}

func TestOpenChecksSize(t *testing.T) {
	data := build(1, 8000, 1, 16, pcm16(1, 2, 3, 4))
	path := filepath.Join(t.TempDir(), "cut.wav")
	if err := os.WriteFile(path, data[:len(data)-2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open(truncated) = %v", err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Frames() != 4 || f.Rate() != 8000 {
		t.Errorf("frames %d rate %d", f.Frames(), f.Rate())
	}
}

// FuzzReader feeds arbitrary bytes to the streaming reader in small
// blocks: it must not panic, must not return more samples than the input
// could hold, and every sample must be finite and within [-1, 1] for
// integer PCM.
func FuzzReader(f *testing.F) {
	f.Add(build(1, 8000, 1, 16, pcm16(0, 16384, -32768, 32767)))
	f.Add(build(1, 48000, 2, 24, []byte{0, 0, 0x40, 0, 0, 0x80}))
	f.Add(build(3, 32000, 1, 32, []byte{0, 0, 0x80, 0x3f}))
	f.Add(build(3, 32000, 1, 64, make([]byte, 16)))
	f.Add(build(1, 8000, 1, 8, []byte{1, 2, 3}, append([]byte("LIST"), 1, 0, 0, 0, 'x', 0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		if r.Rate() <= 0 || r.Rate() > MaxRate {
			t.Fatalf("rate %d without error", r.Rate())
		}
		buf := make([]float32, 7)
		total := 0
		for {
			n, err := r.Read(buf)
			for _, v := range buf[:n] {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("non-finite sample %v", v)
				}
				if !r.Format().Float && (v < -1 || v >= 1) {
					t.Fatalf("PCM sample %g outside [-1, 1)", v)
				}
			}
			total += n
			if err != nil {
				break
			}
		}
		if total > len(data) {
			t.Fatalf("%d samples from %d bytes", total, len(data))
		}
	})
}
