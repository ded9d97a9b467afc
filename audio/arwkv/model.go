// Package arwkv runs the AudioRWKV-7 (A-RWKV) audio tagger on a
// kernels.Backend: a 16×16 patch embedding of a normalised log-mel
// spectrogram, a learned position embedding, RWKV-7 blocks — the shared
// block of package core/block, whose token shift here is a 3×3 depthwise
// convolution over the patch grid (ConvShift) and whose WKV runs in both
// directions, mixed by a per-head gate (Bi-WKV) — then the mean over
// tokens, a LayerNorm and a linear head giving one logit per class (527
// AudioSet labels for the released models). Windows are batched: the
// rows of a batch are windows × tokens, so the products are large.
//
// Reference: github.com/Jiayu-Xiong/AudioRWKV (models/rwkv7.py), arXiv
// 2509.02167; see the fact sheet in the project's reference notes.
package arwkv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/goose-rwkv/goose/core/block"
	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// Dims are an A-RWKV checkpoint's sizes, read from its tensor shapes.
type Dims struct {
	block.Dims
	Layers  int
	Classes int
	Tokens  int // pos_embed rows: the patch grid's size
	Patch   int // patch side
}

// FLOPs counts the floating-point operations of one clip's matrix
// products (2 per multiply-add): the patch embedding, per layer and token
// r, k, v, output (4C²), the channel mix (2·C·FFN), the LoRAs and the
// Bi-WKV gate, and the head. The WKV recurrence and the element-wise ops
// are not matrix products and are left out.
func (d Dims) FLOPs() float64 {
	C, T := float64(d.Width), float64(d.Tokens)
	lora := C * float64(2*(d.DecayLoRA+d.AlphaLoRA+d.GateLoRA)+2*d.ValueLoRA)
	perToken := 4*C*C + 2*C*float64(d.FFN) + lora + C*C/64
	macs := T*float64(d.Patch*d.Patch)*C + T*float64(d.Layers)*perToken + C*float64(d.Classes)
	return 2 * macs
}

// IsCheckpoint reports whether src holds an A-RWKV model: a patch
// embedding convolution emb.weight [C, 1, P, P], pos_embed and the 2-D
// shift kernels of block 0.
func IsCheckpoint(src weights.Source) bool {
	emb, ok := src.Lookup("emb.weight")
	if !ok || len(emb.Shape) != 4 {
		return false
	}
	_, pos := src.Lookup("pos_embed")
	_, shift := src.Lookup("blocks.0.att.time_shift.weight")
	return pos && shift
}

// Inspect reads a checkpoint's sizes from its tensor shapes without
// placing anything. Errors name the tensor.
func Inspect(src weights.Source) (Dims, error) {
	var d Dims
	shape := func(name string, rank int) ([]int, error) {
		info, ok := src.Lookup(name)
		if !ok {
			return nil, &weights.MissingError{Names: []string{name}}
		}
		s := info.Shape
		for len(s) > rank && s[0] == 1 {
			s = s[1:]
		}
		if len(s) != rank {
			return nil, &weights.ShapeError{Name: name, Got: info.Shape, Want: fmt.Sprintf("%d dimensions", rank)}
		}
		for _, n := range s {
			if n <= 0 {
				return nil, &weights.ShapeError{Name: name, Got: info.Shape, Want: "positive sizes"}
			}
		}
		return s, nil
	}
	emb, err := shape("emb.weight", 4)
	if err != nil {
		return d, err
	}
	d.Width, d.Patch = emb[0], emb[2]
	if emb[1] != 1 || emb[2] != emb[3] || d.Patch > maxPatch || d.Width > maxWidth || d.Width%block.HeadSize != 0 {
		return d, &weights.ShapeError{Name: "emb.weight", Got: emb, Want: fmt.Sprintf("[C, 1, P, P] with C a multiple of %d up to %d, P up to %d", block.HeadSize, maxWidth, maxPatch)}
	}
	pos, err := shape("pos_embed", 2)
	if err != nil {
		return d, err
	}
	if d.Tokens = pos[0]; pos[1] != d.Width || d.Tokens > maxTokens {
		return d, &weights.ShapeError{Name: "pos_embed", Got: pos, Want: fmt.Sprintf("[1, tokens ≤ %d, %d]", maxTokens, d.Width)}
	}
	head, err := shape("head.weight", 2)
	if err != nil {
		return d, err
	}
	if d.Classes = head[0]; head[1] != d.Width || d.Classes > maxClasses {
		return d, &weights.ShapeError{Name: "head.weight", Got: head, Want: fmt.Sprintf("[classes ≤ %d, %d]", maxClasses, d.Width)}
	}
	for d.Layers < maxLayers {
		if _, ok := src.Lookup(fmt.Sprintf("blocks.%d.ln1.weight", d.Layers)); !ok {
			break
		}
		d.Layers++
	}
	if d.Layers == 0 {
		return d, &weights.MissingError{Names: []string{"blocks.0.ln1.weight"}}
	}
	dim := func(name string, axis int) (int, error) {
		s, err := shape(name, 2)
		if err != nil {
			return 0, err
		}
		return s[axis], nil
	}
	for _, f := range []struct {
		p    *int
		name string
		axis int
	}{{&d.FFN, "blocks.0.ffn.key.weight", 0}, {&d.DecayLoRA, "blocks.0.att.w1", 1}, {&d.AlphaLoRA, "blocks.0.att.a1", 1},
		{&d.GateLoRA, "blocks.0.att.g1", 1}, {&d.ValueLoRA, "blocks.0.att.v1", 1}} {
		if *f.p, err = dim(f.name, f.axis); err != nil {
			return d, err
		}
	}
	if d.Layers > 1 {
		if d.ValueLoRA, err = dim("blocks.1.att.v1", 1); err != nil {
			return d, err
		}
	}
	return d, nil
}

