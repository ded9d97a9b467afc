package vit

import (
	"encoding/binary"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
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
			rng := rand.New(rand.NewPCG(1, 2))
			vals := func(n int, scale float32) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = (rng.Float32()*2 - 1) * scale
				}
				return v
			}
			vec := func(n int, scale float32) kernels.Tensor {
				t, err := be.Alloc(kernels.F32, 1, n)
				if err == nil {
					err = be.Upload(t, nn.FloatBytes(vals(n, scale)))
				}
				if err != nil {
					b.Fatal(err)
				}
				return t
			}
			mat := func(rows, cols int) nn.Dense {
				raw := make([]byte, 2*rows*cols)
				for i := range rows * cols {
					binary.LittleEndian.PutUint16(raw[2*i:], half.F32ToBF16((rng.Float32()*2-1)*0.03))
				}
				w, err := be.Weight(kernels.BF16, rows, cols, raw)
				if err != nil {
					b.Fatal(err)
				}
				return nn.Dense{W: w, B: vec(rows, 0.1)}
			}
			D, H := c.Dim, c.MLPHidden
			blk := block{
				norm1W: vec(D, 1), norm1B: vec(D, 0.1), qkv: mat(3*D, D), proj: mat(D, D),
				norm2W: vec(D, 1), norm2B: vec(D, 0.1), fc1: mat(H, D), fc2: mat(D, H),
			}
			if c.LayerScale {
				blk.ls1, blk.ls2 = vec(D, 0.1), vec(D, 0.1)
			}
			s, err := newScratch(be, c)
			if err != nil {
				b.Fatal(err)
			}
			if err := be.Upload(s.x, nn.FloatBytes(vals(s.x.Len(), 1))); err != nil {
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
