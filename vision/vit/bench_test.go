package vit

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkBlockReal times one transformer block at the released towers'
// sizes (448×448 input: 1024 patches plus prefix tokens) with random
// weights; a whole tower runs FeatureBlock+1 such blocks.
func BenchmarkBlockReal(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{{"dinov2-L", DINOv2()}, {"siglip-so400m", SigLIP()}} {
		b.Run(tc.name, func(b *testing.B) {
			c := tc.cfg
			rng := rand.New(rand.NewPCG(1, 2))
			vec := func(n int, scale float32) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = (rng.Float32()*2 - 1) * scale
				}
				return v
			}
			D, H := c.Dim, c.MLPHidden
			blk := block{
				norm1W: vec(D, 1), norm1B: vec(D, 0.1), qkvW: vec(3*D*D, 0.03), qkvB: vec(3*D, 0.1),
				projW: vec(D*D, 0.03), projB: vec(D, 0.1), norm2W: vec(D, 1), norm2B: vec(D, 0.1),
				fc1W: vec(H*D, 0.03), fc1B: vec(H, 0.1), fc2W: vec(D*H, 0.03), fc2B: vec(D, 0.1),
			}
			if c.LayerScale {
				blk.ls1, blk.ls2 = vec(D, 0.1), vec(D, 0.1)
			}
			T := c.prefix() + c.Patches()
			x := vec(T*D, 1)
			s := newScratch(T, c)
			for b.Loop() {
				blk.forward(x, s, c)
			}
		})
	}
}
