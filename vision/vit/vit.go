// Package vit runs the two timm Vision Transformers of VisualRWKV-7's image
// side, the DINOv2 (with registers and LayerScale) and SigLIP towers, in
// float32 on a kernels.Backend: the weights stay in their checkpoint dtype
// and every step (patch gathering, products, norms, attention, GELU,
// residuals) is a backend op, so the activations never leave the device.
//
// A Tower returns the patch tokens at the output of one block (VisualRWKV-7
// takes the second-to-last block), with the prefix tokens (class token and
// registers) dropped and no final norm.
package vit

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/nn"
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

// Validate checks every size against the bounds of any real tower and
// against the others, with an error (an *nn.FieldError) naming the JSON
// field at fault. Load calls it; vision.Config.Check calls it before
// comparing the sizes with a checkpoint's.
func (c Config) Validate() error {
	switch {
	case c.Patch <= 0 || c.Patch > nn.MaxPatch:
		return nn.FieldErr("patch", "%d outside 1..%d", c.Patch, nn.MaxPatch)
	case c.ImageSize <= 0 || c.ImageSize > nn.MaxSide || c.ImageSize%c.Patch != 0:
		return nn.FieldErr("image_size", "image size %d is not a positive multiple of patch %d up to %d", c.ImageSize, c.Patch, nn.MaxSide)
	case c.Dim <= 0 || c.Dim > nn.MaxWidth:
		return nn.FieldErr("embed_dim", "%d outside 1..%d", c.Dim, nn.MaxWidth)
	case c.Heads <= 0 || c.Dim%c.Heads != 0 || c.Dim/c.Heads > nn.MaxHeadDim:
		return nn.FieldErr("heads", "%d heads do not divide width %d into heads of at most %d", c.Heads, c.Dim, nn.MaxHeadDim)
	case c.MLPHidden <= 0:
		return nn.FieldErr("mlp_hidden", "MLP hidden width %d", c.MLPHidden)
	case c.Registers < 0 || c.Registers > nn.MaxRegister:
		return nn.FieldErr("reg_tokens", "%d registers, outside 0..%d", c.Registers, nn.MaxRegister)
	case c.Depth <= 0:
		return nn.FieldErr("depth", "%d blocks", c.Depth)
	case c.FeatureBlock < 0 || c.FeatureBlock >= c.Depth:
		return nn.FieldErr("feature_block", "feature block %d outside 0..%d", c.FeatureBlock, c.Depth-1)
	case !(c.LNEps > 0 && c.LNEps <= nn.MaxLNEps):
		return nn.FieldErr("ln_eps", "LayerNorm epsilon %g outside (0, %g]", c.LNEps, nn.MaxLNEps)
	case c.GELU != "" && c.GELU != "erf":
		return nn.FieldErr("gelu", "GELU %q unsupported (only the exact erf form)", c.GELU)
	case c.Patches() > nn.MaxTokens:
		return nn.FieldErr("image_size", "%d gives %d patches, over %d", c.ImageSize, c.Patches(), nn.MaxTokens)
	}
	return nil
}

// block holds one transformer block's weights on the backend.
type block struct {
	norm1W, norm1B kernels.Tensor // [1, D]
	qkv            nn.Dense       // [3D, D]: rows q, k, v
	proj           nn.Dense       // [D, D]
	ls1, ls2       kernels.Tensor // [1, D], invalid without LayerScale
	norm2W, norm2B kernels.Tensor // [1, D]
	fc1            nn.Dense       // [H, D]
	fc2            nn.Dense       // [D, H]
}

// Tower is one loaded ViT. Its working memory on the backend is allocated
// on first use and reused by every image.
type Tower struct {
	cfg    Config
	be     kernels.Backend // the weights' backend
	q      kernels.Backend // where the ops run: be, or one of its queues (SetQueue)
	l      *nn.Loader      // owns every tensor the tower placed
	patch  nn.Dense        // [D, 3·P·P], columns in (channel, row, col) order
	pos    kernels.Tensor  // [patches or prefix+patches, D]
	posAll bool            // pos covers the prefix tokens too
	prefix kernels.Tensor  // [prefix, D]: the class token then the registers; invalid without
	blocks []block         // blocks 0..FeatureBlock only

	mu sync.Mutex
	s  *scratch // allocated on first use
}

// Config returns the tower's configuration.
func (t *Tower) Config() Config { return t.cfg }

