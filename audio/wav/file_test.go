package wav

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pcm16File is a mono 16-bit WAV file holding v.
func pcm16File(rate int, v ...int16) []byte {
	data := make([]byte, 2*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(x))
	}
	return file(tagPCM, 1, rate, 16, data, false)
}

// TestOpenRefusesNonRegular: a FIFO used to block the open (and a device
// to be read forever); Open refuses both before opening them.
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

// TestOpenChecksSize: a header that declares more samples than the file
// holds is refused at Open, naming the file.
func TestOpenChecksSize(t *testing.T) {
	data := pcm16File(8000, 1, 2, 3, 4)
	path := filepath.Join(t.TempDir(), "cut.wav")
	if err := os.WriteFile(path, data[:len(data)-2], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), path) {
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
	if f.Frames() != 4 || f.Rate() != 8000 || f.Path() != path {
		t.Errorf("frames %d rate %d path %q", f.Frames(), f.Rate(), f.Path())
	}
}

// zeros is an endless source of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestStreamsInConstantMemory reads 256 MiB of samples in blocks: the
// reader allocates a small buffer, not the file (a whole-file read took
// 6.2 GB for 1 GiB of data).
func TestStreamsInConstantMemory(t *testing.T) {
	const size = 256 << 20
	hdr := file(tagPCM, 2, 32000, 16, nil, false)
	binary.LittleEndian.PutUint32(hdr[len(hdr)-4:], size)
	r, err := NewReader(io.MultiReader(bytes.NewReader(hdr), io.LimitReader(zeros{}, size)))
	if err != nil {
		t.Fatal(err)
	}
	if r.Frames() != size/4 {
		t.Fatalf("Frames %d", r.Frames())
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
