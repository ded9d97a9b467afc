package arwkv

import (
	"fmt"
	"slices"

	"github.com/goose-rwkv/goose/core"
)

// layer holds one block's weights as float32.
type layer struct {
	ln1W, ln1B, ln2W, ln2B []float32

	// time mix
	attShift                     []float32 // [C, 9] depthwise 3×3
	xr, xw, xk, xv, xa, xg       []float32 // [C] lerp weights
	w0, a0, v0                   []float32 // [C]
	w1, w2, a1, a2, v1, v2       []float32 // LoRAs [C, D] and [D, C]
	g1, g2                       []float32
	dw, da, dv, dg               int       // LoRA ranks
	kk, ka, rk                   []float32 // [C]
	receptance, key, value, outW []float32 // [C, C]
	gate                         []float32 // [H, 64]: per-head Bi-WKV mixing gate
	lnxW, lnxB                   []float32

	// channel mix
	ffnShift  []float32 // [C, 9]
	ffnXk     []float32
	ffnKeyW   []float32 // [F, C]
	ffnKeyB   []float32 // [F]
	ffnValueW []float32 // [C, F]
	ffnValueB []float32 // [C]
}

// reader decodes tensors to float32, remembering the first error.
type reader struct {
	src    core.Source
	err    error
	params int64
}

// get returns the named tensor as float32 after checking its shape.
func (r *reader) get(name string, shape ...int) []float32 {
	if r.err != nil {
		return nil
	}
	info, ok := r.src.Lookup(name)
	if !ok {
		r.err = fmt.Errorf("arwkv: tensor %s: missing", name)
		return nil
	}
	if !slices.Equal(info.Shape, shape) {
		r.err = fmt.Errorf("arwkv: tensor %s: %w %v, want %v", name, errShape, info.Shape, shape)
		return nil
	}
	b, err := r.src.Bytes(name)
	if err != nil {
		r.err = fmt.Errorf("arwkv: tensor %s: %w", name, err)
		return nil
	}
	r.params += int64(info.Len())
	dst := make([]float32, info.Len())
	if err := info.DType.Decode(dst, b); err != nil {
		r.err = fmt.Errorf("arwkv: tensor %s: %w", name, err)
		return nil
	}
	return dst
}

// rank returns the second dimension of a [C, D] LoRA matrix, or 0 after
// recording an error.
func (r *reader) rank(name string, c int) int {
	if r.err != nil {
		return 0
	}
	info, ok := r.src.Lookup(name)
	if !ok {
		r.err = fmt.Errorf("arwkv: tensor %s: missing", name)
		return 0
	}
	if len(info.Shape) != 2 || info.Shape[0] != c || info.Shape[1] == 0 {
		r.err = fmt.Errorf("arwkv: tensor %s: %w %v, want [%d D]", name, errShape, info.Shape, c)
		return 0
	}
	return info.Shape[1]
}

// layer reads block l.
func (r *reader) layer(l, c, h, f int) layer {
	p := func(s string) string { return fmt.Sprintf("blocks.%d.%s", l, s) }
	var y layer
	y.ln1W, y.ln1B = r.get(p("ln1.weight"), c), r.get(p("ln1.bias"), c)
	y.ln2W, y.ln2B = r.get(p("ln2.weight"), c), r.get(p("ln2.bias"), c)
	y.attShift = r.get(p("att.time_shift.weight"), c, 1, 3, 3)
	vec := func(s string) []float32 { return r.get(p(s), 1, 1, c) }
	y.xr, y.xw, y.xk = vec("att.x_r"), vec("att.x_w"), vec("att.x_k")
	y.xv, y.xa, y.xg = vec("att.x_v"), vec("att.x_a"), vec("att.x_g")
	y.w0, y.a0, y.v0 = vec("att.w0"), vec("att.a0"), vec("att.v0")
	y.kk, y.ka = vec("att.k_k"), vec("att.k_a")
	y.rk = r.get(p("att.r_k"), h, headSize)
	y.dw, y.da = r.rank(p("att.w1"), c), r.rank(p("att.a1"), c)
	y.dv, y.dg = r.rank(p("att.v1"), c), r.rank(p("att.g1"), c)
	y.w1, y.w2 = r.get(p("att.w1"), c, y.dw), r.get(p("att.w2"), y.dw, c)
	y.a1, y.a2 = r.get(p("att.a1"), c, y.da), r.get(p("att.a2"), y.da, c)
	y.v1, y.v2 = r.get(p("att.v1"), c, y.dv), r.get(p("att.v2"), y.dv, c)
	y.g1, y.g2 = r.get(p("att.g1"), c, y.dg), r.get(p("att.g2"), y.dg, c)
	y.receptance = r.get(p("att.receptance.weight"), c, c)
	y.key = r.get(p("att.key.weight"), c, c)
	y.value = r.get(p("att.value.weight"), c, c)
	y.outW = r.get(p("att.output.weight"), c, c)
	y.gate = r.get(p("att.gate.weight"), h, headSize, 1)
	y.lnxW, y.lnxB = r.get(p("att.ln_x.weight"), c), r.get(p("att.ln_x.bias"), c)
	y.ffnShift = r.get(p("ffn.time_shift.weight"), c, 1, 3, 3)
	y.ffnXk = vec("ffn.x_k")
	y.ffnKeyW, y.ffnKeyB = r.get(p("ffn.key.weight"), f, c), r.get(p("ffn.key.bias"), f)
	y.ffnValueW, y.ffnValueB = r.get(p("ffn.value.weight"), c, f), r.get(p("ffn.value.bias"), c)
	return y
}
