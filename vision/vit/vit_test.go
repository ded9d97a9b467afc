package vit

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// testBackend returns a CPU backend closed when t ends.
func testBackend(t testing.TB) kernels.Backend { return visiontest.CPU(t) }

// cudaBackend returns a GPU backend closed when t ends, or skips t.
func cudaBackend(t testing.TB) kernels.Backend { return visiontest.CUDA(t) }

// fixtureConfigs returns the towers' entries of the fixture's config.
func fixtureConfigs(t testing.TB) map[string]Config {
	t.Helper()
	var doc struct {
		Config map[string]Config `json:"config"`
	}
	visiontest.JSON(t, &doc)
	return doc.Config
}

var towers = []struct {
	name, prefix, pixels, feat string
}{
	{"dino", "vit.dino_featurizer.", "mm.pixels_dino.npy", "mm.feat_dino.npy"},
	{"siglip", "vit.siglip_featurizer", "mm.pixels_siglip.npy", "mm.feat_siglip.npy"},
}

func TestFeaturesGolden(t *testing.T) { checkGolden(t, testBackend(t)) }

// TestFeaturesGoldenCUDA is TestFeaturesGolden on the GPU; it skips,
// saying why, without one.
func TestFeaturesGoldenCUDA(t *testing.T) { checkGolden(t, cudaBackend(t)) }

func checkGolden(t *testing.T, be kernels.Backend) {
	cfgs := fixtureConfigs(t)
	f := visiontest.Checkpoint(t)
	for _, tc := range towers {
		t.Run(tc.name, func(t *testing.T) {
			jc, ok := cfgs[tc.name]
			if !ok {
				t.Fatalf("mm.visualrwkv.json: no config for %s", tc.name)
			}
			if jc.GELU != "erf" {
				t.Fatalf("fixture uses %q GELU; only erf is implemented", jc.GELU)
			}
			cfg := jc
			tower, err := Load(f, tc.prefix, cfg, be)
			if err != nil {
				t.Fatal(err)
			}
			defer tower.Close()
			pix := visiontest.NPY(t, tc.pixels)
			want := visiontest.NPY(t, tc.feat)
			if !slices.Equal(want.Shape, []int{cfg.Patches(), cfg.Dim}) {
				t.Fatalf("%s shape %v, want [%d %d]", tc.feat, want.Shape, cfg.Patches(), cfg.Dim)
			}
			got, err := tower.Features(context.Background(), pix.Data)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want.Data) {
				t.Fatalf("got %d values, want %d", len(got), len(want.Data))
			}
			var mean, sq, maxd float64
			for _, v := range want.Data {
				mean += float64(v)
			}
			mean /= float64(len(want.Data))
			for i, v := range want.Data {
				sq += (float64(v) - mean) * (float64(v) - mean)
				maxd = max(maxd, math.Abs(float64(got[i])-float64(v)))
			}
			std := math.Sqrt(sq / float64(len(want.Data)))
			t.Logf("%s: max |Δ| = %.3g, std = %.3g, max|Δ|/std = %.3g", tc.name, maxd, std, maxd/std)
			if !(maxd <= 1e-3*std) {
				t.Errorf("%s: max |Δ| %.3g exceeds 1e-3 × std (%.3g)", tc.name, maxd, 1e-3*std)
			}
		})
	}
}

func TestFeaturesBadInput(t *testing.T) {
	cfgs := fixtureConfigs(t)
	f := visiontest.Checkpoint(t)
	tower, err := Load(f, "vit.dino_featurizer.", cfgs["dino"], testBackend(t))
	if err != nil {
		t.Fatal(err)
	}
	n := 3 * tower.Config().ImageSize * tower.Config().ImageSize
	for _, size := range []int{0, 1, n - 1, n + 1, 2 * n} {
		if _, err := tower.Features(context.Background(), make([]float32, size)); err == nil {
			t.Errorf("Features with %d values (want %d): no error", size, n)
		}
	}
	if _, err := tower.Features(context.Background(), make([]float32, n)); err != nil {
		t.Errorf("Features with %d values: %v", n, err)
	}
}

// editSource wraps a Source, hiding one tensor or changing its shape.
type editSource struct {
	core.Source
	hide  string
	shape map[string][]int
}

func (s editSource) Lookup(name string) (checkpoint.Info, bool) {
	if name == s.hide {
		return checkpoint.Info{}, false
	}
	info, ok := s.Source.Lookup(name)
	if sh, found := s.shape[name]; found && ok {
		info.Shape = sh
	}
	return info, ok
}

func TestLoadErrors(t *testing.T) {
	cfgs := fixtureConfigs(t)
	f := visiontest.Checkpoint(t)
	dino := cfgs["dino"]
	tests := []struct {
		name    string
		src     core.Source
		cfg     func(Config) Config
		wantErr string
	}{
		{"missing qkv", editSource{Source: f, hide: "vit.dino_featurizer.blocks.1.attn.qkv.weight"}, nil,
			"missing tensor vit.dino_featurizer.blocks.1.attn.qkv.weight"},
		{"missing gamma", editSource{Source: f, hide: "vit.dino_featurizer.blocks.0.ls2.gamma"}, nil,
			"missing tensor vit.dino_featurizer.blocks.0.ls2.gamma"},
		{"missing registers", editSource{Source: f, hide: "vit.dino_featurizer.reg_token"}, nil,
			"missing tensor vit.dino_featurizer.reg_token"},
		{"wrong patch shape", editSource{Source: f, shape: map[string][]int{
			"vit.dino_featurizer.patch_embed.proj.weight": {64, 3, 7, 28}}}, nil,
			"patch_embed.proj.weight has shape [64 3 7 28]"},
		{"wrong mlp width", f, func(c Config) Config { c.MLPHidden = 128; return c },
			"mlp.fc1.weight has shape [256 64], want [128 64]"},
		{"wrong image size", f, func(c Config) Config { c.ImageSize = 70; return c }, "pos_embed has shape"},
		{"heads do not divide", f, func(c Config) Config { c.Heads = 3; return c }, "3 heads do not divide width 64"},
		{"feature block past depth", f, func(c Config) Config { c.FeatureBlock = 4; return c }, "feature block 4"},
		{"image not a multiple of patch", f, func(c Config) Config { c.ImageSize = 57; return c }, "not a positive multiple"},
		{"wrong prefix", f, func(c Config) Config { return c }, "missing tensor"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dino
			if tc.cfg != nil {
				cfg = tc.cfg(cfg)
			}
			prefix := "vit.dino_featurizer."
			if tc.name == "wrong prefix" {
				prefix = "vit.nope"
			}
			_, err := Load(tc.src, prefix, cfg, testBackend(t))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load: error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func BenchmarkFeaturesFixture(b *testing.B) {
	cfgs := fixtureConfigs(b)
	f := visiontest.Checkpoint(b)
	for _, tc := range towers {
		b.Run(tc.name, func(b *testing.B) {
			tower, err := Load(f, tc.prefix, cfgs[tc.name], testBackend(b))
			if err != nil {
				b.Fatal(err)
			}
			pix := visiontest.NPY(b, tc.pixels)
			for b.Loop() {
				if _, err := tower.Features(context.Background(), pix.Data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
