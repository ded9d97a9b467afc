package arwkv

import (
	"context"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// benchModel loads random weights at a released size.
func benchModel(b *testing.B, be kernels.Backend, size string) *Model {
	d, _ := ShapeDims(size)
	src, err := RandomSource(d, kernels.BF16, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(src, Released(), be)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

func benchClip(b *testing.B, be kernels.Backend, size string, batch int) {
	m := benchModel(b, be, size)
	in := make([]float32, m.Frames()*m.Bins())
	for i := range in {
		in[i] = float32(math.Sin(float64(i)))
	}
	inputs := make([][]float32, batch)
	for i := range inputs {
		inputs[i] = in
	}
	for b.Loop() {
		if _, err := m.Logits(context.Background(), inputs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*batch), "ms/clip")
}

// BenchmarkClipT times one 10 s clip at the A-RWKV-T size (C = 192) on
// the CPU backend, model only.
func BenchmarkClipT(b *testing.B) { benchClip(b, newCPU(b), "t", 1) }

// BenchmarkClipS times one clip at the S size (C = 384).
func BenchmarkClipS(b *testing.B) { benchClip(b, newCPU(b), "s", 1) }

// BenchmarkClipSBatch4 times four windows at once at the S size.
func BenchmarkClipSBatch4(b *testing.B) { benchClip(b, newCPU(b), "s", 4) }
