// Package vit runs the two timm Vision Transformers of VisualRWKV-7's image
// side, the DINOv2 (with registers and LayerScale) and SigLIP towers, in
// float32: the matrix products (patch embedding, qkv, proj, MLP) run on a
// kernels.Backend with the weights in their checkpoint dtype, the rest
// (norms, attention, GELU, residuals) in Go.
//
// A Tower returns the patch tokens at the output of one block (VisualRWKV-7
// takes the second-to-last block), with the prefix tokens (class token and
// registers) dropped and no final norm. The math lives in small functions
// (patchEmbed, layerNorm, attention, mlp, layerScale) so that it can be moved
// to a compute backend piece by piece.
package vit

import (
	"context"
	"fmt"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
)

// Config holds a tower's sizes. Head counts are not stored in checkpoints,
// so they come from here; every other size is checked against the tensors.
// The JSON names are those of VisualRWKV-7 configuration files.
type Config struct {
	ImageSize int `json:"image_size"` // input side in pixels (square image)
	Patch     int `json:"patch"`      // patch side and stride of the patch-embedding convolution
	Dim       int `json:"embed_dim"`  // embedding width
	Depth     int `json:"depth"`      // blocks in the checkpoint
	Heads     int `json:"heads"`      // attention heads; must divide Dim
	MLPHidden int `json:"mlp_hidden"` // hidden width of each block's MLP
	Registers int `json:"reg_tokens"` // register tokens after the class token (DINOv2 reg4: 4)
	// ClassToken says the tower has a class token (DINOv2: yes, SigLIP: no).
	ClassToken bool `json:"class_token"`
	// LayerScale says each residual branch is scaled per channel by
	// ls1.gamma / ls2.gamma (DINOv2); otherwise the scale is the identity.
	LayerScale bool `json:"layer_scale"`
	// FeatureBlock is the 0-based block whose output Features returns
	// (Depth-2 in VisualRWKV-7).
	FeatureBlock int `json:"feature_block"`
	// LNEps is the LayerNorm epsilon (timm: 1e-6).
	LNEps float64 `json:"ln_eps"`
	// GELU names the MLP activation: "erf" (exact; VisualRWKV-7 uses it
	// for both towers) or empty for the same. Others are rejected.
	GELU string `json:"gelu"`
}

// DINOv2 returns the configuration of VisualRWKV-7's DINOv2 tower, timm
// vit_large_patch14_reg4_dinov2 at 448×448.
func DINOv2() Config {
	return Config{ImageSize: 448, Patch: 14, Dim: 1024, Depth: 24, Heads: 16, MLPHidden: 4096,
		Registers: 4, ClassToken: true, LayerScale: true, FeatureBlock: 22, LNEps: 1e-6}
}

// SigLIP returns the configuration of VisualRWKV-7's SigLIP tower, timm
// vit_so400m_patch14_siglip_384 at 448×448.
func SigLIP() Config {
	return Config{ImageSize: 448, Patch: 14, Dim: 1152, Depth: 27, Heads: 16, MLPHidden: 4304,
		FeatureBlock: 25, LNEps: 1e-6}
}

// Grid returns the number of patches along each side.
func (c Config) Grid() int { return c.ImageSize / c.Patch }

// Patches returns the number of patch tokens, Grid².
func (c Config) Patches() int { return c.Grid() * c.Grid() }

// prefix returns the number of tokens before the patches.
func (c Config) prefix() int {
	n := c.Registers
	if c.ClassToken {
		n++
	}
	return n
}

// validate checks that the sizes are consistent.
func (c Config) validate() error {
	if c.GELU != "" && c.GELU != "erf" {
		return fmt.Errorf("GELU %q unsupported (only the exact erf form)", c.GELU)
	}
	switch {
	case c.Patch <= 0 || c.ImageSize <= 0 || c.ImageSize%c.Patch != 0:
		return fmt.Errorf("image size %d is not a positive multiple of patch %d", c.ImageSize, c.Patch)
	case c.Dim <= 0 || c.Heads <= 0 || c.Dim%c.Heads != 0:
		return fmt.Errorf("%d heads do not divide width %d", c.Heads, c.Dim)
	case c.MLPHidden <= 0:
		return fmt.Errorf("MLP hidden width %d", c.MLPHidden)
	case c.Registers < 0:
		return fmt.Errorf("%d registers", c.Registers)
	case c.Depth <= 0 || c.FeatureBlock < 0 || c.FeatureBlock >= c.Depth:
		return fmt.Errorf("feature block %d outside 0..%d", c.FeatureBlock, c.Depth-1)
	case !(c.LNEps > 0):
		return fmt.Errorf("LayerNorm epsilon %g", c.LNEps)
	}
	return nil
}

