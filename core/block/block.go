// Package block is the RWKV-7 (x070) block that every Goose model runs, as
// one sequence of kernels ops:
//
//	x += TimeMix(LayerNorm₁(x))     // shift lerps, r/k/v, decay, in-context-rate,
//	                                // value-residual and gate LoRAs, WKV, GroupNorm,
//	                                // bonus, gated output projection
//	x += ChannelMix(LayerNorm₂(x))  // shift lerp, relu(key·x + b)², value·h + b
//
// The language model (package core) and the A-RWKV audio tagger (package
// audio/arwkv) differ only in what a Mixer supplies: the token shift — the
// previous token, carried in a state, for the language model; a 3×3
// depthwise convolution over the patch grid for A-RWKV — and the
// recurrence — one causal WKV carried in a state, or a bidirectional WKV
// whose two directions a per-head gate mixes. Everything else, weights
// and activations included, is shared.
//
// Forward issues the block through kernels.Fused when the backend has it
// (eight calls a layer for the language model, which a GPU runs as eight
// kernels for one token) and otherwise through a composition of the plain
// ops; both compute the same function.
package block

import (
	"fmt"

	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/kernels"
)

// Epsilons of the reference implementations.
const (
	LNEps = 1e-5  // every LayerNorm
	GNEps = 64e-5 // the time mix's GroupNorm (ln_x)
)

// HeadSize is the width of a head in every RWKV-7 release.
const HeadSize = 64

// Dims are a block's sizes, read from a checkpoint's tensor shapes.
type Dims struct {
	Width     int // C
	FFN       int // channel-mix hidden width (4C)
	DecayLoRA int // w1 columns
	AlphaLoRA int // a1 columns
	ValueLoRA int // v1 columns (0 for a one-layer model)
	GateLoRA  int // g1 columns
}

// Layer holds one block's weights on a backend. Vectors are F32 [1, C];
// matrices keep the checkpoint's dtype.
type Layer struct {
	LN1W, LN1B, LN2W, LN2B kernels.Tensor
	// Mix are the time mix's lerp weights x_r, x_w, x_k, x_v, x_a, x_g.
	Mix                    [6]kernels.Tensor
	W0, A0, V0, KK, KA, RK kernels.Tensor
	LnXW, LnXB             kernels.Tensor
	// LoRA matrices, used as stored: x·w1·w2.
	W1, W2, A1, A2, V1, V2, G1, G2 kernels.Tensor
	// Linear weights [out, in].
	R, K, V, O kernels.Tensor
	FFNMix     kernels.Tensor
	FFNKey     kernels.Tensor // [FFN, C]
	FFNValue   kernels.Tensor // [C, FFN]
	// FFNKeyBias [1, FFN] and FFNValueBias [1, C] are present in models
	// whose channel mix has biases (A-RWKV); zero otherwise.
	FFNKeyBias, FFNValueBias kernels.Tensor
}

// LoadOptions say which optional tensors a model's blocks have.
type LoadOptions struct {
	// ValueResidual is set for the layers that mix the first layer's
	// values into their own (all but the first): they need v0, v1, v2.
	ValueResidual bool
	// FFNBias: the channel mix's key and value have biases.
	FFNBias bool
}

