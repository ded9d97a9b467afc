package arwkv

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/core/weights"
)

// editedSource wraps a checkpoint, hiding tensors or changing shapes.
type editedSource struct {
	weights.Source
	hide  []string
	shape map[string][]int
}

func (s editedSource) Lookup(name string) (checkpoint.Info, bool) {
	for _, h := range s.hide {
		if name == h {
			return checkpoint.Info{}, false
		}
	}
	info, ok := s.Source.Lookup(name)
	if sh, found := s.shape[name]; ok && found {
		info.Shape = sh
	}
	return info, ok
}

func TestLoadErrors(t *testing.T) {
	f, err := checkpoint.Open(filepath.Join(fixtureDir, "mm.arwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be := newCPU(t)
	good := readConfig(t)
	withConfig := func(edit func(*Config)) Config {
		c := good
		edit(&c)
		return c
	}
	withModel := func(edit func(*ModelConfig)) Config {
		c := good
		edit(&c.Model)
		return c
	}
	tests := []struct {
		name    string
		src     weights.Source
		cfg     Config
		want    string
		missing bool
		shape   bool
	}{
		{"missing gate", editedSource{Source: f, hide: []string{"blocks.1.att.gate.weight"}}, good, "missing tensors blocks.1.att.gate.weight", true, false},
		{"missing several", editedSource{Source: f, hide: []string{"blocks.0.ffn.key.bias", "blocks.1.att.w2", "ln_out.bias"}}, good,
			"missing tensors blocks.0.ffn.key.bias, blocks.1.att.w2, ln_out.bias", true, false},
		{"missing emb", editedSource{Source: f, hide: []string{"emb.weight"}}, good, "missing tensors emb.weight", true, false},
		{"bad shift shape", editedSource{Source: f, shape: map[string][]int{"blocks.0.att.time_shift.weight": {128, 1, 5, 5}}}, good, "tensor blocks.0.att.time_shift.weight has shape [128 1 5 5]", false, true},
		{"bad r_k shape", editedSource{Source: f, shape: map[string][]int{"blocks.1.att.r_k": {64, 2}}}, good, "tensor blocks.1.att.r_k has shape [64 2]", false, true},
		{"bad emb", editedSource{Source: f, shape: map[string][]int{"emb.weight": {100, 1, 16, 16}}}, good, "tensor emb.weight has shape [100 1 16 16]", false, true},
		{"grid mismatch", f, withConfig(func(c *Config) { c.Model.Grid, c.TargetLength = [2]int{4, 4}, 64 }), "model.grid [4 4] (16 patches), checkpoint pos_embed has 32", false, false},
		{"patch mismatch", f, withConfig(func(c *Config) { c.Model.Patch, c.Model.Grid = 8, [2]int{16, 8} }), "model.patch 8, checkpoint emb.weight has 16×16", false, false},
		{"inconsistent config", f, withModel(func(m *ModelConfig) { m.Patch = 8 }), "target_length 128: want grid[0]·patch", false, false},
		{"zero grid", f, withModel(func(m *ModelConfig) { m.Grid = [2]int{0, 4} }), "model.grid [0 4]", false, false},
		{"layers mismatch", f, withModel(func(m *ModelConfig) { m.Layers = 3 }), "n_layer 3, checkpoint has 2", false, false},
		{"classes mismatch", f, withModel(func(m *ModelConfig) { m.Classes = 527 }), "num_classes 527, checkpoint has 37", false, false},
		{"width mismatch", f, withModel(func(m *ModelConfig) { m.Width = 192 }), "n_embd 192, checkpoint has 128", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src, tc.cfg, be)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			var me *weights.MissingError
			var se *weights.ShapeError
			if errors.As(err, &me) != tc.missing || errors.As(err, &se) != tc.shape {
				t.Errorf("err %T: missing %v, shape %v; want %v, %v", err, errors.As(err, &me), errors.As(err, &se), tc.missing, tc.shape)
			}
		})
	}
}

func TestInspect(t *testing.T) {
	f, err := checkpoint.Open(filepath.Join(fixtureDir, "mm.arwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !IsCheckpoint(f) {
		t.Fatal("the fixture is not recognised as A-RWKV")
	}
	d, err := Inspect(f)
	if err != nil {
		t.Fatal(err)
	}
	if d.Layers != 2 || d.Width != 128 || d.Classes != 37 || d.Tokens != 32 || d.Patch != 16 || d.FFN != 512 {
		t.Errorf("dims %+v", d)
	}
	lm, err := checkpoint.Open("../../testdata/rwkv7/tiny.pth")
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	if IsCheckpoint(lm) {
		t.Error("an RWKV-7 language model is recognised as A-RWKV")
	}
}

// TestFromWAV runs the whole pipeline from mm.wav: Kaldi fbank, pad or
// truncate to target_length, normalise, tag.
func TestFromWAV(t *testing.T) {
	cfg := readConfig(t)
	m := loadFixture(t, newCPU(t))
	r, err := os.Open(filepath.Join(fixtureDir, "mm.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	samples, format, err := wav.ReadAll(r, 1<<22)
	if err != nil {
		t.Fatal(err)
	}
	rate := format.Rate
	if rate != cfg.SampleRate {
		t.Fatalf("mm.wav rate %d, config %d", rate, cfg.SampleRate)
	}
	input, err := cfg.Input(samples, rate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Input(samples, rate/2); err == nil {
		t.Error("audio at the wrong rate was accepted")
	}
	wantIn := readNpy(t, "mm.arwkv_input.npy")
	var maxIn float64
	for i := range input {
		maxIn = max(maxIn, math.Abs(float64(input[i]-wantIn.Data[i])))
	}
	t.Logf("input max |Δ| = %.3g", maxIn)
	if maxIn > 1e-3 {
		t.Errorf("normalised fbank max |Δ| %.3g > 1e-3", maxIn)
	}
	out, err := m.Logits(context.Background(), [][]float32{input})
	if err != nil {
		t.Fatal(err)
	}
	want := readNpy(t, "mm.arwkv_logits.npy")
	var maxd float64
	for i, g := range out[0] {
		maxd = max(maxd, math.Abs(float64(g-want.Data[i])))
	}
	s := std(want.Data)
	t.Logf("logits from wav: max |Δ|/std = %.3g", maxd/s)
	if maxd > 1e-3*s {
		t.Errorf("logits from wav: max |Δ| %.3g > 1e-3 × std %.3g", maxd, s)
	}
	// A clip shorter than one frame is all padding.
	short, err := cfg.Input(samples[:10], rate)
	if err != nil {
		t.Fatal(err)
	}
	if pad := -cfg.NormMean / cfg.NormStd; short[0] != pad || short[len(short)-1] != pad {
		t.Errorf("short clip input %v…, want padding %v", short[:2], pad)
	}
}