// Size returns the model's size letter and name; see Kind.
func (d Dims) Size() (size, kind string) { return Kind(d.Width) }

// Model is an A-RWKV tagger on a backend. Logits may be called from
// several goroutines; calls run one at a time.
type Model struct {
	cfg    Config
	dims   Dims
	be     kernels.Backend
	params int64

	emb, embB, pos kernels.Tensor // [C, P·P] (file dtype), [1, C], [tokens, C]
	lnOutW, lnOutB kernels.Tensor
	head           kernels.Tensor // [classes, C]
	layers         []layer
	owned          []kernels.Tensor

	mu      sync.Mutex
	scratch []*scratch // by batch size, most recent last
	closed  bool
}

// layer is a shared RWKV-7 block plus A-RWKV's own weights.
type layer struct {
	block.Layer
	// attShift and ffnShift are the ConvShift kernels [C, 9] with one
	// subtracted from the centre tap, so that the convolution gives
	// conv(x) − x, the shift's residual, directly.
	attShift, ffnShift kernels.Tensor
	// gate is the Bi-WKV gate as a block-diagonal [H, C] matrix: head h
	// sums its own 64 channels (a grouped 1×1 convolution).
	gate kernels.Tensor
}

// ErrClosed is returned by a closed model.
var ErrClosed = errors.New("arwkv: model closed")

