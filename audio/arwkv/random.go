package arwkv

import (
	"fmt"
	"math"
	"strings"

	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/kernels"
)

// ShapeDims returns the sizes of a released A-RWKV model: "t" (C = 192),
// "s" (384) or "b" (768), each 12 layers on the released 62×8 grid with
// 527 classes and the reference's LoRA ranks.
func ShapeDims(name string) (Dims, bool) {
	var C int
	switch strings.ToLower(name) {
	case "t":
		C = 192
	case "s":
		C = 384
	case "b":
		C = 768
	default:
		return Dims{}, false
	}
	return DimsFor(12, C, 527), true
}

// DimsFor returns the sizes of an A-RWKV model of the given depth, width
// and classes on the released grid, with the reference's LoRA ranks:
// max(32, round(1.8·√C/32)·32) for decay and in-context rate,
// round(1.3·√C/32)·32 for the value residual and round(0.6·C^0.8/32)·32
// for the gate.
func DimsFor(layers, width, classes int) Dims {
	c := float64(width)
	r := func(x float64) int { return max(32, int(math.Round(x/32))*32) }
	d := Dims{Layers: layers, Classes: classes, Tokens: 62 * 8, Patch: 16}
	d.Width, d.FFN = width, 4*width
	d.DecayLoRA, d.AlphaLoRA = r(1.8*math.Sqrt(c)), r(1.8*math.Sqrt(c))
	d.ValueLoRA, d.GateLoRA = r(1.3*math.Sqrt(c)), r(0.6*math.Pow(c, 0.8))
	return d
}

// Shapes lists every tensor of an A-RWKV model of dims d with its shape,
// as the reference state_dict holds them.
func Shapes(d Dims) map[string][]int {
	C, H, P := d.Width, d.Width/64, d.Patch
	s := map[string][]int{
		"emb.weight":    {C, 1, P, P},
		"emb.bias":      {C},
		"pos_embed":     {1, d.Tokens, C},
		"ln_out.weight": {C},
		"ln_out.bias":   {C},
		"head.weight":   {d.Classes, C},
	}
	for l := range d.Layers {
		p := fmt.Sprintf("blocks.%d.", l)
		for _, n := range []string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.ln_x.weight", "att.ln_x.bias", "ffn.value.bias"} {
			s[p+n] = []int{C}
		}
		for _, n := range []string{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a"} {
			s[p+"att."+n] = []int{1, 1, C}
		}
		s[p+"ffn.x_k"] = []int{1, 1, C}
		s[p+"att.r_k"] = []int{H, 64}
		for _, lr := range []struct {
			n string
			r int
		}{{"w", d.DecayLoRA}, {"a", d.AlphaLoRA}, {"v", d.ValueLoRA}, {"g", d.GateLoRA}} {
			s[p+"att."+lr.n+"1"] = []int{C, lr.r}
			s[p+"att."+lr.n+"2"] = []int{lr.r, C}
		}
		for _, n := range []string{"receptance", "key", "value", "output"} {
			s[p+"att."+n+".weight"] = []int{C, C}
		}
		s[p+"att.gate.weight"] = []int{H, 64, 1}
		s[p+"att.time_shift.weight"] = []int{C, 1, 3, 3}
		s[p+"ffn.time_shift.weight"] = []int{C, 1, 3, 3}
		s[p+"ffn.key.weight"] = []int{d.FFN, C}
		s[p+"ffn.key.bias"] = []int{d.FFN}
		s[p+"ffn.value.weight"] = []int{C, d.FFN}
	}
	return s
}

// RandomSource returns an in-memory A-RWKV checkpoint of dims d with
// random, well-scaled weights (matrices in dtype dt), deterministic in
// seed: the real shapes, for benchmarks and for trying the app without a
// download.
func RandomSource(d Dims, dt kernels.DType, seed uint64) (weights.Source, error) {
	if d.Layers < 1 || d.Layers > maxLayers || d.Width < 64 || d.Width%64 != 0 || d.Width > maxWidth || d.Classes < 1 || d.Classes > maxClasses {
		return nil, fmt.Errorf("arwkv: random model: bad sizes %d layers × width %d, %d classes", d.Layers, d.Width, d.Classes)
	}
	return weights.RandomSource(Shapes(d), dt, seed), nil
}
