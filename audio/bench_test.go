package audio

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// BenchmarkTagMinuteS tags one minute of audio (11 windows of 10 s every
// 5 s) end to end — front end, batches, model — at the A-RWKV-S size on
// the CPU backend, random weights, in batches of the tagger's default (0)
// and of 2 and 4 windows; gooseapp bench --audio times ten minutes.
func BenchmarkTagMinuteS(b *testing.B) {
	be, err := cpu.New(cpu.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	d, _ := arwkv.ShapeDims("s")
	src, err := arwkv.RandomSource(d, kernels.BF16, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := arwkv.Load(src, arwkv.Released(), be)
	if err != nil {
		b.Fatal(err)
	}
	tg := NewTagger(m)
	defer tg.Close()
	rate := tg.Info().SampleRate
	rng := rand.New(rand.NewPCG(3, 3))
	pcm := make([]float32, 60*rate)
	for i := range pcm {
		pcm[i] = float32(0.2*math.Sin(float64(i)*0.05) + 0.05*rng.NormFloat64())
	}
	ctx := context.Background()
	for _, batch := range []int{0, 2, 4} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var windows int
			for b.Loop() {
				r, err := tg.Tag(ctx, pcm, rate, TagOptions{Batch: batch})
				if err != nil {
					b.Fatal(err)
				}
				windows = len(r.Windows)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*windows), "ms/window")
		})
	}
}
