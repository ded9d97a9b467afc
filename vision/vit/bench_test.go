package vit

import (
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// BenchmarkBlockReal times one transformer block at the released towers'
// sizes (448×448 input: 1024 patches plus prefix tokens) with random bf16
// weights (the checkpoints' dtype) on the CPU backend; a whole tower runs
// FeatureBlock+1 such blocks.
func BenchmarkBlockReal(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"dinov2-L", DINOv2()}, {"siglip-so400m", SigLIP()}} {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.cfg
			be := testBackend(b)
			r := visiontest.NewRandom(b, be)
			vec := func(n int, scale float32) kernels.Tensor { return r.F32(1, n, scale) }
			D, H := c.Dim, c.MLPHidden
			blk := block{
				norm1W: vec(D, 1), norm1B: vec(D, 0.1), qkv: r.Dense(3*D, D), proj: r.Dense(D, D),
				norm2W: vec(D, 1), norm2B: vec(D, 0.1), fc1: r.Dense(H, D), fc2: r.Dense(D, H),
			}
			if c.LayerScale {
				blk.ls1, blk.ls2 = vec(D, 0.1), vec(D, 0.1)
			}
			s, err := newScratch(be, c)
			if err != nil {
				b.Fatal(err)
			}
			if err := be.Upload(s.x, half.Bytes(r.Floats(s.x.Len(), 1))); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				blk.forward(be, s, c)
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
