// Package sam is the SAM ViT image encoder tower of VisualRWKV-7 in
// float32, its matrix products (patch embedding, qkv, proj, MLP, neck
// convolutions) on a kernels.Backend with the weights in their checkpoint
// dtype, the attention score and value products there too (per head and
// window, keys and values as F32 operands), and everything else (the
// relative-position terms, softmax, norms) in Go: patch embedding plus
// absolute position embedding, ViT blocks with windowed or global
// attention and decomposed relative position embeddings, the
// convolutional neck, and the f×f lossless merge that turns the neck's
// map into feature rows.
package sam

import (
	"context"
	"errors"
	"fmt"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"math"
	"slices"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
)

// Config holds the encoder's sizes. Head count, window size and global
// blocks are not stored in checkpoints; the JSON names match the "sam"
// object of a VisualRWKV-7 config.
type Config struct {
	ImageSize    int     `json:"image_size"`    // square input side in pixels
	Patch        int     `json:"patch"`         // patch side in pixels
	EmbedDim     int     `json:"embed_dim"`     // transformer width
	Depth        int     `json:"depth"`         // number of blocks
	Heads        int     `json:"heads"`         // attention heads per block
	MLPHidden    int     `json:"mlp_hidden"`    // MLP hidden width
	Window       int     `json:"window"`        // window side of windowed blocks
	GlobalBlocks []int   `json:"global_blocks"` // indexes of global-attention blocks
	RelPos       bool    `json:"rel_pos"`       // decomposed relative positions are used
	NeckChannels int     `json:"neck_channels"` // neck output channels
	Merge        int     `json:"merge"`         // lossless merge factor (2)
	GELU         string  `json:"gelu"`          // "erf" (exact); "" means erf
	LNEps        float32 `json:"ln_eps"`        // LayerNorm epsilon; 0 means 1e-6
}

// Grid returns the side of the patch grid.
func (c Config) Grid() int { return c.ImageSize / c.Patch }

// Tokens returns the number of feature rows Features produces.
func (c Config) Tokens() int { g := c.Grid() / c.Merge; return g * g }

// FeatureDim returns the width of a feature row.
func (c Config) FeatureDim() int { return c.NeckChannels * c.Merge * c.Merge }

// validate reports the first inconsistent size.
func (c Config) validate() error {
	switch {
	case c.ImageSize <= 0 || c.Patch <= 0 || c.EmbedDim <= 0 || c.Depth <= 0 || c.Heads <= 0 ||
		c.MLPHidden <= 0 || c.NeckChannels <= 0 || c.Merge <= 0:
		return fmt.Errorf("sizes must be positive: %+v", c)
	case c.ImageSize%c.Patch != 0:
		return fmt.Errorf("image size %d is not a multiple of patch %d", c.ImageSize, c.Patch)
	case c.EmbedDim%c.Heads != 0:
		return fmt.Errorf("embed dim %d is not a multiple of %d heads", c.EmbedDim, c.Heads)
	case c.Grid()%c.Merge != 0:
		return fmt.Errorf("patch grid %d is not a multiple of merge %d", c.Grid(), c.Merge)
	case c.Window < 0:
		return fmt.Errorf("negative window %d", c.Window)
	case c.GELU != "" && c.GELU != "erf":
		return fmt.Errorf("unsupported GELU %q (want erf)", c.GELU)
	case c.LNEps < 0:
		return fmt.Errorf("negative LayerNorm epsilon %g", c.LNEps)
	case !c.RelPos:
		return errors.New("encoders without relative positions are not supported")
	}
	for _, b := range c.GlobalBlocks {
		if b < 0 || b >= c.Depth {
			return fmt.Errorf("global block %d outside 0..%d", b, c.Depth-1)
		}
	}
	if c.Window == 0 && len(c.GlobalBlocks) < c.Depth {
		return errors.New("window 0 but not every block is global")
	}
	return nil
}

// block is one transformer block's weights: the Linear layers on the
// backend, the rest float32 in Go.
type block struct {
	norm1W, norm1B []float32
	qkv            nn.Dense  // [3D, D]
	proj           nn.Dense  // [D, D]
	relH, relW     []float32 // [2s−1, hd], resampled to the block's span s
	norm2W, norm2B []float32
	lin1           nn.Dense // [hidden, D]
	lin2           nn.Dense // [D, hidden]
	span           int      // window side, or the grid side for global blocks
	global         bool
}