// Load places block l (tensors "blocks.l.…", the reference state_dict
// names) through ld. Missing and misshapen tensors are reported by
// ld.Err.
func Load(ld *weights.Loader, l int, d Dims, opts LoadOptions) Layer {
	C, H := d.Width, d.Width/HeadSize
	p := fmt.Sprintf("blocks.%d.", l)
	vec := func(n string) kernels.Tensor { return ld.Vector(p+n, C) }
	var y Layer
	y.LN1W, y.LN1B = vec("ln1.weight"), vec("ln1.bias")
	y.LN2W, y.LN2B = vec("ln2.weight"), vec("ln2.bias")
	for i, n := range []string{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g"} {
		y.Mix[i] = vec("att." + n)
	}
	y.W0, y.A0 = vec("att.w0"), vec("att.a0")
	y.KK, y.KA = vec("att.k_k"), vec("att.k_a")
	y.RK = ld.Vector(p+"att.r_k", H, HeadSize)
	y.LnXW, y.LnXB = vec("att.ln_x.weight"), vec("att.ln_x.bias")
	y.W1, y.W2 = ld.Matrix(p+"att.w1", C, d.DecayLoRA), ld.Matrix(p+"att.w2", d.DecayLoRA, C)
	y.A1, y.A2 = ld.Matrix(p+"att.a1", C, d.AlphaLoRA), ld.Matrix(p+"att.a2", d.AlphaLoRA, C)
	y.G1, y.G2 = ld.Matrix(p+"att.g1", C, d.GateLoRA), ld.Matrix(p+"att.g2", d.GateLoRA, C)
	if opts.ValueResidual {
		y.V0 = vec("att.v0")
		y.V1, y.V2 = ld.Matrix(p+"att.v1", C, d.ValueLoRA), ld.Matrix(p+"att.v2", d.ValueLoRA, C)
	}
	y.R, y.K = ld.Linear(p+"att.receptance.weight", C, C), ld.Linear(p+"att.key.weight", C, C)
	y.V, y.O = ld.Linear(p+"att.value.weight", C, C), ld.Linear(p+"att.output.weight", C, C)
	y.FFNMix = vec("ffn.x_k")
	y.FFNKey, y.FFNValue = ld.Linear(p+"ffn.key.weight", d.FFN, C), ld.Linear(p+"ffn.value.weight", C, d.FFN)
	if opts.FFNBias {
		y.FFNKeyBias = ld.Vector(p+"ffn.key.bias", d.FFN)
		y.FFNValueBias = vec("ffn.value.bias")
	}
	return y
}

// Mixer supplies the parts of a block where models differ.
type Mixer interface {
	// NormShift sets norm = LayerNorm(x; w, b) (eps LNEps) and
	// dst[i] = norm + (shift(norm) − norm) ⊙ mix[i], shift being the
	// model's token shift of layer l's time mix (ffn false) or channel
	// mix (ffn true).
	NormShift(f Ops, l int, ffn bool, norm kernels.Tensor, dst []kernels.Tensor, x, w, b kernels.Tensor, mix []kernels.Tensor)
	// WKV runs layer l's recurrence on the prepared inputs — o.R, w, o.K,
	// o.V, a, b, as Prep7 leaves them — into o.Y, then Out7(o).
	WKV(f Ops, l int, w, a, b kernels.Tensor, o kernels.Out7)
}

// Ops are the operations a block issues: the plain ops and the fused
// ones (Fuse supplies the latter by composition where a backend lacks
// them).
type Ops interface {
	kernels.Ops
	kernels.Fused
}

// Fuse returns be with its fused ops, or with fused ops composed of its
// plain ones when it has none; tmp [T, C] is the composition's scratch for
// accumulating products.
func Fuse(be kernels.Ops, tmp kernels.Tensor) Ops {
	if f, ok := be.(Ops); ok {
		return f
	}
	return composed{be, tmp}
}

