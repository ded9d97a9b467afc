package wav

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
)

// headerSize is the size of the canonical header a Writer writes: RIFF,
// a 16-byte "fmt " chunk and the "data" chunk header.
const headerSize = 44

// maxDataBytes is the most a RIFF size field can count.
const maxDataBytes = math.MaxUint32 - headerSize

// A Writer writes mono or interleaved 16-bit PCM to a WAV file. Samples
// are buffered; Flush writes them, patches the header's sizes and syncs
// the file, so that after a crash the file holds a valid WAV file of
// everything written up to the last Flush. Use it from one goroutine.
type Writer struct {
	f        *os.File
	bw       *bufio.Writer
	channels int
	bytes    int64 // data bytes written to bw
	buf      []byte
	err      error
}

// Create creates (or truncates) the file at path and writes a header for
// 16-bit PCM of the given rate and channels.
func Create(path string, rate, channels int) (*Writer, error) {
	if rate <= 0 || channels < 1 || channels > maxChannels {
		return nil, fmt.Errorf("wav: create %s: %d channels at %d Hz", path, channels, rate)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("wav: %w", err)
	}
	w := &Writer{f: f, bw: bufio.NewWriterSize(f, 64<<10), channels: channels}
	if _, err := f.Write(header(rate, channels, 0)); err != nil {
		f.Close()
		return nil, fmt.Errorf("wav: write %s: %w", path, err)
	}
	return w, nil
}

// header returns a canonical 44-byte header for data bytes of 16-bit PCM.
func header(rate, channels int, data int64) []byte {
	h := make([]byte, headerSize)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(data+headerSize-8))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], tagPCM)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(data))
	return h
}

// Write appends interleaved samples in [-1, 1] (clamped) to the file's
// buffer. Its length must be a whole number of frames.
func (w *Writer) Write(pcm []float32) error {
	if w.err != nil {
		return w.err
	}
	if len(pcm)%w.channels != 0 {
		return fmt.Errorf("wav: write %s: %d samples is not a whole number of %d-channel frames", w.f.Name(), len(pcm), w.channels)
	}
	if w.bytes+2*int64(len(pcm)) > maxDataBytes {
		w.err = fmt.Errorf("wav: write %s: the file would exceed the 4 GiB WAV limit", w.f.Name())
		return w.err
	}
	if cap(w.buf) < 2*len(pcm) {
		w.buf = make([]byte, 2*len(pcm))
	}
	b := w.buf[:2*len(pcm)]
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(toInt16(v)))
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = fmt.Errorf("wav: write %s: %w", w.f.Name(), err)
		return w.err
	}
	w.bytes += int64(len(b))
	return nil
}

// toInt16 converts a sample in [-1, 1] to 16 bits, rounding and clamping.
func toInt16(v float32) int16 {
	x := math.Round(float64(v) * 32768)
	switch {
	case math.IsNaN(x):
		return 0
	case x >= 32767:
		return 32767
	case x <= -32768:
		return -32768
	}
	return int16(x)
}

// Frames returns the number of frames written.
func (w *Writer) Frames() int64 { return w.bytes / int64(2*w.channels) }

// Flush writes buffered samples, patches the header's sizes to cover them
// and syncs the file to disk.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.err = fmt.Errorf("wav: write %s: %w", w.f.Name(), err)
		return w.err
	}
	if err := patchSizes(w.f, w.bytes); err != nil {
		w.err = fmt.Errorf("wav: write %s: %w", w.f.Name(), err)
		return w.err
	}
	if err := w.f.Sync(); err != nil {
		w.err = fmt.Errorf("wav: sync %s: %w", w.f.Name(), err)
		return w.err
	}
	return nil
}

// patchSizes writes the RIFF and data sizes of a canonical header.
func patchSizes(f *os.File, data int64) error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(data+headerSize-8))
	if _, err := f.WriteAt(b[:], 4); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b[:], uint32(data))
	_, err := f.WriteAt(b[:], 40)
	return err
}

// Close flushes the samples and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	if cerr := w.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("wav: close %s: %w", w.f.Name(), cerr)
	}
	return err
}

// Abort closes the file without flushing what is buffered.
func (w *Writer) Abort() error { return w.f.Close() }

// Repair makes the file at path, a recording whose writer did not finish
// (a crash), a valid WAV file of every whole frame it holds: it checks the
// canonical 16-bit PCM header a Writer writes, drops a partial last frame
// and patches the sizes. It returns the file's format and frame count.
func Repair(path string) (Format, int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair: %w", err)
	}
	defer f.Close()
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(f, h); err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: header: %w", path, noEOF(err))
	}
	wr, err := NewReader(bytes.NewReader(h))
	if err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: %w", path, err)
	}
	format := wr.Format()
	if string(h[36:40]) != "data" || format.Bits != 16 || format.Float {
		return Format{}, 0, fmt.Errorf("wav: repair %s: not a recording's header", path)
	}
	st, err := f.Stat()
	if err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: %w", path, err)
	}
	frame := int64(2 * format.Channels)
	data := min(st.Size()-headerSize, maxDataBytes)
	data -= data % frame
	if err := f.Truncate(headerSize + data); err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: %w", path, err)
	}
	if err := patchSizes(f, data); err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return Format{}, 0, fmt.Errorf("wav: repair %s: %w", path, err)
	}
	return format, data / frame, nil
}
