package sam

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// testBackend returns a CPU backend closed when t ends.
func testBackend(t testing.TB) kernels.Backend { return visiontest.CPU(t) }

const prefix = "vit.sam_featurizer."

// fixtureConfig reads config.sam from the fixture's JSON.
func fixtureConfig(t testing.TB) Config {
	t.Helper()
	var doc struct {
		Config struct {
			SAM Config `json:"sam"`
		} `json:"config"`
	}
	visiontest.JSON(t, &doc)
	return doc.Config.SAM
}

func TestFeatures(t *testing.T) { checkFeatures(t, testBackend(t)) }

// TestFeaturesCUDA is TestFeatures on the GPU; it skips, saying why,
// without one.
func TestFeaturesCUDA(t *testing.T) { checkFeatures(t, visiontest.CUDA(t)) }

func checkFeatures(t *testing.T, be kernels.Backend) {
	cfg := fixtureConfig(t)
	enc, err := Load(visiontest.Checkpoint(t), prefix, cfg, be)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pixels := visiontest.NPY(t, "mm.pixels_sam.npy")
	want := visiontest.NPY(t, "mm.feat_sam.npy")
	if len(want.Shape) != 2 || want.Shape[0] != cfg.Tokens() || want.Shape[1] != cfg.FeatureDim() {
		t.Fatalf("mm.feat_sam.npy shape %v, config gives [%d %d]", want.Shape, cfg.Tokens(), cfg.FeatureDim())
	}
	got, err := enc.Features(context.Background(), pixels.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want.Data) {
		t.Fatalf("got %d values, want %d", len(got), len(want.Data))
	}
	var mean, sq float64
	for _, v := range want.Data {
		mean += float64(v)
	}
	mean /= float64(len(want.Data))
	for _, v := range want.Data {
		sq += (float64(v) - mean) * (float64(v) - mean)
	}
	std := math.Sqrt(sq / float64(len(want.Data)))
	var maxDiff float64
	for i := range got {
		maxDiff = max(maxDiff, math.Abs(float64(got[i])-float64(want.Data[i])))
	}
	t.Logf("max |Δ| = %.3g, std = %.3g, max |Δ|/std = %.3g", maxDiff, std, maxDiff/std)
	if !(maxDiff <= 1e-3*std) {
		t.Errorf("max |Δ| = %g > 1e-3 × std %g", maxDiff, std)
	}
}

