package decode

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// toneFit returns the amplitude of the f-Hz component of x and the RMS of
// the rest, over x[lo:hi].
func toneFit(x []float32, f float64, rate, lo, hi int) (amp, resid float64) {
	var ss, cc, sc, ys, yc float64
	for i := lo; i < hi; i++ {
		w := 2 * math.Pi * f * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss, cc, sc = ss+s*s, cc+c*c, sc+s*c
		ys, yc = ys+float64(x[i])*s, yc+float64(x[i])*c
	}
	det := ss*cc - sc*sc
	a, b := (ys*cc-yc*sc)/det, (yc*ss-ys*sc)/det
	var r float64
	for i := lo; i < hi; i++ {
		w := 2 * math.Pi * f * float64(i) / float64(rate)
		e := float64(x[i]) - a*math.Sin(w) - b*math.Cos(w)
		r += e * e
	}
	return math.Hypot(a, b), math.Sqrt(r / float64(hi-lo))
}

func TestFixtures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		rate    int
		samples int // expected length, ± slack
		slack   int
		format  string
		resid   float64
		ampTol  float64
	}{
		// FLAC is lossless: the 16-bit tone comes back to within rounding.
		{"tone1k-48k-stereo.flac", 48000, 24000, 0, "FLAC, 16-bit, stereo, 48000 Hz", 1e-4, 1e-3},
		// MP3 pads the start and end with encoder delay; lossy.
		{"tone1k-22k-mono.mp3", 22050, 22050, 3000, "MP3, 22050 Hz", 0.02, 0.05},
	} {
		f, err := Open(filepath.Join("testdata", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if f.Rate() != tc.rate || f.Format() != tc.format {
			t.Errorf("%s: %d Hz %q, want %d Hz %q", tc.file, f.Rate(), f.Format(), tc.rate, tc.format)
		}
		pcm, err := ReadAll(f, 0)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if d := len(pcm) - tc.samples; d < -tc.slack || d > tc.slack+2000 {
			t.Errorf("%s: %d samples, want about %d", tc.file, len(pcm), tc.samples)
		}
		lo, hi := len(pcm)/4, 3*len(pcm)/4
		amp, resid := toneFit(pcm, 1000, tc.rate, lo, hi)
		if math.Abs(amp-0.5) > tc.ampTol || resid > tc.resid {
			t.Errorf("%s: 1 kHz amplitude %.4f (want 0.5), residual %.2g (want ≤ %g)", tc.file, amp, resid, tc.resid)
		}
	}
}

func TestWAV(t *testing.T) {
	raw := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x04\x00\x00\x00\x00\x40\x00\xc0")
	s, err := New(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := ReadAll(s, 0)
	if err != nil || len(pcm) != 2 || pcm[0] != 0.5 || pcm[1] != -0.5 || s.Rate() != 8000 {
		t.Fatalf("%v %v", pcm, err)
	}
	if !strings.HasPrefix(s.Format(), "WAV, 16-bit PCM, mono") {
		t.Errorf("format %q", s.Format())
	}
	s, _ = New(bytes.NewReader(raw))
	if _, err := ReadAll(s, 1); err == nil {
		t.Error("limit: no error")
	}
}

func TestBadFiles(t *testing.T) {
	flacData, _ := os.ReadFile("testdata/tone1k-48k-stereo.flac")
	mp3Data, _ := os.ReadFile("testdata/tone1k-22k-mono.mp3")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "unsupported audio format"},
		{"text", []byte("hello, this is not audio"), "unsupported audio format"},
		{"ogg", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00"), "Goose reads WAV, FLAC and MP3"},
		{"flac header only", flacData[:30], "flac"},
		{"truncated flac", flacData[:len(flacData)/2], "flac: unexpected EOF"},
		{"flac cut in its first frame", flacData[:len(flacData)/3], "flac: the file ends after 0 of its 24000 samples"},
		{"garbled mp3", append(append([]byte{}, mp3Data[:200]...), bytes.Repeat([]byte{0xFF, 0xFB, 0x00}, 400)...), "mp3"},
		{"wav header only", []byte("RIFF\x00\x00\x00\x00WAVE"), "wav"},
	} {
		s, err := New(bytes.NewReader(tc.data))
		if err == nil {
			_, err = ReadAll(s, 0)
		}
		if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(strings.NewReader("nope")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("not ErrUnsupported: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.flac")); err == nil {
		t.Error("missing file: no error")
	}
	if _, err := Open(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tone1k-48k-stereo.flac", "tone1k-22k-mono.mp3"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 2048)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := New(bytes.NewReader(b))
		if err != nil {
			return
		}
		pcm, _ := ReadAll(s, 1<<20)
		for _, v := range pcm {
			if !(v >= -1 && v <= 1) {
				t.Fatalf("sample %g out of range", v)
			}
		}
	})
}
