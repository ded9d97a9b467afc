// Package arwkv runs the AudioRWKV-7 (A-RWKV) audio tagger on the CPU in
// float32: a 16×16 patch embedding of a normalised log-mel spectrogram,
// RWKV-7 blocks whose token shift is a 3×3 depthwise convolution over the
// patch grid (ConvShift) and whose WKV runs in both directions (Bi-WKV),
// mean pooling, a final LayerNorm and a linear head giving one logit per
// class (527 AudioSet labels for the released models).
package arwkv

import (
	"errors"
	"fmt"
	"math"

	"github.com/goose-rwkv/goose/core"
)

// headSize is the RWKV-7 head size used by every A-RWKV model.
const headSize = 64

// Tagger is a loaded A-RWKV model. It is immutable, and Logits may be
// called from several goroutines at once.
type Tagger struct {
	width, heads, classes int
	gridT, gridF, patch   int
	ffnWidth              int
	params                int64

	embW, embB []float32 // [C, patch*patch], [C]
	pos        []float32 // [T, C]
	layers     []layer
	lnOutW     []float32
	lnOutB     []float32
	head       []float32 // [classes, C]
}

// Frames returns the number of spectrogram frames Logits expects.
func (t *Tagger) Frames() int { return t.gridT * t.patch }

// Bins returns the number of mel bins Logits expects.
func (t *Tagger) Bins() int { return t.gridF * t.patch }

// Layers returns the number of blocks.
func (t *Tagger) Layers() int { return len(t.layers) }

// Width returns the number of channels.
func (t *Tagger) Width() int { return t.width }

// Params returns the number of parameters the model uses.
func (t *Tagger) Params() int64 { return t.params }

// Classes returns the number of logits Logits returns.
func (t *Tagger) Classes() int { return t.classes }

// Logits runs the model on input, a normalised spectrogram of Frames()
// rows of Bins() values (time-major), and returns one logit per class.
func (t *Tagger) Logits(input []float32) ([]float32, error) {
	want := t.Frames() * t.Bins()
	if len(input) != want {
		return nil, fmt.Errorf("arwkv: input has %d values, want %d (%d frames × %d bins)",
			len(input), want, t.Frames(), t.Bins())
	}
	for i, v := range input {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("arwkv: input value %d (frame %d, bin %d) is %v",
				i, i/t.Bins(), i%t.Bins(), v)
		}
	}
	T, C := t.gridT*t.gridF, t.width
	x := t.patchEmbed(input)
	for i := range x {
		x[i] += t.pos[i]
	}
	buf := make([]float32, T*C)
	var vFirst []float32
	for l := range t.layers {
		ly := &t.layers[l]
		layerNorm(buf, x, ly.ln1W, ly.ln1B, C)
		att := t.timeMix(ly, buf, &vFirst, l == 0)
		addInPlace(x, att)
		layerNorm(buf, x, ly.ln2W, ly.ln2B, C)
		ffn := t.channelMix(ly, buf)
		addInPlace(x, ffn)
	}
	pooled := meanPool(x, T, C)
	normed := make([]float32, C)
	layerNorm(normed, pooled, t.lnOutW, t.lnOutB, C)
	out := make([]float32, t.classes)
	linear(out, normed, t.head, nil, 1, C, t.classes)
	return out, nil
}

// errShape reports a tensor with an unexpected shape.
var errShape = errors.New("wrong shape")

// Load reads an A-RWKV checkpoint (the reference state_dict names) from
// src. cfg.Model.Grid and cfg.Model.Patch fix the input size; the model's
// widths come from the tensor shapes and are checked against cfg.Model
// where it sets them. Errors name the missing or misshapen tensor.
func Load(src core.Source, cfg Config) (*Tagger, error) {
	m := cfg.Model
	if m.Patch <= 0 || m.Grid[0] <= 0 || m.Grid[1] <= 0 {
		return nil, fmt.Errorf("arwkv: config grid %v patch %d: want positive sizes", m.Grid, m.Patch)
	}
	r := reader{src: src}
	embInfo, ok := src.Lookup("emb.weight")
	if !ok {
		return nil, fmt.Errorf("arwkv: tensor emb.weight: missing")
	}
	if len(embInfo.Shape) != 4 || embInfo.Shape[1] != 1 || embInfo.Shape[2] != m.Patch || embInfo.Shape[3] != m.Patch {
		return nil, fmt.Errorf("arwkv: tensor emb.weight: %w %v, want [C 1 %d %d]", errShape, embInfo.Shape, m.Patch, m.Patch)
	}
	C := embInfo.Shape[0]
	if C%headSize != 0 || C == 0 {
		return nil, fmt.Errorf("arwkv: tensor emb.weight: width %d is not a multiple of %d", C, headSize)
	}
	if m.Width != 0 && m.Width != C {
		return nil, fmt.Errorf("arwkv: config n_embd %d, checkpoint has %d", m.Width, C)
	}
	H := C / headSize
	T := m.Grid[0] * m.Grid[1]
	t := &Tagger{width: C, heads: H, gridT: m.Grid[0], gridF: m.Grid[1], patch: m.Patch}
	t.embW = r.get("emb.weight", C, 1, m.Patch, m.Patch)
	t.embB = r.get("emb.bias", C)
	t.pos = r.get("pos_embed", 1, T, C)
	t.lnOutW = r.get("ln_out.weight", C)
	t.lnOutB = r.get("ln_out.bias", C)
	if hi, ok := src.Lookup("head.weight"); ok && len(hi.Shape) == 2 {
		t.classes = hi.Shape[0]
	}
	t.head = r.get("head.weight", t.classes, C)
	if r.err != nil {
		return nil, r.err
	}
	if t.classes == 0 {
		return nil, fmt.Errorf("arwkv: tensor head.weight: no classes")
	}
	if m.Classes != 0 && m.Classes != t.classes {
		return nil, fmt.Errorf("arwkv: config num_classes %d, checkpoint has %d", m.Classes, t.classes)
	}
	n := 0
	for {
		if _, ok := src.Lookup(fmt.Sprintf("blocks.%d.ln1.weight", n)); !ok {
			break
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("arwkv: tensor blocks.0.ln1.weight: missing")
	}
	if m.Layers != 0 && m.Layers != n {
		return nil, fmt.Errorf("arwkv: config n_layer %d, checkpoint has %d", m.Layers, n)
	}
	fi, ok := src.Lookup("blocks.0.ffn.key.weight")
	if !ok || len(fi.Shape) != 2 || fi.Shape[0] == 0 {
		return nil, fmt.Errorf("arwkv: tensor blocks.0.ffn.key.weight: missing or %v", errShape)
	}
	t.ffnWidth = fi.Shape[0]
	t.layers = make([]layer, n)
	for l := range n {
		t.layers[l] = r.layer(l, C, H, t.ffnWidth)
		if r.err != nil {
			return nil, r.err
		}
	}
	t.params = r.params
	return t, nil
}