// Load places an A-RWKV checkpoint (the reference state_dict names) on be.
// The network's sizes come from the tensor shapes; cfg (validated) must
// agree with them (grid and patch; layers, width and classes where set).
// Errors name the missing or misshapen tensor or the config field.
func Load(src weights.Source, cfg Config, be kernels.Backend) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d, err := Inspect(src)
	if err != nil {
		return nil, fmt.Errorf("arwkv: %w", err)
	}
	mc := cfg.Model
	switch {
	case mc.Patch != d.Patch:
		return nil, fmt.Errorf("arwkv: config model.patch %d, checkpoint emb.weight has %d×%d patches", mc.Patch, d.Patch, d.Patch)
	case mc.Grid[0]*mc.Grid[1] != d.Tokens:
		return nil, fmt.Errorf("arwkv: config model.grid %v (%d patches), checkpoint pos_embed has %d", mc.Grid, mc.Grid[0]*mc.Grid[1], d.Tokens)
	case mc.Layers != 0 && mc.Layers != d.Layers:
		return nil, fmt.Errorf("arwkv: config model.n_layer %d, checkpoint has %d", mc.Layers, d.Layers)
	case mc.Width != 0 && mc.Width != d.Width:
		return nil, fmt.Errorf("arwkv: config model.n_embd %d, checkpoint has %d", mc.Width, d.Width)
	case mc.Classes != 0 && mc.Classes != d.Classes:
		return nil, fmt.Errorf("arwkv: config model.num_classes %d, checkpoint has %d", mc.Classes, d.Classes)
	}
	m := &Model{cfg: cfg, dims: d, be: be}
	C, P, H := d.Width, d.Patch, d.Width/block.HeadSize
	ld := weights.NewLoader(src, be)
	m.emb = ld.MatrixAs("emb.weight", []int{C, 1, P, P}, C, P*P)
	m.embB = ld.Vector("emb.bias", C)
	if m.pos = ld.Vector("pos_embed", d.Tokens, C); m.pos.Valid() {
		m.pos = m.pos.Reshape(d.Tokens, C)
	}
	m.lnOutW, m.lnOutB = ld.Vector("ln_out.weight", C), ld.Vector("ln_out.bias", C)
	m.head = ld.Matrix("head.weight", d.Classes, C)
	m.layers = make([]layer, d.Layers)
	for l := range m.layers {
		ly := &m.layers[l]
		ly.Layer = block.Load(ld, l, d.Dims, block.LoadOptions{ValueResidual: l > 0, FFNBias: true})
		p := fmt.Sprintf("blocks.%d.", l)
		shift := func(name string) kernels.Tensor {
			k := ld.Floats(name, C, 1, 3, 3)
			if k == nil {
				return kernels.Tensor{}
			}
			for c := range C {
				k[c*9+4]--
			}
			return ld.Upload(name, C, 9, k)
		}
		ly.attShift, ly.ffnShift = shift(p+"att.time_shift.weight"), shift(p+"ffn.time_shift.weight")
		if g := ld.Floats(p+"att.gate.weight", H, block.HeadSize, 1); g != nil {
			diag := make([]float32, H*C)
			for h := range H {
				copy(diag[h*C+h*block.HeadSize:], g[h*block.HeadSize:(h+1)*block.HeadSize])
			}
			ly.gate = ld.Upload(p+"att.gate.weight", H, C, diag)
		}
	}
	m.owned = ld.Owned()
	m.params = ld.Params()
	err = ld.Err()
	if err == nil {
		err = be.Sync()
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("arwkv: %w", err)
	}
	return m, nil
}

// Config returns the configuration the model was loaded with.
func (m *Model) Config() Config { return m.cfg }

// Dims returns the model's sizes.
func (m *Model) Dims() Dims { return m.dims }

// Params returns the number of parameters the model uses.
func (m *Model) Params() int64 { return m.params }

// Backend returns the backend the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

// Frames returns the number of spectrogram frames an input holds.
func (m *Model) Frames() int { return m.cfg.Model.Grid[0] * m.dims.Patch }

// Bins returns the number of mel bins of an input frame.
func (m *Model) Bins() int { return m.cfg.Model.Grid[1] * m.dims.Patch }

// Close frees the model's backend memory (not the backend).
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, sc := range m.scratch {
		sc.free(m.be)
	}
	m.scratch = nil
	for _, t := range m.owned {
		m.be.Free(t)
	}
	m.owned = nil
	return nil
}

// Logits runs a batch of inputs — each a normalised spectrogram of
// Frames() rows of Bins() values, time-major — and returns each one's
// logits (one per class). ctx is checked between layers.
func (m *Model) Logits(ctx context.Context, inputs [][]float32) ([][]float32, error) {
	want := m.Frames() * m.Bins()
	for b, in := range inputs {
		if len(in) != want {
			return nil, fmt.Errorf("arwkv: input %d has %d values, want %d (%d frames × %d bins)", b, len(in), want, m.Frames(), m.Bins())
		}
		for i, v := range in {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("arwkv: input %d value %d (frame %d, bin %d) is %v", b, i, i/m.Bins(), i%m.Bins(), v)
			}
		}
	}
	n := len(inputs)
	if n == 0 {
		return nil, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	sc, err := m.getScratch(n)
	if err != nil {
		return nil, err
	}
	if err := m.forward(ctx, sc, inputs); err != nil {
		return nil, err
	}
	K := m.dims.Classes
	if err := m.be.Download(sc.out[:4*n*K], sc.logits.Slice(0, n)); err != nil {
		return nil, err
	}
	out := make([][]float32, n)
	for b := range out {
		out[b] = make([]float32, K)
		for c := range K {
			out[b][c] = math.Float32frombits(binary.LittleEndian.Uint32(sc.out[4*(b*K+c):]))
		}
	}
	return out, nil
}

