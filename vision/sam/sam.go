// Package sam is the SAM ViT image encoder tower of VisualRWKV-7 in
// float32 on a kernels.Backend, every step a backend op with the weights in
// their checkpoint dtype: patch embedding plus absolute position
// embedding, ViT blocks with windowed or global attention and decomposed
// relative position embeddings, the convolutional neck, and the f×f
// lossless merge that turns the neck's map into feature rows.
package sam

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/nn"
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

// Validate checks every size against the bounds of any real encoder and
// against the others, with an error (an *nn.FieldError) naming the JSON
// field at fault. Load calls it; vision.Config.Check calls it before
// comparing the sizes with a checkpoint's.
func (c Config) Validate() error {
	for _, f := range []struct {
		field string
		v     int
	}{{"image_size", c.ImageSize}, {"patch", c.Patch}, {"embed_dim", c.EmbedDim}, {"depth", c.Depth},
		{"heads", c.Heads}, {"mlp_hidden", c.MLPHidden}, {"neck_channels", c.NeckChannels}, {"merge", c.Merge}} {
		if f.v <= 0 {
			return nn.FieldErr(f.field, "%d: sizes must be positive", f.v)
		}
	}
	switch {
	case c.Patch > nn.MaxPatch:
		return nn.FieldErr("patch", "%d outside 1..%d", c.Patch, nn.MaxPatch)
	case c.ImageSize > nn.MaxSide || c.ImageSize%c.Patch != 0:
		return nn.FieldErr("image_size", "image size %d is not a multiple of patch %d in 1..%d", c.ImageSize, c.Patch, nn.MaxSide)
	case c.EmbedDim%c.Heads != 0:
		return nn.FieldErr("heads", "embed dim %d is not a multiple of %d heads", c.EmbedDim, c.Heads)
	case c.Merge > nn.MaxMerge || c.Grid()%c.Merge != 0:
		return nn.FieldErr("merge", "%d does not divide the %d×%d patch grid (at most %d)", c.Merge, c.Grid(), c.Grid(), nn.MaxMerge)
	case c.GELU != "" && c.GELU != "erf":
		return nn.FieldErr("gelu", "unsupported GELU %q (only the exact erf form)", c.GELU)
	case !(c.LNEps >= 0 && c.LNEps <= nn.MaxLNEps):
		return nn.FieldErr("ln_eps", "LayerNorm epsilon %g outside [0, %g] (0 means 1e-6)", c.LNEps, nn.MaxLNEps)
	case !c.RelPos:
		return nn.FieldErr("rel_pos", "encoders without relative positions are not supported")
	case c.Grid()*c.Grid() > nn.MaxTokens:
		return nn.FieldErr("image_size", "%d gives %d patches, over %d", c.ImageSize, c.Grid()*c.Grid(), nn.MaxTokens)
	}
	seen := map[int]bool{}
	for _, b := range c.GlobalBlocks {
		if b < 0 || b >= c.Depth || seen[b] {
			return nn.FieldErr("global_blocks", "global block %d repeated or outside 0..%d", b, c.Depth-1)
		}
		seen[b] = true
	}
	switch {
	case c.Window < 0 || c.Window > c.Grid():
		return nn.FieldErr("window", "window %d outside 0..%d (the patch grid's side)", c.Window, c.Grid())
	case c.Window == 0 && len(c.GlobalBlocks) < c.Depth:
		return nn.FieldErr("window", "window 0, but blocks other than %v are windowed", c.GlobalBlocks)
	}
	return nil
}

// block is one transformer block's weights on the backend.
type block struct {
	norm1W, norm1B kernels.Tensor // [1, D]
	qkv            nn.Dense       // [3D, D]
	proj           nn.Dense       // [D, D]
	relH, relW     kernels.Tensor // [2s−1, hd], resampled to the block's span s
	norm2W, norm2B kernels.Tensor // [1, D]
	lin1           nn.Dense       // [hidden, D]
	lin2           nn.Dense       // [D, hidden]
	span           int            // window side, or the grid side for global blocks
	global         bool
}

// Encoder is a loaded SAM image encoder. Its working memory on the backend
// is allocated on first use and reused by every image.
type Encoder struct {
	cfg    Config
	be     kernels.Backend // the weights' backend
	q      kernels.Backend // where the ops run: be, or one of its queues (SetQueue)
	eps    float32
	l      *nn.Loader     // owns every tensor the encoder placed
	patch  nn.Dense       // [D, 3·p·p]
	pos    kernels.Tensor // [grid·grid, D]
	blocks []block
	neck0  kernels.Tensor // [N, D], no bias
	neck1W kernels.Tensor
	neck1B kernels.Tensor
	neck2  kernels.Tensor // [N, N·9], no bias
	neck3W kernels.Tensor
	neck3B kernels.Tensor

	mu sync.Mutex
	s  *scratch
}