// Encoder is a loaded SAM image encoder. It is immutable after Load and
// Features may be called from several goroutines when its backend allows
// concurrent ops on different tensors (the CPU backend does).
type Encoder struct {
	cfg      Config
	be       kernels.Backend
	eps      float32
	patch    nn.Dense  // [D, 3·p·p]
	pos      []float32 // [grid·grid, D]
	blocks   []block
	neck0    nn.Dense // [N, D], no bias
	neck1W   []float32
	neck1B   []float32
	neck2    nn.Dense // [N, N·9], no bias
	neck3W   []float32
	neck3B   []float32
	channels int // input channels, 3
}

// Config returns the encoder's configuration.
func (e *Encoder) Config() Config { return e.cfg }

// loader reads float32 copies of named tensors from a source, checking
// their shapes.
type loader struct {
	src    core.Source
	prefix string
}

// get returns the tensor prefix+name, which must have exactly shape want;
// a negative dimension in want accepts any positive size.
func (l loader) get(name string, want ...int) ([]float32, []int, error) {
	full := l.prefix + name
	info, ok := l.src.Lookup(full)
	if !ok {
		return nil, nil, fmt.Errorf("missing tensor %s", full)
	}
	match := len(info.Shape) == len(want)
	for i := 0; match && i < len(want); i++ {
		match = info.Shape[i] == want[i] || (want[i] < 0 && info.Shape[i] > 0)
	}
	if !match {
		return nil, nil, fmt.Errorf("tensor %s has shape %v, want %v", full, info.Shape, want)
	}
	b, err := l.src.Bytes(full)
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %s: %w", full, err)
	}
	f := make([]float32, info.Len())
	if err := info.DType.Decode(f, b); err != nil {
		return nil, nil, fmt.Errorf("tensor %s: %w", full, err)
	}
	return f, info.Shape, nil
}

// weight places the tensor prefix+name, which must have exactly shape want,
// on be in its checkpoint dtype as a [rows, cols] matrix.
func (l loader) weight(be kernels.Backend, name string, rows, cols int, want ...int) (kernels.Tensor, error) {
	full := l.prefix + name
	info, ok := l.src.Lookup(full)
	if !ok {
		return kernels.Tensor{}, fmt.Errorf("missing tensor %s", full)
	}
	if !slices.Equal(info.Shape, want) {
		return kernels.Tensor{}, fmt.Errorf("tensor %s has shape %v, want %v", full, info.Shape, want)
	}
	b, err := l.src.Bytes(full)
	if err != nil {
		return kernels.Tensor{}, fmt.Errorf("tensor %s: %w", full, err)
	}
	t, err := be.Weight(info.DType, rows, cols, b)
	if err != nil {
		return kernels.Tensor{}, fmt.Errorf("tensor %s: %w", full, err)
	}
	return t, nil
}

// nn.Dense places the weight prefix+name (of exactly shape want) on be as the
// [rows, cols] matrix of a Linear layer with the given bias (nil for none).
func (l loader) dense(be kernels.Backend, name string, bias []float32, rows, cols int, want ...int) (nn.Dense, error) {
	w, err := l.weight(be, name, rows, cols, want...)
	if err != nil {
		return nn.Dense{}, err
	}
	return nn.Dense{W: w, Bias: bias, In: cols, Out: rows}, nil
}