// Forward runs block l of a model on the rows of a.X, updating them in
// place: x += TimeMix(LN₁(x)), x += ChannelMix(LN₂(x)). a holds the
// activations for a.X.Rows rows; mx supplies the shift and the WKV.
func Forward(be kernels.Ops, ly *Layer, l int, a *Acts, mx Mixer) {
	f := Fuse(be, a.Tmp)
	x := a.X
	// Time mix: the r, k, v projections and the LoRA down-projections
	// (with their activations) are independent: one batch.
	mx.NormShift(f, l, false, a.XA, a.Mix[:], x, ly.LN1W, ly.LN1B, ly.Mix[:])
	xr, xw, xk, xv, xa, xg := a.Mix[0], a.Mix[1], a.Mix[2], a.Mix[3], a.Mix[4], a.Mix[5]
	items := a.items[:6]
	items[0] = kernels.LinearItem{Dst: a.R, X: xr, W: ly.R, Round: a.Round}
	items[1] = kernels.LinearItem{Dst: a.K, X: xk, W: ly.K, Round: a.Round}
	items[2] = kernels.LinearItem{Dst: a.V, X: xv, W: ly.V, Round: a.Round}
	items[3] = kernels.LinearItem{Dst: a.HW, X: xw, W: ly.W1, NN: true, Activate: true, Act: kernels.Tanh}
	items[4] = kernels.LinearItem{Dst: a.HA, X: xa, W: ly.A1, NN: true}
	items[5] = kernels.LinearItem{Dst: a.HG, X: xg, W: ly.G1, NN: true, Activate: true, Act: kernels.Sigmoid}
	if l > 0 {
		items = append(items, kernels.LinearItem{Dst: a.HV, X: xv, W: ly.V1, NN: true})
	}
	f.LinearBatch(items)
	p := kernels.Prep7{K: a.K, V: a.V, VFirst: a.VFirst, W: a.W, A: a.A, B: a.B,
		W0: ly.W0, A0: ly.A0, KK: ly.KK, KA: ly.KA, HeadSize: HeadSize}
	if l > 0 {
		p.ZV, p.V0 = a.ZV, ly.V0
	}
	f.Prep7Up(p, kernels.Up7{HW: a.HW, W2: ly.W2, HA: a.HA, A2: ly.A2,
		HV: a.HV, V2: ly.V2, HG: a.HG, G2: ly.G2, G: a.G})
	mx.WKV(f, l, a.W, a.A, a.B, kernels.Out7{Dst: a.O, Y: a.Y, R: a.R, K: a.K, V: a.V, G: a.G, RK: ly.RK,
		LnW: ly.LnXW, LnB: ly.LnXB, HeadSize: HeadSize, Eps: GNEps})
	a.one[0] = kernels.LinearItem{Dst: x, X: a.O, W: ly.O, Accumulate: true, Round: a.Round}
	f.LinearBatch(a.one[:])

	// Channel mix.
	a.ffnMix[0] = ly.FFNMix
	mx.NormShift(f, l, true, a.XA, a.Mix[:1], x, ly.LN2W, ly.LN2B, a.ffnMix[:])
	if ly.FFNKeyBias.Valid() {
		f.Linear(a.FFH, xr, ly.FFNKey)
		f.Add(a.FFH, a.FFH, ly.FFNKeyBias)
		f.Act(a.FFH, a.FFH, kernels.ReLUSquared)
	} else {
		a.one[0] = kernels.LinearItem{Dst: a.FFH, X: xr, W: ly.FFNKey, Activate: true, Act: kernels.ReLUSquared, Round: a.Round}
		f.LinearBatch(a.one[:])
	}
	a.one[0] = kernels.LinearItem{Dst: x, X: a.FFH, W: ly.FFNValue, Accumulate: true, Round: a.Round}
	f.LinearBatch(a.one[:])
	if ly.FFNValueBias.Valid() {
		f.Add(x, x, ly.FFNValueBias)
	}
}

// composed implements the fused ops by running each one's op sequence (the
// definitions in kernels.Fused) on a backend without them.
type composed struct {
	kernels.Ops
	tmp kernels.Tensor // [T, C] for accumulated products
}

func (c composed) LinearBatch(items []kernels.LinearItem) {
	for _, it := range items {
		dst := it.Dst
		if it.Accumulate {
			dst = c.tmp.Slice(0, it.Dst.Rows) // products accumulate into the residual stream [T, C]
		}
		if it.NN {
			c.MatMul(dst, it.X, it.W)
		} else {
			c.Linear(dst, it.X, it.W)
		}
		switch {
		case it.Accumulate:
			c.Add(it.Dst, it.Dst, dst)
		case it.Activate:
			c.Act(it.Dst, it.Dst, it.Act)
		}
	}
}

func (c composed) NormShiftMix(norm kernels.Tensor, dst []kernels.Tensor, x, w, b kernels.Tensor, eps float32, state kernels.Tensor, mix []kernels.Tensor) {
	c.LayerNorm(norm, x, w, b, eps)
	c.ShiftMix(dst, norm, state, mix)
}

func (c composed) Prep7Up(p kernels.Prep7, up kernels.Up7) {
	c.MatMul(p.W, up.HW, up.W2)
	c.MatMul(p.A, up.HA, up.A2)
	if p.ZV.Valid() {
		c.MatMul(p.ZV, up.HV, up.V2)
	}
	c.MatMul(up.G, up.HG, up.G2)
	c.Prep7(p)
}

func (c composed) WKV7Out(s, w, a, b kernels.Tensor, o kernels.Out7) {
	c.WKV7(o.Y, s, o.R, w, o.K, o.V, a, b)
	c.Out7(o)
}