// forward issues the whole network for a batch into sc.logits.
func (m *Model) forward(ctx context.Context, sc *scratch, inputs [][]float32) error {
	be, d := m.be, m.dims
	T, P := d.Tokens, d.Patch
	gf := m.cfg.Model.Grid[1]
	bins := m.Bins()
	// Patch embedding: the 16×16 tiles, row-major, of each input (token
	// index = time patch · grid[1] + frequency patch) times the
	// convolution's weight, plus its bias and the position embedding.
	for b, in := range inputs {
		for tok := range T {
			pt, pf := tok/gf, tok%gf
			tile := sc.tiles[((b*T)+tok)*P*P:][:P*P]
			for i := range P {
				copy(tile[i*P:(i+1)*P], in[(pt*P+i)*bins+pf*P:][:P])
			}
		}
	}
	nt := len(inputs) * T * P * P
	if err := be.Upload(sc.tileT.Slice(0, len(inputs)*T), half.Bytes(sc.tiles[:nt])); err != nil {
		return err
	}
	n := len(inputs)
	rows := n * T
	v := sc.views(n, rows, d)
	a := v.acts
	be.Linear(a.X, sc.tileT.Slice(0, rows), m.emb)
	be.Add(a.X, a.X, m.embB)
	for b := range inputs {
		x := a.X.Slice(b*T, (b+1)*T)
		be.Add(x, x, m.pos)
	}
	mx := mixer{m: m, sc: v}
	for l := range m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		block.Forward(be, &m.layers[l].Layer, l, a, mx)
	}
	be.MeanRows(v.pooled, a.X)
	be.LayerNorm(v.normed, v.pooled, m.lnOutW, m.lnOutB, block.LNEps)
	be.Linear(v.logits, v.normed, m.head)
	return be.Sync()
}

// mixer is A-RWKV's part of the shared block: the 2-D ConvShift and the
// bidirectional WKV.
type mixer struct {
	m  *Model
	sc *batchViews
}

// NormShift normalises x and mixes it with its ConvShift residual
// xx = DWConv3×3(norm) − norm over each window's patch grid; the time mix
// also derives the Bi-WKV gate σ(gate·xx) per token and head.
func (x mixer) NormShift(f block.Ops, l int, ffn bool, norm kernels.Tensor, dst []kernels.Tensor, in, w, b kernels.Tensor, mix []kernels.Tensor) {
	ly, sc, g := &x.m.layers[l], x.sc, x.m.cfg.Model.Grid
	f.LayerNorm(norm, in, w, b, block.LNEps)
	k := ly.attShift
	if ffn {
		k = ly.ffnShift
	}
	f.DepthwiseConv3(sc.xx, norm, k, g[0], g[1])
	f.Lerp(dst, norm, sc.xx, mix)
	if !ffn {
		f.Linear(sc.gate, sc.xx, ly.gate)
		f.Act(sc.gate, sc.gate, kernels.Sigmoid)
	}
}

// WKV runs the recurrence of each window forward and over its reversal
// (all windows and both directions as one batched WKV7 from zero states,
// or one WKV7Bi where the backend has it), mixes the two outputs by the
// gate, then Out7.
func (x mixer) WKV(f block.Ops, l int, w, a, b kernels.Tensor, o kernels.Out7) {
	sc, T := x.sc, x.m.dims.Tokens
	if bi, ok := x.m.be.(kernels.BiWKV); ok {
		f.Copy(sc.state, sc.zero)
		bi.WKV7Bi(o.Y, sc.acts.Tmp, sc.state, o.R, w, o.K, o.V, a, b, T)
		f.GateMix(o.Y, o.Y, sc.acts.Tmp, sc.gate)
		f.Out7(o)
		return
	}
	st := sc.acts.Stack // r, w, k, v, a, b, y with twice the rows
	n := o.Y.Rows
	for _, t := range st[:6] {
		f.FlipRows(t.Slice(n, 2*n), t.Slice(0, n), T)
	}
	f.Copy(sc.state, sc.zero)
	f.WKV7(st[6], sc.state, st[0], st[1], st[2], st[3], st[4], st[5])
	f.FlipRows(sc.acts.Tmp, st[6].Slice(n, 2*n), T)
	f.GateMix(o.Y, o.Y, sc.acts.Tmp, sc.gate)
	f.Out7(o)
}