func TestFeaturesBadInput(t *testing.T) {
	cfg := fixtureConfig(t)
	enc, err := Load(visiontest.Checkpoint(t), prefix, cfg, testBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * cfg.ImageSize * cfg.ImageSize
	nan := make([]float32, n)
	nan[7] = float32(math.NaN())
	inf := make([]float32, n)
	inf[n-1] = float32(math.Inf(1))
	tests := []struct {
		name   string
		pixels []float32
		want   string
	}{
		{"nil", nil, "pixel values"},
		{"short", make([]float32, n-1), "pixel values"},
		{"long", make([]float32, n+1), "pixel values"},
		{"nan", nan, "element 7 is NaN"},
		{"inf", inf, "is +Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enc.Features(context.Background(), tt.pixels)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// editedSource wraps a source, hiding one tensor or reporting another shape.
type editedSource struct {
	core.Source
	hide  string
	shape map[string][]int
}

func (s editedSource) Tensors() []checkpoint.Info {
	var out []checkpoint.Info
	for _, t := range s.Source.Tensors() {
		if i, ok := s.Lookup(t.Name); ok {
			out = append(out, i)
		}
	}
	return out
}

func (s editedSource) Lookup(name string) (checkpoint.Info, bool) {
	if name == s.hide {
		return checkpoint.Info{}, false
	}
	i, ok := s.Source.Lookup(name)
	if sh, ok2 := s.shape[name]; ok && ok2 {
		i.Shape = sh
	}
	return i, ok
}

func TestLoadErrors(t *testing.T) {
	cfg := fixtureConfig(t)
	f := visiontest.Checkpoint(t)
	withCfg := func(edit func(*Config)) Config {
		c := cfg
		c.GlobalBlocks = append([]int(nil), cfg.GlobalBlocks...)
		edit(&c)
		return c
	}
	tests := []struct {
		name   string
		src    core.Source
		prefix string // "" means the fixture's prefix
		cfg    Config
		want   string
	}{
		{"missing patch weight", editedSource{Source: f, hide: prefix + "patch_embed.proj.weight"}, "", cfg, "missing tensor " + prefix + "patch_embed.proj.weight"},
		{"missing rel pos", editedSource{Source: f, hide: prefix + "blocks.3.attn.rel_pos_w"}, "", cfg, "missing tensor " + prefix + "blocks.3.attn.rel_pos_w"},
		{"missing neck", editedSource{Source: f, hide: prefix + "neck.3.bias"}, "", cfg, "missing tensor " + prefix + "neck.3.bias"},
		{"wrong prefix", f, "sam.", cfg, "missing tensor sam.patch_embed.proj.weight"},
		{"shape qkv", editedSource{Source: f, shape: map[string][]int{prefix + "blocks.0.attn.qkv.weight": {64, 192}}}, "", cfg, "blocks.0.attn.qkv.weight has shape [64 192]"},
		{"shape pos", editedSource{Source: f, shape: map[string][]int{prefix + "pos_embed": {1, 8, 8}}}, "", cfg, "pos_embed has shape [1 8 8]"},
		{"more heads than checkpoint", f, "", withCfg(func(c *Config) { c.Heads = 4 }), "rel_pos_h has shape"},
		{"wider mlp", f, "", withCfg(func(c *Config) { c.MLPHidden = 128 }), "lin1.weight has shape [256 64], want [128 64]"},
		{"bad patch", f, "", withCfg(func(c *Config) { c.Patch = 15 }), "not a multiple of patch"},
		{"bad heads", f, "", withCfg(func(c *Config) { c.Heads = 3 }), "not a multiple of 3 heads"},
		{"global out of range", f, "", withCfg(func(c *Config) { c.GlobalBlocks = []int{1, 4} }), "global block 4"},
		{"no window", f, "", withCfg(func(c *Config) { c.Window = 0 }), "window 0"},
		{"gelu", f, "", withCfg(func(c *Config) { c.GELU = "tanh" }), "unsupported GELU"},
		{"zero depth", f, "", withCfg(func(c *Config) { c.Depth = 0 }), "positive"},
		{"no rel pos", f, "", withCfg(func(c *Config) { c.RelPos = false }), "relative positions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.prefix
			if p == "" {
				p = prefix
			}
			_, err := Load(tt.src, p, tt.cfg, testBackend(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestResizeRelPos(t *testing.T) {
	// 3 rows resampled to 5 with half-pixel centres: sources
	// (i+0.5)·0.6−0.5 = −0.2 (clamped to 0), 0.4, 1.0, 1.6, 2.2 (last row).
	rel := []float32{0, 10, 20}
	got := resizeRelPos(rel, 3, 1, 5)
	want := []float32{0, 4, 10, 16, 20}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("resizeRelPos = %v, want %v", got, want)
		}
	}
	if same := resizeRelPos(rel, 3, 1, 3); &same[0] != &rel[0] {
		t.Error("equal sizes should return the table unchanged")
	}
}

func BenchmarkFeatures(b *testing.B) {
	cfg := fixtureConfig(b)
	enc, err := Load(visiontest.Checkpoint(b), prefix, cfg, testBackend(b))
	if err != nil {
		b.Fatal(err)
	}
	pixels := visiontest.NPY(b, "mm.pixels_sam.npy")
	b.ResetTimer()
	for b.Loop() {
		if _, err := enc.Features(context.Background(), pixels.Data); err != nil {
			b.Fatal(err)
		}
	}
}