// Config returns the encoder's configuration.
func (e *Encoder) Config() Config { return e.cfg }

// Load reads the encoder whose tensors are named prefix+"patch_embed.proj.weight"
// and so on (prefix "vit.sam_featurizer." in VisualRWKV-7 checkpoints),
// checking every shape against cfg. Relative-position tables whose length
// differs from 2·span−1 are resampled linearly, as SAM does. The Linear
// and convolution weights are placed on be in their checkpoint dtype (the
// CPU backend keeps a reference to src's bytes, so src must stay open while
// the encoder lives), the vectors as float32; Close frees them.
func Load(src core.Source, prefix string, cfg Config, be kernels.Backend) (*Encoder, error) {
	if be == nil {
		return nil, errors.New("sam: load: no backend")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sam: config: %w", err)
	}
	e := &Encoder{cfg: cfg, be: be, eps: cfg.LNEps, l: &nn.Loader{Src: src, Prefix: prefix, Be: be}}
	if e.eps == 0 {
		e.eps = 1e-6
	}
	if err := e.load(); err != nil {
		e.Close()
		return nil, fmt.Errorf("sam: load: %w", err)
	}
	return e, nil
}

// SetQueue makes the encoder issue its ops on q, a queue of the backend it
// was loaded on (kernels.Queuer), so that it can run side by side with
// other work; nil goes back to that backend. The working memory stays
// where it is: queues share the device's memory.
func (e *Encoder) SetQueue(q kernels.Backend) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.q = q
}

// ops returns the backend the encoder's ops run on.
func (e *Encoder) ops() kernels.Backend {
	if e.q != nil {
		return e.q
	}
	return e.be
}

// Close frees the encoder's weights and working memory on its backend.
// The encoder must not be used afterwards.
func (e *Encoder) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.l.Free()
	if e.s != nil {
		e.s.free(e.be)
		e.s = nil
	}
}

// load reads the tensors into e; on error e holds what was placed so far.
func (e *Encoder) load() error {
	cfg := e.cfg
	l := e.l
	D, P, G, N := cfg.EmbedDim, cfg.Patch, cfg.Grid(), cfg.NeckChannels
	hd := D / cfg.Heads
	e.patch = l.Dense("patch_embed.proj", D, 3*P*P, D, 3, P, P)
	e.pos = l.Vector("pos_embed", 1, G, G, D)
	for i := 0; i < cfg.Depth && l.Err() == nil; i++ {
		b := block{global: slices.Contains(cfg.GlobalBlocks, i), span: cfg.Window}
		if b.global {
			b.span = G
		}
		p := fmt.Sprintf("blocks.%d.", i)
		b.norm1W, b.norm1B = l.Vector(p+"norm1.weight", D), l.Vector(p+"norm1.bias", D)
		b.qkv = l.Dense(p+"attn.qkv", 3*D, D, 3*D, D)
		b.proj = l.Dense(p+"attn.proj", D, D, D, D)
		b.norm2W, b.norm2B = l.Vector(p+"norm2.weight", D), l.Vector(p+"norm2.bias", D)
		b.lin1 = l.Dense(p+"mlp.lin1", cfg.MLPHidden, D, cfg.MLPHidden, D)
		b.lin2 = l.Dense(p+"mlp.lin2", D, cfg.MLPHidden, D, cfg.MLPHidden)
		for _, r := range []struct {
			dst  *kernels.Tensor
			name string
		}{{&b.relH, "attn.rel_pos_h"}, {&b.relW, "attn.rel_pos_w"}} {
			t, shape := l.Floats(p+r.name, -1, hd)
			if t == nil {
				break
			}
			*r.dst = l.Upload(2*b.span-1, hd, resizeRelPos(t, shape[0], hd, 2*b.span-1))
		}
		e.blocks = append(e.blocks, b)
	}
	e.neck0 = l.Matrix("neck.0.weight", N, D, N, D, 1, 1)
	e.neck1W, e.neck1B = l.Vector("neck.1.weight", N), l.Vector("neck.1.bias", N)
	e.neck2 = l.Matrix("neck.2.weight", N, N*9, N, N, 3, 3)
	e.neck3W, e.neck3B = l.Vector("neck.3.weight", N), l.Vector("neck.3.bias", N)
	return l.Err()
}