// Load reads a tower's weights from src; prefix is prepended to every timm
// key (for example "vit.dino_featurizer." or "vit.siglip_featurizer.", a
// missing final dot is added). Only blocks up to cfg.FeatureBlock are read.
// The SigLIP MAP head and the final norm are not used. The Linear weights
// are placed on be in their checkpoint dtype (the CPU backend keeps a
// reference to src's bytes, so src must stay open while the tower lives),
// the vectors as float32; Close frees them.
func Load(src core.Source, prefix string, cfg Config, be kernels.Backend) (*Tower, error) {
	if be == nil {
		return nil, fmt.Errorf("vit: load %s: no backend", strings.TrimSuffix(prefix, "."))
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vit: config: %w", err)
	}
	if prefix != "" && !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	l := &nn.Loader{Src: src, Prefix: prefix, Be: be}
	D, P, N, pre := cfg.Dim, cfg.Patch, cfg.Patches(), cfg.prefix()
	t := &Tower{cfg: cfg, be: be, l: l}
	t.patch = l.Dense("patch_embed.proj", D, 3*P*P, D, 3, P, P)
	if sh := l.Shape("pos_embed"); len(sh) == 3 && sh[1] == N+pre && pre > 0 {
		t.pos = l.Vector("pos_embed", 1, N+pre, D)
		t.posAll = true
	} else {
		t.pos = l.Vector("pos_embed", 1, N, D)
	}
	if pre > 0 {
		var rows []float32
		if cfg.ClassToken {
			cls, _ := l.Floats("cls_token", 1, 1, D)
			rows = append(rows, cls...)
		}
		if cfg.Registers > 0 {
			reg, _ := l.Floats("reg_token", 1, cfg.Registers, D)
			rows = append(rows, reg...)
		}
		if l.Err() == nil {
			t.prefix = l.Upload(pre, D, rows)
		}
	}
	H := cfg.MLPHidden
	for i := 0; i <= cfg.FeatureBlock; i++ {
		p := fmt.Sprintf("blocks.%d.", i)
		b := block{
			norm1W: l.Vector(p+"norm1.weight", D), norm1B: l.Vector(p+"norm1.bias", D),
			qkv:    l.Dense(p+"attn.qkv", 3*D, D, 3*D, D),
			proj:   l.Dense(p+"attn.proj", D, D, D, D),
			norm2W: l.Vector(p+"norm2.weight", D), norm2B: l.Vector(p+"norm2.bias", D),
			fc1: l.Dense(p+"mlp.fc1", H, D, H, D),
			fc2: l.Dense(p+"mlp.fc2", D, H, D, H),
		}
		if cfg.LayerScale {
			b.ls1 = l.Vector(p+"ls1.gamma", D)
			b.ls2 = l.Vector(p+"ls2.gamma", D)
		}
		t.blocks = append(t.blocks, b)
	}
	if err := l.Err(); err != nil {
		t.Close()
		return nil, fmt.Errorf("vit: load %s: %w", strings.TrimSuffix(prefix, "."), err)
	}
	return t, nil
}

// SetQueue makes the tower issue its ops on q, a queue of the backend it
// was loaded on (kernels.Queuer), so that it can run side by side with
// other work; nil goes back to that backend. The working memory stays
// where it is: queues share the device's memory.
func (t *Tower) SetQueue(q kernels.Backend) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.q = q
}

// ops returns the backend the tower's ops run on.
func (t *Tower) ops() kernels.Backend {
	if t.q != nil {
		return t.q
	}
	return t.be
}

// Close frees the tower's weights and working memory on its backend. The
// tower must not be used afterwards.
func (t *Tower) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.l.Free()
	if t.s != nil {
		t.s.free(t.be)
		t.s = nil
	}
}

// scratch is a forward pass's working memory on the backend.
type scratch struct {
	pixels  kernels.Tensor // [3, S·S]
	patches kernels.Tensor // [N, 3·P·P]
	x, h    kernels.Tensor // [T, D]
	qkv     kernels.Tensor // [T, 3D]
	att     kernels.Tensor // [T, D]
	hid     kernels.Tensor // [T, MLPHidden]
}

func newScratch(be kernels.Backend, c Config) (*scratch, error) {
	T, D, S, P := c.prefix()+c.Patches(), c.Dim, c.ImageSize, c.Patch
	ts, err := nn.Scratch(be, [2]int{3, S * S}, [2]int{c.Patches(), 3 * P * P}, [2]int{T, D}, [2]int{T, D},
		[2]int{T, 3 * D}, [2]int{T, D}, [2]int{T, c.MLPHidden})
	if err != nil {
		return nil, err
	}
	return &scratch{pixels: ts[0], patches: ts[1], x: ts[2], h: ts[3], qkv: ts[4], att: ts[5], hid: ts[6]}, nil
}

func (s *scratch) free(be kernels.Backend) {
	for _, t := range []kernels.Tensor{s.pixels, s.patches, s.x, s.h, s.qkv, s.att, s.hid} {
		be.Free(t)
	}
}

