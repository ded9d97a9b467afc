package wav

import (
	"bytes"
	"encoding/binary"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// file builds a WAV file: tag, channels, rate, bits, the sample bytes and
// extra chunks before "fmt ".
func file(tag uint16, channels, rate, bits int, data []byte, extensible bool, extra ...[]byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF\x00\x00\x00\x00WAVE")
	for _, e := range extra {
		b.Write(e)
	}
	fmtLen := 16
	if extensible {
		fmtLen = 40
	}
	b.WriteString("fmt ")
	binary.Write(&b, binary.LittleEndian, uint32(fmtLen))
	t := tag
	if extensible {
		t = tagExtensible
	}
	align := channels * bits / 8
	b.Write(le(t, uint16(channels), uint32(rate), uint32(rate*align), uint16(align), uint16(bits)))
	if extensible {
		b.Write(le(uint16(22), uint16(bits), uint32(3), tag))
		b.Write(make([]byte, 14)) // rest of the GUID
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func le(vals ...any) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

func TestReadFormats(t *testing.T) {
	i24 := func(v int32) []byte { return []byte{byte(v), byte(v >> 8), byte(v >> 16)} }
	cases := []struct {
		name string
		wav  []byte
		rate int
		want []float32
	}{
		{"pcm8 mono", file(tagPCM, 1, 8000, 8, []byte{128, 192, 0}, false), 8000, []float32{0, 0.5, -1}},
		{"pcm16 mono", file(tagPCM, 1, 16000, 16, le(int16(0), int16(16384), int16(-32768)), false), 16000, []float32{0, 0.5, -1}},
		{"pcm16 stereo", file(tagPCM, 2, 44100, 16, le(int16(16384), int16(-16384), int16(16384), int16(16384)), false), 44100, []float32{0, 0.5}},
		{"pcm24 stereo", file(tagPCM, 2, 48000, 24, bytes.Join([][]byte{i24(1 << 22), i24(1 << 22), i24(-1 << 23), i24(0)}, nil), false), 48000, []float32{0.5, -0.5}},
		{"pcm32 mono", file(tagPCM, 1, 96000, 32, le(int32(1<<30), int32(-1<<31)), false), 96000, []float32{0.5, -1}},
		{"float32 stereo", file(tagFloat, 2, 32000, 32, le(float32(0.25), float32(0.75), float32(-1), float32(1)), false), 32000, []float32{0.5, 0}},
		{"float64 mono", file(tagFloat, 1, 22050, 64, le(0.125, -0.5, math.NaN()), false), 22050, []float32{0.125, -0.5, 0}},
		{"extensible float", file(tagFloat, 1, 48000, 32, le(float32(0.5)), true), 48000, []float32{0.5}},
		{"extensible pcm24", file(tagPCM, 1, 48000, 24, i24(-1<<22), true), 48000, []float32{-0.5}},
		{"skips chunks", file(tagPCM, 1, 8000, 16, le(int16(8192)), false, []byte("LIST\x03\x00\x00\x00abc\x00")), 8000, []float32{0.25}},
	}
	for _, tc := range cases {
		got, f, err := ReadAll(bytes.NewReader(tc.wav), 0)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if f.Rate != tc.rate || len(got) != len(tc.want) {
			t.Errorf("%s: %d Hz, %v; want %d Hz, %v", tc.name, f.Rate, got, tc.rate, tc.want)
			continue
		}
		for i := range got {
			if math.Abs(float64(got[i]-tc.want[i])) > 1e-6 {
				t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestReadErrors(t *testing.T) {
	good := file(tagPCM, 1, 8000, 16, le(int16(1), int16(2)), false)
	cases := []struct {
		name string
		wav  []byte
		want string
	}{
		{"empty", nil, "RIFF header"},
		{"not wav", []byte("ID3\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), "not a RIFF/WAVE"},
		{"adpcm", file(2, 1, 8000, 4, []byte{1, 2}, false), "format tag 0x2"},
		{"12 bit", file(tagPCM, 1, 8000, 12, []byte{1, 2}, false), "12-bit integer"},
		{"float16", file(tagFloat, 1, 8000, 16, []byte{1, 2}, false), "16-bit float"},
		{"no channels", file(tagPCM, 0, 8000, 16, nil, false), "0 channels"},
		{"rate", file(tagPCM, 1, 7, 16, nil, false), "sample rate 7"},
		{"truncated data", good[:len(good)-1], "ends early"},
		{"no data", good[:36], `no "data"`},
		{"no fmt", []byte("RIFF\x00\x00\x00\x00WAVE"), `no "fmt "`},
	}
	for _, tc := range cases {
		_, _, err := ReadAll(bytes.NewReader(tc.wav), 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if _, _, err := ReadAll(bytes.NewReader(good), 1); err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("limit: %v", err)
	}
}

// TestStreams reads a long file in small pieces through a reader that
// returns few bytes at a time: the Reader never needs the whole file.
func TestStreams(t *testing.T) {
	n := 100000
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(i)
	}
	raw := file(tagPCM, 1, 16000, 16, le(pcm), false)
	wr, err := NewReader(io.LimitReader(&oneByteReader{bytes.NewReader(raw)}, int64(len(raw))))
	if err != nil {
		t.Fatal(err)
	}
	if wr.Frames() != int64(n) {
		t.Fatalf("Frames %d, want %d", wr.Frames(), n)
	}
	buf := make([]float32, 777)
	got := 0
	for {
		k, err := wr.Read(buf)
		for i := range k {
			if want := float32(int16(got+i)) / 32768; buf[i] != want {
				t.Fatalf("frame %d: %g, want %g", got+i, buf[i], want)
			}
		}
		got += k
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if got != n {
		t.Fatalf("read %d frames, want %d", got, n)
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 3 {
		p = p[:3]
	}
	return o.r.Read(p)
}

func TestWriterRoundTripAndCrash(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rec.wav.part")
	w, err := Create(path, 32000, 1)
	if err != nil {
		t.Fatal(err)
	}
	in := []float32{0, 0.5, -0.5, 1.5, -2, float32(math.NaN()), 1.0 / 32768}
	if err := w.Write(in); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Written after the last flush and never flushed: a crash loses it.
	if err := w.Write([]float32{0.25, 0.25}); err != nil {
		t.Fatal(err)
	}
	// Simulate a crash: the file as it is on disk now, plus half a frame
	// of garbage (a partial write).
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	got, f, err := ReadAll(bytes.NewReader(raw), 0)
	if err != nil {
		t.Fatalf("reading the file after a flush: %v", err)
	}
	want := []float32{0, 0.5, -0.5, 32767.0 / 32768, -1, 0, 1.0 / 32768}
	if f.Rate != 32000 || f.Channels != 1 || len(got) != len(want) {
		t.Fatalf("after flush: %v %v, want %v", f, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("after flush: %v, want %v", got, want)
		}
	}

	// A crash after more data reached the disk but before the header was
	// patched: Repair counts what is there.
	if err := os.WriteFile(path, append(raw, 1, 2, 3), 0o644); err != nil {
		t.Fatal(err)
	}
	f, frames, err := Repair(path)
	if err != nil || frames != int64(len(want)+1) || f.Rate != 32000 {
		t.Fatalf("Repair: %v, %d frames, %v", f, frames, err)
	}
	raw, _ = os.ReadFile(path)
	got, _, err = ReadAll(bytes.NewReader(raw), 0)
	if err != nil || len(got) != len(want)+1 {
		t.Fatalf("after Repair: %d samples, %v", len(got), err)
	}

	if err := os.WriteFile(path, []byte("RIFF junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Repair(path); err == nil {
		t.Error("Repair of a broken header: no error")
	}
	w2, _ := Create(filepath.Join(dir, "s.wav"), 48000, 2)
	if err := w2.Write([]float32{1, 2, 3}); err == nil {
		t.Error("odd sample count for stereo: no error")
	}
	if err := w2.Close(); err != nil || w2.Frames() != 0 {
		t.Error(err)
	}
	if _, err := Create(filepath.Join(dir, "no", "such", "dir.wav"), 32000, 1); err == nil {
		t.Error("Create in a missing directory: no error")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(file(tagPCM, 2, 44100, 16, le(int16(1), int16(2)), false))
	f.Add(file(tagPCM, 1, 48000, 24, []byte{1, 2, 3}, true))
	f.Add(file(tagFloat, 1, 8000, 64, le(0.5), false))
	f.Fuzz(func(t *testing.T, b []byte) {
		pcm, _, err := ReadAll(bytes.NewReader(b), 1<<20)
		if err == nil {
			for _, v := range pcm {
				if math.IsNaN(float64(v)) || v < -1.0001 || v > 1.0001 {
					t.Fatalf("sample %g out of range", v)
				}
			}
		}
	})
}
