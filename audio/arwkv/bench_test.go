package arwkv

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
)

// memSource is an in-memory float32 checkpoint with small random weights.
type memSource map[string]checkpoint.Info

func (m memSource) Tensors() []checkpoint.Info { return nil }

func (m memSource) Lookup(name string) (checkpoint.Info, bool) {
	i, ok := m[name]
	return i, ok
}

func (m memSource) Bytes(name string) ([]byte, error) {
	i, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %s", name)
	}
	rng := rand.New(rand.NewPCG(uint64(len(name)), 1))
	b := make([]byte, 4*i.Len())
	for k := range i.Len() {
		binary.LittleEndian.PutUint32(b[4*k:], math.Float32bits(float32(rng.NormFloat64()*0.05)))
	}
	return b, nil
}

// realSizeSource has the tensor names and shapes of an A-RWKV-T model
// (12 layers, C=192, 62×8 grid, 527 classes).
func realSizeSource(layers, c, tokens, classes int) memSource {
	m := memSource{}
	add := func(name string, shape ...int) {
		m[name] = checkpoint.Info{Name: name, DType: kernels.F32, Shape: shape}
	}
	h := c / headSize
	add("emb.weight", c, 1, 16, 16)
	add("emb.bias", c)
	add("pos_embed", 1, tokens, c)
	add("ln_out.weight", c)
	add("ln_out.bias", c)
	add("head.weight", classes, c)
	for l := range layers {
		p := func(s string) string { return fmt.Sprintf("blocks.%d.%s", l, s) }
		for _, s := range []string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "att.ln_x.weight", "att.ln_x.bias", "ffn.value.bias"} {
			add(p(s), c)
		}
		for _, s := range []string{"x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a"} {
			add(p("att."+s), 1, 1, c)
		}
		add(p("ffn.x_k"), 1, 1, c)
		add(p("att.r_k"), h, headSize)
		for _, s := range []string{"w", "a", "v", "g"} {
			add(p("att."+s+"1"), c, 32)
			add(p("att."+s+"2"), 32, c)
		}
		for _, s := range []string{"receptance", "key", "value", "output"} {
			add(p("att."+s+".weight"), c, c)
		}
		add(p("att.gate.weight"), h, headSize, 1)
		add(p("att.time_shift.weight"), c, 1, 3, 3)
		add(p("ffn.time_shift.weight"), c, 1, 3, 3)
		add(p("ffn.key.weight"), 4*c, c)
		add(p("ffn.key.bias"), 4*c)
		add(p("ffn.value.weight"), c, 4*c)
	}
	return m
}

// BenchmarkLogitsRealT times one 10 s clip at the A-RWKV-T size.
func BenchmarkLogitsRealT(b *testing.B) {
	cfg := Config{Model: ModelConfig{Grid: [2]int{62, 8}, Patch: 16}}
	tg, err := Load(realSizeSource(12, 192, 496, 527), cfg)
	if err != nil {
		b.Fatal(err)
	}
	in := make([]float32, tg.Frames()*tg.Bins())
	for i := range in {
		in[i] = float32(math.Sin(float64(i)))
	}
	for b.Loop() {
		if _, err := tg.Logits(in); err != nil {
			b.Fatal(err)
		}
	}
}