// Load reads the encoder whose tensors are named prefix+"patch_embed.proj.weight"
// and so on (prefix "vit.sam_featurizer." in VisualRWKV-7 checkpoints),
// checking every shape against cfg. Relative-position tables whose length
// differs from 2·span−1 are resampled linearly, as SAM does. The Linear
// and convolution weights are placed on be in their checkpoint dtype (the
// CPU backend keeps a reference to src's bytes, so src must stay open while
// the encoder lives); Close frees them.
func Load(src core.Source, prefix string, cfg Config, be kernels.Backend) (*Encoder, error) {
	if be == nil {
		return nil, errors.New("sam: load: no backend")
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("sam: config: %w", err)
	}
	e := &Encoder{cfg: cfg, be: be, eps: cfg.LNEps, channels: 3}
	e, err := e.load(src, prefix)
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close frees the encoder's weights on its backend. The encoder must not be
// used afterwards.
func (e *Encoder) Close() {
	ds := []*nn.Dense{&e.patch, &e.neck0, &e.neck2}
	for i := range e.blocks {
		b := &e.blocks[i]
		ds = append(ds, &b.qkv, &b.proj, &b.lin1, &b.lin2)
	}
	for _, d := range ds {
		d.Free(e.be)
	}
}

// load reads the tensors into e; on error e holds what was placed so far.
func (e *Encoder) load(src core.Source, prefix string) (*Encoder, error) {
	cfg := e.cfg
	if e.eps == 0 {
		e.eps = 1e-6
	}
	l := loader{src: src, prefix: prefix}
	D, P, G, N := cfg.EmbedDim, cfg.Patch, cfg.Grid(), cfg.NeckChannels
	hd := D / cfg.Heads
	var err error
	wrap := func(err error) error { return fmt.Errorf("sam: load: %w", err) }
	if e.patch, err = l.dense(e.be, "patch_embed.proj.weight", nil, D, e.channels*P*P, D, e.channels, P, P); err != nil {
		return e, wrap(err)
	}
	if e.patch.Bias, _, err = l.get("patch_embed.proj.bias", D); err != nil {
		return e, wrap(err)
	}
	if e.pos, _, err = l.get("pos_embed", 1, G, G, D); err != nil {
		return e, wrap(err)
	}
	for i := 0; i < cfg.Depth; i++ {
		b := block{global: slices.Contains(cfg.GlobalBlocks, i), span: cfg.Window}
		if b.global {
			b.span = G
		}
		p := fmt.Sprintf("blocks.%d.", i)
		vecs := []struct {
			dst  *[]float32
			name string
			n    int
		}{
			{&b.norm1W, "norm1.weight", D}, {&b.norm1B, "norm1.bias", D},
			{&b.qkv.Bias, "attn.qkv.bias", 3 * D}, {&b.proj.Bias, "attn.proj.bias", D},
			{&b.norm2W, "norm2.weight", D}, {&b.norm2B, "norm2.bias", D},
			{&b.lin1.Bias, "mlp.lin1.bias", cfg.MLPHidden}, {&b.lin2.Bias, "mlp.lin2.bias", D},
		}
		for _, v := range vecs {
			if *v.dst, _, err = l.get(p+v.name, v.n); err != nil {
				return e, wrap(err)
			}
		}
		// Appended before the weights are placed, so that Close frees
		// them if a later tensor fails.
		e.blocks = append(e.blocks, b)
		bp := &e.blocks[len(e.blocks)-1]
		mats := []struct {
			dst       *nn.Dense
			name      string
			rows, col int
		}{
			{&bp.qkv, "attn.qkv.weight", 3 * D, D}, {&bp.proj, "attn.proj.weight", D, D},
			{&bp.lin1, "mlp.lin1.weight", cfg.MLPHidden, D}, {&bp.lin2, "mlp.lin2.weight", D, cfg.MLPHidden},
		}
		for _, m := range mats {
			if *m.dst, err = l.dense(e.be, p+m.name, m.dst.Bias, m.rows, m.col, m.rows, m.col); err != nil {
				return e, wrap(err)
			}
		}
		for _, r := range []struct {
			dst  *[]float32
			name string
		}{{&bp.relH, "attn.rel_pos_h"}, {&bp.relW, "attn.rel_pos_w"}} {
			t, shape, err := l.get(p+r.name, -1, hd)
			if err != nil {
				return e, wrap(err)
			}
			*r.dst = resizeRelPos(t, shape[0], hd, 2*bp.span-1)
		}
	}
	if e.neck0, err = l.dense(e.be, "neck.0.weight", nil, N, D, N, D, 1, 1); err != nil {
		return e, wrap(err)
	}
	if e.neck1W, _, err = l.get("neck.1.weight", N); err != nil {
		return e, wrap(err)
	}
	if e.neck1B, _, err = l.get("neck.1.bias", N); err != nil {
		return e, wrap(err)
	}
	if e.neck2, err = l.dense(e.be, "neck.2.weight", nil, N, N*9, N, N, 3, 3); err != nil {
		return e, wrap(err)
	}
	if e.neck3W, _, err = l.get("neck.3.weight", N); err != nil {
		return e, wrap(err)
	}
	if e.neck3B, _, err = l.get("neck.3.bias", N); err != nil {
		return e, wrap(err)
	}
	return e, nil
}

// Features encodes one image, normalised and laid out channel-first
// [3, ImageSize, ImageSize], into Tokens() rows of FeatureDim() values.
func (e *Encoder) Features(ctx context.Context, pixels []float32) ([]float32, error) {
	cfg := e.cfg
	S := cfg.ImageSize
	if want := e.channels * S * S; len(pixels) != want {
		return nil, fmt.Errorf("sam: features: %d pixel values, want %d (3×%d×%d)", len(pixels), want, S, S)
	}
	for i, v := range pixels {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("sam: features: pixel value %d is %v", i, v)
		}
	}
	D, P, G := cfg.EmbedDim, cfg.Patch, cfg.Grid()
	T := G * G
	x := make([]float32, T*D)
	if err := e.patch.Apply(e.be, x, patchRows(pixels, e.channels, S, S, P), T); err != nil {
		return nil, fmt.Errorf("sam: features: patch embedding: %w", err)
	}
	add(x, e.pos)
	for i := range e.blocks {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := e.blockForward(&e.blocks[i], x); err != nil {
			return nil, fmt.Errorf("sam: features: block %d: %w", i, err)
		}
	}
	y, err := e.neck(x)
	if err != nil {
		return nil, fmt.Errorf("sam: features: neck: %w", err)
	}
	return losslessMerge(y, G, G, cfg.NeckChannels, cfg.Merge), nil
}

