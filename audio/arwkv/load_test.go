package arwkv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
)

// editedSource wraps a checkpoint, hiding one tensor or changing its shape.
type editedSource struct {
	core.Source
	hide  string
	shape map[string][]int
}

func (s editedSource) Lookup(name string) (checkpoint.Info, bool) {
	if name == s.hide {
		return checkpoint.Info{}, false
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
	good := readConfig(t)
	withModel := func(edit func(*ModelConfig)) Config {
		c := good
		edit(&c.Model)
		return c
	}
	tests := []struct {
		name string
		src  core.Source
		cfg  Config
		want string
	}{
		{"missing gate", editedSource{Source: f, hide: "blocks.1.att.gate.weight"}, good, "blocks.1.att.gate.weight: missing"},
		{"missing emb", editedSource{Source: f, hide: "emb.weight"}, good, "emb.weight: missing"},
		{"missing ffn bias", editedSource{Source: f, hide: "blocks.0.ffn.key.bias"}, good, "blocks.0.ffn.key.bias: missing"},
		{"bad shift shape", editedSource{Source: f, shape: map[string][]int{"blocks.0.att.time_shift.weight": {128, 1, 5, 5}}}, good, "blocks.0.att.time_shift.weight: wrong shape"},
		{"bad r_k shape", editedSource{Source: f, shape: map[string][]int{"blocks.1.att.r_k": {64, 2}}}, good, "blocks.1.att.r_k: wrong shape"},
		{"grid mismatch", f, withModel(func(m *ModelConfig) { m.Grid = [2]int{4, 4} }), "pos_embed: wrong shape"},
		{"patch mismatch", f, withModel(func(m *ModelConfig) { m.Patch = 8 }), "emb.weight: wrong shape"},
		{"zero grid", f, withModel(func(m *ModelConfig) { m.Grid = [2]int{0, 4} }), "want positive sizes"},
		{"layers mismatch", f, withModel(func(m *ModelConfig) { m.Layers = 3 }), "n_layer 3, checkpoint has 2"},
		{"classes mismatch", f, withModel(func(m *ModelConfig) { m.Classes = 527 }), "num_classes 527, checkpoint has 37"},
		{"width mismatch", f, withModel(func(m *ModelConfig) { m.Width = 192 }), "n_embd 192, checkpoint has 128"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.src, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestFromWAV runs the whole pipeline from mm.wav: Kaldi fbank, pad or
// truncate to target_length, normalise, tag.
func TestFromWAV(t *testing.T) {
	cfg := readConfig(t)
	tg := loadFixture(t)
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
		maxIn = max(maxIn, abs(float64(input[i]-wantIn.Data[i])))
	}
	t.Logf("input max |Δ| = %.3g", maxIn)
	if maxIn > 1e-3 {
		t.Errorf("normalised fbank max |Δ| %.3g > 1e-3", maxIn)
	}
	got, err := tg.Logits(input)
	if err != nil {
		t.Fatal(err)
	}
	want := readNpy(t, "mm.arwkv_logits.npy")
	var maxd float64
	for i := range got {
		maxd = max(maxd, abs(float64(got[i]-want.Data[i])))
	}
	s := std(want.Data)
	t.Logf("logits from wav: max |Δ|/std = %.3g", maxd/s)
	if maxd > 1e-3*s {
		t.Errorf("logits from wav: max |Δ| %.3g > 1e-3 × std %.3g", maxd, s)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