// block holds one transformer block's weights: the Linear layers on the
// backend, the vectors in Go (float32).
type block struct {
	norm1W, norm1B []float32 // [D]
	qkv            nn.Dense  // [3D, D]: rows q, k, v
	proj           nn.Dense  // [D, D]
	ls1, ls2       []float32 // [D], nil without LayerScale
	norm2W, norm2B []float32 // [D]
	fc1            nn.Dense  // [H, D]
	fc2            nn.Dense  // [D, H]
}

// Tower is one loaded ViT. It is immutable after Load; Features may be
// called from several goroutines at once when its backend allows
// concurrent ops on different tensors (the CPU backend does).
type Tower struct {
	cfg    Config
	be     kernels.Backend
	patch  nn.Dense  // [D, 3·P·P], columns in (channel, row, col) order
	pos    []float32 // [patches or prefix+patches, D]
	posAll bool      // pos covers the prefix tokens too
	cls    []float32 // [D] or nil
	reg    []float32 // [R, D] or nil
	blocks []block   // blocks 0..FeatureBlock only
}

// Config returns the tower's configuration.
func (t *Tower) Config() Config { return t.cfg }

// Load reads a tower's weights from src; prefix is prepended to every timm
// key (for example "vit.dino_featurizer." or "vit.siglip_featurizer.", a
// missing final dot is added). Only blocks up to cfg.FeatureBlock are read.
// The SigLIP MAP head and the final norm are not used. The Linear weights
// are placed on be in their checkpoint dtype (the CPU backend keeps a
// reference to src's bytes, so src must stay open while the tower lives);
// Close frees them.
func Load(src core.Source, prefix string, cfg Config, be kernels.Backend) (*Tower, error) {
	if be == nil {
		return nil, fmt.Errorf("vit: load %s: no backend", strings.TrimSuffix(prefix, "."))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("vit: config: %w", err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	l := loader{src: src, prefix: prefix, be: be}
	D, P, N := cfg.Dim, cfg.Patch, cfg.Patches()
	t := &Tower{cfg: cfg, be: be}
	t.patch = l.dense("patch_embed.proj", D, 3*P*P, D, 3, P, P)
	if info, ok := src.Lookup(prefix + "pos_embed"); ok && len(info.Shape) == 3 && info.Shape[1] == N+cfg.prefix() && cfg.prefix() > 0 {
		t.pos = l.get("pos_embed", 1, N+cfg.prefix(), D)
		t.posAll = true
	} else {
		t.pos = l.get("pos_embed", 1, N, D)
	}
	if cfg.ClassToken {
		t.cls = l.get("cls_token", 1, 1, D)
	}
	if cfg.Registers > 0 {
		t.reg = l.get("reg_token", 1, cfg.Registers, D)
	}
	H := cfg.MLPHidden
	for i := 0; i <= cfg.FeatureBlock; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		b := block{
			norm1W: l.get(p+"norm1.weight", D), norm1B: l.get(p+"norm1.bias", D),
			qkv:    l.dense(p+"attn.qkv", 3*D, D, 3*D, D),
			proj:   l.dense(p+"attn.proj", D, D, D, D),
			norm2W: l.get(p+"norm2.weight", D), norm2B: l.get(p+"norm2.bias", D),
			fc1: l.dense(p+"mlp.fc1", H, D, H, D),
			fc2: l.dense(p+"mlp.fc2", D, H, D, H),
		}
		if cfg.LayerScale {
			b.ls1 = l.get(p+"ls1.gamma", D)
			b.ls2 = l.get(p+"ls2.gamma", D)
		}
		t.blocks = append(t.blocks, b)
	}
	if l.err != nil {
		t.Close()
		return nil, fmt.Errorf("vit: load %s: %w", strings.TrimSuffix(prefix, "."), l.err)
	}
	return t, nil
}

// Close frees the tower's weights on its backend. The tower must not be
// used afterwards.
func (t *Tower) Close() {
	t.patch.Free(t.be)
	for i := range t.blocks {
		b := &t.blocks[i]
		for _, d := range []*nn.Dense{&b.qkv, &b.proj, &b.fc1, &b.fc2} {
			d.Free(t.be)
		}
	}
}

// loader reads tensors, keeping the first error.
type loader struct {
	src    core.Source
	prefix string
	be     kernels.Backend
	err    error
}

// nn.Dense reads the Linear layer prefix+name (".weight" of exactly shape,
// viewed as [rows, cols], and ".bias" of rows values), placing the weight
// on the backend in its checkpoint dtype. After an error it returns a
// zero nn.Dense.
func (l *loader) dense(name string, rows, cols int, shape ...int) nn.Dense {
	if l.err != nil {
		return nn.Dense{}
	}
	full := l.prefix + name + ".weight"
	info, ok := l.src.Lookup(full)
	if !ok {
		l.err = fmt.Errorf("missing tensor %s", full)
		return nn.Dense{}
	}
	if !sameShape(info.Shape, shape) {
		l.err = fmt.Errorf("tensor %s has shape %v, want %v", full, info.Shape, shape)
		return nn.Dense{}
	}
	bias := l.get(name+".bias", rows)
	if l.err != nil {
		return nn.Dense{}
	}
	b, err := l.src.Bytes(full)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nn.Dense{}
	}
	w, err := l.be.Weight(info.DType, rows, cols, b)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nn.Dense{}
	}
	return nn.Dense{W: w, Bias: bias, In: cols, Out: rows}
}