// scratch is a forward pass's working memory on the backend.
type scratch struct {
	pixels  kernels.Tensor // [3, S·S]
	patches kernels.Tensor // [T, 3·P·P]
	x, h    kernels.Tensor // [T, D]
	win     kernels.Tensor // [windowed rows, D]
	qkv     kernels.Tensor // [max rows, 3D]
	att     kernels.Tensor // [max rows, D]
	proj    kernels.Tensor // [max rows, D]
	mid     kernels.Tensor // [T, MLPHidden]
	a, b    kernels.Tensor // [T, N]: the neck's maps
	cols    kernels.Tensor // [T, 9N]: the 3×3 convolution's patches
	out     kernels.Tensor // [Tokens, FeatureDim]
}

// WindowCount is the number of windows of a windowed block (0 when every
// block is global).
func (c Config) WindowCount() int {
	if c.Window <= 0 {
		return 0
	}
	return kernels.Window{Height: c.Grid(), Width: c.Grid(), Size: c.Window}.Count()
}

// windowRows is the number of rows of a windowed block's padded windows
// (0 when every block is global).
func (c Config) windowRows() int {
	if c.Window <= 0 {
		return 0
	}
	return kernels.Window{Height: c.Grid(), Width: c.Grid(), Size: c.Window}.Tokens()
}

// scratchDims lists the working tensors' shapes, in scratch field order.
func (c Config) scratchDims() [][2]int {
	G, D, P, N := c.Grid(), c.EmbedDim, c.Patch, c.NeckChannels
	T := G * G
	R := max(T, c.windowRows())
	return [][2]int{{3, c.ImageSize * c.ImageSize}, {T, 3 * P * P}, {T, D}, {T, D}, {max(c.windowRows(), 1), D},
		{R, 3 * D}, {R, D}, {R, D}, {T, c.MLPHidden}, {T, N}, {T, N}, {T, 9 * N}, {c.Tokens(), c.FeatureDim()}}
}

// WorkingBytes is the size of the working memory an encoder of this
// configuration allocates on its backend.
func (c Config) WorkingBytes() int64 {
	var n int64
	for _, d := range c.scratchDims() {
		n += int64(d[0]) * int64(d[1]) * 4
	}
	return n
}

func newScratch(be kernels.Backend, c Config) (*scratch, error) {
	ts, err := nn.Scratch(be, c.scratchDims()...)
	if err != nil {
		return nil, err
	}
	return &scratch{pixels: ts[0], patches: ts[1], x: ts[2], h: ts[3], win: ts[4], qkv: ts[5], att: ts[6],
		proj: ts[7], mid: ts[8], a: ts[9], b: ts[10], cols: ts[11], out: ts[12]}, nil
}

func (s *scratch) free(be kernels.Backend) {
	for _, t := range []kernels.Tensor{s.pixels, s.patches, s.x, s.h, s.win, s.qkv, s.att, s.proj, s.mid, s.a, s.b, s.cols, s.out} {
		be.Free(t)
	}
}

// Features encodes one image, normalised and laid out channel-first
// [3, ImageSize, ImageSize], into Tokens() rows of FeatureDim() values.
// It may be called from several goroutines; they take turns.
func (e *Encoder) Features(ctx context.Context, pixels []float32) ([]float32, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f, err := e.Encode(ctx, pixels)
	if err != nil {
		return nil, err
	}
	out, err := nn.Download(e.ops(), f)
	if err != nil {
		return nil, fmt.Errorf("sam: features: %w", err)
	}
	return out, nil
}

// Encode uploads the pixels and queues the encoder's ops on its backend
// without waiting for them. It returns the features, a [Tokens,
// FeatureDim] view of the encoder's working memory, valid until the next
// Encode; errors of the queued ops surface at the backend's next Sync.
// ctx is checked between blocks. Encode is not safe for concurrent use.
func (e *Encoder) Encode(ctx context.Context, pixels []float32) (kernels.Tensor, error) {
	cfg := e.cfg
	S := cfg.ImageSize
	if want := 3 * S * S; len(pixels) != want {
		return kernels.Tensor{}, fmt.Errorf("sam: features: %d pixel values, want %d (3×%d×%d)", len(pixels), want, S, S)
	}
	if err := nn.CheckFinite(pixels); err != nil {
		return kernels.Tensor{}, fmt.Errorf("sam: features: pixel value: %w", err)
	}
	if e.s == nil {
		s, err := newScratch(e.ops(), cfg)
		if err != nil {
			return kernels.Tensor{}, fmt.Errorf("sam: features: %w", err)
		}
		e.s = s
	}
	s := e.s
	be := e.ops()
	if err := be.Upload(s.pixels, half.Bytes(pixels)); err != nil {
		return kernels.Tensor{}, fmt.Errorf("sam: features: upload: %w", err)
	}
	P, G := cfg.Patch, cfg.Grid()
	be.Im2Col(s.patches, s.pixels, kernels.Conv{Channels: 3, Height: S, Width: S, Kernel: P, Stride: P})
	be.Linear(s.x, s.patches, e.patch.W)
	be.Residual(s.x, e.pos, s.x, e.patch.B, kernels.Tensor{})
	for i := range e.blocks {
		if err := ctx.Err(); err != nil {
			return kernels.Tensor{}, err
		}
		e.blockForward(&e.blocks[i], s)
	}
	e.neck(s)
	be.SpaceToDepth(s.out, s.b, G, G, cfg.Merge)
	return s.out, nil
}

