package sam

import (
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
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
	be := testBackend(b)
	r := visiontest.NewRandom(b, be)
	vec, mat, dense := r.F32, r.BF16, r.Dense
	D, M, G, N := cfg.EmbedDim, cfg.MLPHidden, cfg.Grid(), cfg.NeckChannels
	hd := D / cfg.Heads
	s, err := newScratch(be, cfg)
	if err != nil {
		b.Fatal(err)
	}
	e := &Encoder{cfg: cfg, be: be, eps: 1e-6}
	for _, tc := range []struct {
		name   string
		global bool
	}{{"windowed", false}, {"global", true}} {
		b.Run(tc.name, func(b *testing.B) {
			span := cfg.Window
			if tc.global {
				span = G
			}
			blk := block{
				norm1W: vec(1, D, 1), norm1B: vec(1, D, 0.1), qkv: dense(3*D, D), proj: dense(D, D),
				relH: vec(2*span-1, hd, 0.1), relW: vec(2*span-1, hd, 0.1),
				norm2W: vec(1, D, 1), norm2B: vec(1, D, 0.1), lin1: dense(M, D), lin2: dense(D, M),
				span: span, global: tc.global,
			}
			if err := be.Upload(s.x, half.Bytes(r.Floats(s.x.Len(), 1))); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				e.blockForward(&blk, s)
				if err := be.Sync(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("neck", func(b *testing.B) {
		e.neck0, e.neck2 = mat(N, D), mat(N, N*9)
		e.neck1W, e.neck1B, e.neck3W, e.neck3B = vec(1, N, 1), vec(1, N, 0.1), vec(1, N, 1), vec(1, N, 0.1)
		for b.Loop() {
			e.neck(s)
			if err := be.Sync(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