// batchViews are a scratch's tensors for a batch of n ≤ its capacity
// windows (views of the first rows).
type batchViews struct {
	acts           *block.Acts
	xx, gate       kernels.Tensor
	state, zero    kernels.Tensor
	pooled, normed kernels.Tensor
	logits         kernels.Tensor
}

// views returns sc's tensors for n windows (rows = n·tokens).
func (sc *scratch) views(n, rows int, d Dims) *batchViews {
	if sc.view != nil && sc.view.pooled.Rows == n {
		return sc.view
	}
	states := 2 * n * d.Width
	sc.view = &batchViews{acts: sc.acts.Rows(rows), xx: sc.xx.Slice(0, rows), gate: sc.gate.Slice(0, rows),
		state: sc.state.Slice(0, states), zero: sc.zero.Slice(0, states),
		pooled: sc.pooled.Slice(0, n), normed: sc.normed.Slice(0, n), logits: sc.logits.Slice(0, n)}
	return sc.view
}

// scratch holds the activations of up to n windows, allocated once and
// used for any smaller batch through views.
type scratch struct {
	n      int
	view   *batchViews
	acts   *block.Acts    // n·tokens rows; the WKV's inputs stacked twice unless the backend has WKV7Bi
	tileT  kernels.Tensor // [n·tokens, P·P]
	xx     kernels.Tensor // [n·tokens, C] the shift's residual
	gate   kernels.Tensor // [n·tokens, H]
	state  kernels.Tensor // [2n·H·64, 64]
	zero   kernels.Tensor // same, all zero
	pooled kernels.Tensor // [n, C]
	normed kernels.Tensor // [n, C]
	logits kernels.Tensor // [n, classes]
	owned  []kernels.Tensor

	tiles []float32
	out   []byte
}

func (sc *scratch) free(be kernels.Backend) {
	sc.acts.Free(be)
	for _, t := range sc.owned {
		be.Free(t)
	}
	sc.owned = nil
}

// maxScratch is how many scratch sizes the model keeps.
const maxScratch = 2

// getScratch returns the smallest scratch with room for n windows,
// allocating one of exactly n on first need. m.mu is held.
func (m *Model) getScratch(n int) (*scratch, error) {
	best := -1
	for i, sc := range m.scratch {
		if sc.n >= n && (best < 0 || sc.n < m.scratch[best].n) {
			best = i
		}
	}
	if best >= 0 {
		sc := m.scratch[best]
		m.scratch = append(append(m.scratch[:best:best], m.scratch[best+1:]...), sc)
		return sc, nil
	}
	d := m.dims
	rows, C, H := n*d.Tokens, d.Width, d.Width/block.HeadSize
	stack := 2 // room for the reversed copies of the WKV's inputs
	if _, ok := m.be.(kernels.BiWKV); ok {
		stack = 1
	}
	acts, err := block.NewActs(m.be, rows, d.Dims, stack)
	if err != nil {
		return nil, fmt.Errorf("arwkv: %d windows: %w", n, err)
	}
	sc := &scratch{n: n, acts: acts}
	alloc := func(r, c int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var t kernels.Tensor
		if t, err = m.be.Alloc(kernels.F32, r, c); err == nil {
			sc.owned = append(sc.owned, t)
		}
		return t
	}
	sc.tileT = alloc(rows, d.Patch*d.Patch)
	sc.xx = alloc(rows, C)
	sc.gate = alloc(rows, H)
	sc.state = alloc(2*n*C, block.HeadSize)
	sc.zero = alloc(2*n*C, block.HeadSize)
	sc.pooled = alloc(n, C)
	sc.normed = alloc(n, C)
	sc.logits = alloc(n, d.Classes)
	if err != nil {
		sc.free(m.be)
		return nil, fmt.Errorf("arwkv: %d windows: %w", n, err)
	}
	sc.tiles = make([]float32, rows*d.Patch*d.Patch)
	sc.out = make([]byte, 4*n*d.Classes)
	if len(m.scratch) >= maxScratch {
		m.scratch[0].free(m.be)
		m.scratch = m.scratch[1:]
	}
	m.scratch = append(m.scratch, sc)
	return sc, nil
}
