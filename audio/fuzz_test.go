package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/audio/wav"
)

// wavFile builds a WAV file of 16-bit samples at a rate with channels.
func wavFile(rate, channels int, pcm []int16) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF\x00\x00\x00\x00WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, []uint16{1, uint16(channels)})
	binary.Write(&b, le, []uint32{uint32(rate), uint32(rate * 2 * channels)})
	binary.Write(&b, le, []uint16{uint16(2 * channels), 16})
	b.WriteString("data")
	binary.Write(&b, le, uint32(2*len(pcm)))
	binary.Write(&b, le, pcm)
	return b.Bytes()
}

// FuzzTagWAV streams arbitrary bytes as a WAV file through the tagger (the
// path of `gooseapp tag` and POST /v1/audio/tags): no panic, and when the
// file is accepted, windows covering its whole length with probabilities
// in [0, 1].
func FuzzTagWAV(f *testing.F) {
	tone := make([]int16, 3000)
	for i := range tone {
		tone[i] = int16(8000 * math.Sin(float64(i)*0.1))
	}
	f.Add(wavFile(32000, 1, tone))
	f.Add(wavFile(8000, 2, tone))
	f.Add(wavFile(44100, 1, tone[:7]))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVE"))
	tg := openFixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := wav.NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		res, err := tg.TagReader(context.Background(), r, r.Format().Rate, TagOptions{Batch: 2})
		if err != nil {
			return
		}
		if res.Duration > 0 && (len(res.Windows) == 0 || res.Windows[len(res.Windows)-1].End != res.Duration) {
			t.Fatalf("duration %v, windows %v", res.Duration, windowTimes(res.Windows))
		}
		for _, w := range res.Windows {
			for _, p := range w.Probs {
				if !(p >= 0 && p <= 1) {
					t.Fatalf("probability %v", p)
				}
			}
		}
	})
}