// WorkingBytes is the size of the working memory a tower of this
// configuration allocates on its backend.
func (c Config) WorkingBytes() int64 {
	T, D, S, P := int64(c.prefix()+c.Patches()), int64(c.Dim), int64(c.ImageSize), int64(c.Patch)
	return 4 * (3*S*S + int64(c.Patches())*3*P*P + T*D*6 + T*int64(c.MLPHidden))
}

// Features runs the tower on one image, pixels in normalised CHW order
// [3, ImageSize, ImageSize], and returns the patch tokens at the output of
// block FeatureBlock, [Patches, Dim] row-major (token = row·Grid + col).
// It may be called from several goroutines; they take turns.
func (t *Tower) Features(ctx context.Context, pixels []float32) ([]float32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.Encode(ctx, pixels)
	if err != nil {
		return nil, err
	}
	out, err := nn.Download(t.ops(), f)
	if err != nil {
		return nil, fmt.Errorf("vit: features: %w", err)
	}
	return out, nil
}

// Encode uploads the pixels (normalised CHW, [3, ImageSize, ImageSize])
// and queues the tower's ops on its backend without waiting for them. It
// returns the features, a [Patches, Dim] view of the tower's working
// memory, valid until the next Encode; errors of the queued ops surface
// at the backend's next Sync. ctx is checked between blocks. Encode is
// not safe for concurrent use.
func (t *Tower) Encode(ctx context.Context, pixels []float32) (kernels.Tensor, error) {
	c := t.cfg
	if want := 3 * c.ImageSize * c.ImageSize; len(pixels) != want {
		return kernels.Tensor{}, fmt.Errorf("vit: features: %d pixel values, want %d (3×%d×%d)", len(pixels), want, c.ImageSize, c.ImageSize)
	}
	if err := nn.CheckFinite(pixels); err != nil {
		return kernels.Tensor{}, fmt.Errorf("vit: features: pixels: %w", err)
	}
	if t.s == nil {
		s, err := newScratch(t.ops(), t.cfg)
		if err != nil {
			return kernels.Tensor{}, fmt.Errorf("vit: features: %w", err)
		}
		t.s = s
	}
	if err := t.ops().Upload(t.s.pixels, half.Bytes(pixels)); err != nil {
		return kernels.Tensor{}, fmt.Errorf("vit: features: upload: %w", err)
	}
	return t.forward(ctx, t.s)
}

// forward queues the tower's ops on s.pixels and returns the features
// view of s.x.
func (t *Tower) forward(ctx context.Context, s *scratch) (kernels.Tensor, error) {
	c := t.cfg
	be := t.ops()
	N, pre := c.Patches(), c.prefix()
	T := pre + N
	P, S := c.Patch, c.ImageSize
	be.Im2Col(s.patches, s.pixels, kernels.Conv{Channels: 3, Height: S, Width: S, Kernel: P, Stride: P})
	x := s.x
	patches := x.Slice(pre, T)
	be.Linear(patches, s.patches, t.patch.W)
	pos := t.pos
	if t.posAll {
		pos = t.pos.Slice(pre, T)
	}
	be.Residual(patches, pos, patches, t.patch.B, kernels.Tensor{})
	if pre > 0 {
		be.Copy(x.Slice(0, pre), t.prefix)
		if t.posAll {
			be.Add(x.Slice(0, pre), x.Slice(0, pre), t.pos.Slice(0, pre))
		}
	}
	for i := range t.blocks {
		if err := ctx.Err(); err != nil {
			return kernels.Tensor{}, err
		}
		t.blocks[i].forward(be, s, c)
	}
	return x.Slice(pre, T), nil
}

// forward queues one block on s.x [T, D]:
// x += ls1(attn(norm1(x))); x += ls2(mlp(norm2(x))).
func (b *block) forward(be kernels.Backend, s *scratch, c Config) {
	eps := float32(c.LNEps)
	be.LayerNorm(s.h, s.x, b.norm1W, b.norm1B, eps)
	be.Linear(s.qkv, s.h, b.qkv.W)
	be.Add(s.qkv, s.qkv, b.qkv.B)
	be.Attention(kernels.Attention{Dst: s.att, QKV: s.qkv, Heads: c.Heads,
		Scale: float32(1 / math.Sqrt(float64(c.Dim/c.Heads)))})
	be.Linear(s.h, s.att, b.proj.W)
	be.Residual(s.x, s.x, s.h, b.proj.B, b.ls1)
	be.LayerNorm(s.h, s.x, b.norm2W, b.norm2B, eps)
	be.Linear(s.hid, s.h, b.fc1.W)
	be.BiasAct(s.hid, s.hid, b.fc1.B, kernels.GELU)
	be.Linear(s.h, s.hid, b.fc2.W)
	be.Residual(s.x, s.x, s.h, b.fc2.B, b.ls2)
}