// blockForward queues one pre-norm transformer block on the [grid, grid,
// D] map s.x.
func (e *Encoder) blockForward(b *block, s *scratch) {
	cfg := e.cfg
	be := e.ops()
	D, G, H := cfg.EmbedDim, cfg.Grid(), cfg.Heads
	T := G * G
	be.LayerNorm(s.h, s.x, b.norm1W, b.norm1B, e.eps)
	in, rows, groups := s.h, T, 1
	w := kernels.Window{Height: G, Width: G, Size: b.span}
	if !b.global {
		rows, groups = w.Tokens(), w.Count()
		in = s.win.Slice(0, rows)
		be.WindowPartition(in, s.h, w)
	}
	qkv, att, proj := s.qkv.Slice(0, rows), s.att.Slice(0, rows), s.proj.Slice(0, rows)
	be.Linear(qkv, in, b.qkv.W)
	be.Add(qkv, qkv, b.qkv.B)
	be.Attention(kernels.Attention{Dst: att, QKV: qkv, Heads: H, Scale: float32(1 / math.Sqrt(float64(D/H))),
		Groups: groups, RelH: b.relH, RelW: b.relW, Span: b.span})
	be.Linear(proj, att, b.proj.W)
	if b.global {
		be.Residual(s.x, s.x, proj, b.proj.B, kernels.Tensor{})
	} else {
		be.Add(proj, proj, b.proj.B)
		be.WindowMerge(s.x, proj, w)
	}
	be.LayerNorm(s.h, s.x, b.norm2W, b.norm2B, e.eps)
	be.Linear(s.mid, s.h, b.lin1.W)
	be.BiasAct(s.mid, s.mid, b.lin1.B, kernels.GELU)
	be.Linear(s.h, s.mid, b.lin2.W)
	be.Residual(s.x, s.x, s.h, b.lin2.B, kernels.Tensor{})
}

// neck queues the map s.x → s.b [grid·grid, NeckChannels]: conv 1×1 →
// LayerNorm2d → conv 3×3 (padding 1) → LayerNorm2d, no biases on the
// convolutions, which run as products (the 3×3 one over gathered patches).
func (e *Encoder) neck(s *scratch) {
	be := e.ops()
	G, N := e.cfg.Grid(), e.cfg.NeckChannels
	be.Linear(s.a, s.x, e.neck0)
	be.LayerNorm(s.a, s.a, e.neck1W, e.neck1B, e.eps)
	be.Im2Col(s.cols, s.a, kernels.Conv{Channels: N, Height: G, Width: G, Kernel: 3, Stride: 1, Pad: 1, ChannelsLast: true})
	be.Linear(s.b, s.cols, e.neck2)
	be.LayerNorm(s.b, s.b, e.neck3W, e.neck3B, e.eps)
}

// resizeRelPos resamples a relative-position table [l, d] to n rows by
// linear interpolation along the rows with half-pixel centres (PyTorch
// F.interpolate mode "linear", align_corners=False); it returns rel
// unchanged when l == n.
func resizeRelPos(rel []float32, l, d, n int) []float32 {
	if l == n {
		return rel
	}
	out := make([]float32, n*d)
	scale := float64(l) / float64(n)
	for i := 0; i < n; i++ {
		src := (float64(i)+0.5)*scale - 0.5
		if src < 0 {
			src = 0
		}
		i0 := int(src)
		if i0 > l-1 {
			i0 = l - 1
		}
		i1 := min(i0+1, l-1)
		t := float32(src - float64(i0))
		for j := 0; j < d; j++ {
			out[i*d+j] = (1-t)*rel[i0*d+j] + t*rel[i1*d+j]
		}
	}
	return out
}