// get returns tensor prefix+name decoded to float32 after checking that its
// shape is exactly shape. After an error it returns nil.
func (l *loader) get(name string, shape ...int) []float32 {
	if l.err != nil {
		return nil
	}
	full := l.prefix + name
	info, ok := l.src.Lookup(full)
	if !ok {
		l.err = fmt.Errorf("missing tensor %s", full)
		return nil
	}
	if !sameShape(info.Shape, shape) {
		l.err = fmt.Errorf("tensor %s has shape %v, want %v", full, info.Shape, shape)
		return nil
	}
	b, err := l.src.Bytes(full)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nil
	}
	f := make([]float32, info.Len())
	if err := info.DType.Decode(f, b); err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nil
	}
	return f
}

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Features runs the tower on one image, pixels in normalised CHW order
// [3, ImageSize, ImageSize], and returns the patch tokens at the output of
// block FeatureBlock, [Patches, Dim] row-major (token = row·Grid + col).
func (t *Tower) Features(ctx context.Context, pixels []float32) ([]float32, error) {
	c := t.cfg
	if want := 3 * c.ImageSize * c.ImageSize; len(pixels) != want {
		return nil, fmt.Errorf("vit: features: %d pixel values, want %d (3×%d×%d)", len(pixels), want, c.ImageSize, c.ImageSize)
	}
	D, N, pre := c.Dim, c.Patches(), c.prefix()
	T := pre + N
	x := make([]float32, T*D)
	if err := patchEmbed(t.be, x[pre*D:], pixels, &t.patch, c.ImageSize, c.Patch); err != nil {
		return nil, fmt.Errorf("vit: features: patch embedding: %w", err)
	}
	if t.cls != nil {
		copy(x[:D], t.cls)
	}
	if t.reg != nil {
		off := 0
		if t.cls != nil {
			off = D
		}
		copy(x[off:], t.reg)
	}
	if t.posAll {
		addInPlace(x, t.pos)
	} else {
		addInPlace(x[pre*D:], t.pos)
	}
	s := newScratch(T, c)
	for i := range t.blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := t.blocks[i].forward(t.be, x, s, c); err != nil {
			return nil, fmt.Errorf("vit: features: block %d: %w", i, err)
		}
	}
	return x[pre*D:], nil
}

// scratch holds one forward pass's temporaries.
type scratch struct {
	h   []float32 // [T, D] normalised input / branch output
	qkv []float32 // [T, 3D]
	att []float32 // [T, D]
	hid []float32 // [T, MLPHidden]
}

func newScratch(T int, c Config) *scratch {
	return &scratch{
		h:   make([]float32, T*c.Dim),
		qkv: make([]float32, T*3*c.Dim),
		att: make([]float32, T*c.Dim),
		hid: make([]float32, T*c.MLPHidden),
	}
}

// forward applies one block to x [T, D] in place:
// x += ls1(attn(norm1(x))); x += ls2(mlp(norm2(x))). The Linear layers
// run on be.
func (b *block) forward(be kernels.Backend, x []float32, s *scratch, c Config) error {
	D := c.Dim
	T := len(x) / D
	layerNorm(s.h, x, b.norm1W, b.norm1B, D, c.LNEps)
	if err := b.qkv.Apply(be, s.qkv, s.h, T); err != nil {
		return fmt.Errorf("qkv: %w", err)
	}
	if err := attention(be, s.att, s.qkv, T, D, c.Heads); err != nil {
		return fmt.Errorf("attention: %w", err)
	}
	if err := b.proj.Apply(be, s.h, s.att, T); err != nil {
		return fmt.Errorf("proj: %w", err)
	}
	layerScale(s.h, b.ls1, D)
	addInPlace(x, s.h)
	layerNorm(s.h, x, b.norm2W, b.norm2B, D, c.LNEps)
	if err := mlp(be, s.h, s.h, s.hid, &b.fc1, &b.fc2, T); err != nil {
		return fmt.Errorf("mlp: %w", err)
	}
	layerScale(s.h, b.ls2, D)
	addInPlace(x, s.h)
	return nil
}
