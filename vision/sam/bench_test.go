package sam

import (
	"encoding/binary"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// realConfig is SAM ViT-B at VisualRWKV-7's 1024-pixel input: a 64×64 patch
// grid, width 768, 12 heads, 14×14 windows and 4 global blocks.
func realConfig() Config {
	return Config{
		ImageSize: 1024, Patch: 16, EmbedDim: 768, Depth: 12, Heads: 12, MLPHidden: 3072,
		Window: 14, GlobalBlocks: []int{2, 5, 8, 11}, RelPos: true, NeckChannels: 256, Merge: 2,
	}
}

// BenchmarkBlockReal times one windowed and one global transformer block
// at SAM ViT-B's real sizes with random bf16 weights (the checkpoints'
// dtype) on the CPU backend, and the neck; the encoder runs 8 windowed
// blocks, 4 global ones and the neck.
func BenchmarkBlockReal(b *testing.B) {
	cfg := realConfig()
	for _, tc := range []struct {
		name   string
		global bool
	}{{"windowed", false}, {"global", true}} {
		b.Run(tc.name, func(b *testing.B) {
			be := testBackend(b)
			rng := rand.New(rand.NewPCG(1, 2))
			vec := func(n int, scale float32) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = (rng.Float32()*2 - 1) * scale
				}
				return v
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
				return nn.Dense{W: w, Bias: vec(rows, 0.1), In: cols, Out: rows}
			}
			D, M, G := cfg.EmbedDim, cfg.MLPHidden, cfg.Grid()
			hd := D / cfg.Heads
			span := cfg.Window
			if tc.global {
				span = G
			}
			blk := block{
				norm1W: vec(D, 1), norm1B: vec(D, 0.1), qkv: mat(3*D, D), proj: mat(D, D),
				relH: vec((2*span-1)*hd, 0.1), relW: vec((2*span-1)*hd, 0.1),
				norm2W: vec(D, 1), norm2B: vec(D, 0.1), lin1: mat(M, D), lin2: mat(D, M),
				span: span, global: tc.global,
			}
			e := &Encoder{cfg: cfg, be: be, eps: 1e-6, channels: 3}
			x := vec(G*G*D, 1)
			for b.Loop() {
				if err := e.blockForward(&blk, x); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("neck", func(b *testing.B) {
		be := testBackend(b)
		rng := rand.New(rand.NewPCG(3, 4))
		D, N, G := cfg.EmbedDim, cfg.NeckChannels, cfg.Grid()
		mat := func(rows, cols int) nn.Dense {
			raw := make([]byte, 2*rows*cols)
			for i := range rows * cols {
				binary.LittleEndian.PutUint16(raw[2*i:], half.F32ToBF16((rng.Float32()*2-1)*0.03))
			}
			w, err := be.Weight(kernels.BF16, rows, cols, raw)
			if err != nil {
				b.Fatal(err)
			}
			return nn.Dense{W: w, In: cols, Out: rows}
		}
		ones := make([]float32, N)
		for i := range ones {
			ones[i] = 1
		}
		e := &Encoder{cfg: cfg, be: be, eps: 1e-6, channels: 3,
			neck0: mat(N, D), neck1W: ones, neck1B: make([]float32, N),
			neck2: mat(N, N*9), neck3W: ones, neck3B: make([]float32, N)}
		x := make([]float32, G*G*D)
		for i := range x {
			x[i] = rng.Float32()*2 - 1
		}
		for b.Loop() {
			if _, err := e.neck(x); err != nil {
				b.Fatal(err)
			}
		}
	})
}