// blockForward applies one pre-norm transformer block to the [grid, grid,
// D] map x in place; the Linear layers run on the backend.
func (e *Encoder) blockForward(b *block, x []float32) error {
	cfg := e.cfg
	D, G, H := cfg.EmbedDim, cfg.Grid(), cfg.Heads
	T := G * G
	h := make([]float32, T*D)
	layerNorm(h, x, b.norm1W, b.norm1B, T, D, e.eps)
	win, nWin := h, 1
	if !b.global {
		win, nWin = windowPartition(h, G, G, D, b.span)
	}
	n := nWin * b.span * b.span
	qkv := make([]float32, n*3*D)
	if err := b.qkv.Apply(e.be, qkv, win, n); err != nil {
		return fmt.Errorf("qkv: %w", err)
	}
	att := make([]float32, n*D)
	if err := attention(e.be, att, qkv, b.relH, b.relW, nWin, b.span, H, D/H); err != nil {
		return err
	}
	proj := make([]float32, n*D)
	if err := b.proj.Apply(e.be, proj, att, n); err != nil {
		return fmt.Errorf("proj: %w", err)
	}
	if b.global {
		add(x, proj)
	} else {
		windowUnpartitionAdd(x, proj, G, G, D, b.span)
	}
	layerNorm(h, x, b.norm2W, b.norm2B, T, D, e.eps)
	mid := make([]float32, T*cfg.MLPHidden)
	if err := b.lin1.Apply(e.be, mid, h, T); err != nil {
		return fmt.Errorf("lin1: %w", err)
	}
	geluErf(mid)
	if err := b.lin2.Apply(e.be, h, mid, T); err != nil {
		return fmt.Errorf("lin2: %w", err)
	}
	add(x, h)
	return nil
}

// neck maps the [grid, grid, D] map to [grid, grid, NeckChannels]:
// conv 1×1 → LayerNorm2d → conv 3×3 (padding 1) → LayerNorm2d, no biases
// on the convolutions, which run as products on the backend (the 3×3 one
// over im2col rows).
func (e *Encoder) neck(x []float32) ([]float32, error) {
	G, N := e.cfg.Grid(), e.cfg.NeckChannels
	T := G * G
	a := make([]float32, T*N)
	if err := e.neck0.Apply(e.be, a, x, T); err != nil {
		return nil, fmt.Errorf("conv 1×1: %w", err)
	}
	layerNorm(a, a, e.neck1W, e.neck1B, T, N, e.eps)
	b := make([]float32, T*N)
	if err := e.neck2.Apply(e.be, b, conv3x3Rows(a, G, G, N), T); err != nil {
		return nil, fmt.Errorf("conv 3×3: %w", err)
	}
	layerNorm(b, b, e.neck3W, e.neck3B, T, N, e.eps)
	return b, nil
}
