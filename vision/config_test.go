package vision

import (
	"context"
	"image"
	"image/color"
	"math"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// tinyLM is a language model small enough to generate in a test.
func tinyLM() core.Config {
	return core.Config{Layers: 1, Width: 64, Vocab: 256, DecayLoRA: 8, AlphaLoRA: 8, ValueLoRA: 8, GateLoRA: 8,
		DType: kernels.BF16}
}

// fixture opens the golden fixture's checkpoint (closed when t ends) and
// parses its towers' sizes.
func fixture(t testing.TB) (*checkpoint.File, Config) {
	t.Helper()
	cfg, err := ParseConfig(visiontest.Read(t, "mm.visualrwkv.json"))
	if err != nil {
		t.Fatal(err)
	}
	return visiontest.Checkpoint(t), cfg
}

// TestFromCheckpoint reads the released towers' sizes back from the shapes
// of a checkpoint at those sizes.
func TestFromCheckpoint(t *testing.T) {
	src, err := RandomSource(Released(), tinyLM(), 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := FromCheckpoint(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Released()
	want.SAM.LNEps = 1e-6
	want.DINO.GELU, want.SigLIP.GELU = "erf", "erf"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("FromCheckpoint:\n got %+v\nwant %+v", got, want)
	}
	// The small test towers read back the same.
	small, err := RandomSource(Small(), tinyLM(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := FromCheckpoint(small); err != nil || !reflect.DeepEqual(got, Small()) {
		t.Errorf("FromCheckpoint(Small):\n got %+v (%v)\nwant %+v", got, err, Small())
	}
	// A tower width outside the table of released towers needs a config.
	f, _ := fixture(t)
	if _, err := FromCheckpoint(f); err == nil || !strings.Contains(err.Error(), "dino.heads") || !strings.Contains(err.Error(), "--config") {
		t.Errorf("fixture (width-64 towers): %v, want an error naming dino.heads and --config", err)
	}
	// A plain language model.
	lm, err := core.RandomSource(tinyLM(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromCheckpoint(lm); err != ErrNotVisual {
		t.Errorf("plain language model: %v, want ErrNotVisual", err)
	}
}

// TestConfigCheck changes one field at a time; each error must name it.
func TestConfigCheck(t *testing.T) {
	f, base := fixture(t)
	if err := base.Check(f); err != nil {
		t.Fatalf("fixture config: %v", err)
	}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"sam.window", func(c *Config) { c.SAM.Window = 1000 }},
		{"sam.window", func(c *Config) { c.SAM.Window = -1 }},
		{"sam.window", func(c *Config) { c.SAM.Window = 0 }},
		{"sam.global_blocks", func(c *Config) { c.SAM.GlobalBlocks = []int{1, 99} }},
		{"sam.global_blocks", func(c *Config) { c.SAM.GlobalBlocks = []int{1, 1} }},
		{"sam.heads", func(c *Config) { c.SAM.Heads = 4 }},
		{"sam.merge", func(c *Config) { c.SAM.Merge = 4 }},
		{"sam.merge", func(c *Config) { c.SAM.Merge = 1 << 40 }},
		{"sam.image_size", func(c *Config) { c.SAM.ImageSize = 1 << 40 }},
		{"sam.image_size", func(c *Config) { c.SAM.ImageSize = 256 }},
		{"sam.depth", func(c *Config) { c.SAM.Depth = 5 }},
		{"sam.ln_eps", func(c *Config) { c.SAM.LNEps = float32(math.NaN()) }},
		{"sam.neck_channels", func(c *Config) { c.SAM.NeckChannels = 64 }},
		{"sam.rel_pos", func(c *Config) { c.SAM.RelPos = false }},
		{"dino.heads", func(c *Config) { c.DINO.Heads = 3 }},
		{"dino.heads", func(c *Config) { c.DINO.Heads = 0 }},
		{"dino.depth", func(c *Config) { c.DINO.Depth = 100 }},
		{"dino.feature_block", func(c *Config) { c.DINO.FeatureBlock = 4 }},
		{"dino.image_size", func(c *Config) { c.DINO.ImageSize = 70 }},
		{"dino.image_size", func(c *Config) { c.DINO.ImageSize = 1 << 30 }},
		{"dino.reg_tokens", func(c *Config) { c.DINO.Registers = 2 }},
		{"dino.class_token", func(c *Config) { c.DINO.ClassToken = false }},
		{"dino.layer_scale", func(c *Config) { c.DINO.LayerScale = false }},
		{"dino.ln_eps", func(c *Config) { c.DINO.LNEps = 0 }},
		{"dino.patch", func(c *Config) { c.DINO.Patch = 7 }},
		{"siglip.mlp_hidden", func(c *Config) { c.SigLIP.MLPHidden = 256 }},
		{"siglip.embed_dim", func(c *Config) { c.SigLIP.Dim = 128 }},
		{"siglip.gelu", func(c *Config) { c.SigLIP.GELU = "tanh" }},
	} {
		c := base
		c.SAM.GlobalBlocks = append([]int(nil), base.SAM.GlobalBlocks...)
		tc.edit(&c)
		err := c.Check(f)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming the field", tc.field, err)
		}
		// LoadEncoder checks too (a SAM window of 1000 used to pad the
		// map to a million tokens and run out of memory).
		be, _ := cpu.New(cpu.Options{Threads: 1})
		if e, err := LoadEncoder(f, be, c); err == nil {
			e.Close()
			t.Errorf("%s: LoadEncoder accepted the config", tc.field)
		}
		be.Close()
	}
}

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"dino":{},"siglip":{}}`, "want \"dino\""},
		{`{"dino":{"heads":2,"hedas":3},"siglip":{},"sam":{}}`, "dino: json: unknown field \"hedas\""},
		{`[1]`, "cannot unmarshal"},
	} {
		if _, err := ParseConfig([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
}

// FuzzConfig feeds configurations to Check and, when it accepts one, loads
// the fixture's towers with it and encodes an image: nothing may panic,
// allocate without bound or give non-finite rows.
func FuzzConfig(f *testing.F) {
	src, _ := fixture(f)
	f.Add(visiontest.Read(f, "mm.visualrwkv.json"))
	f.Add([]byte(`{"dino":{"image_size":56,"patch":14,"embed_dim":64,"depth":4,"heads":4,"mlp_hidden":256,"reg_tokens":4,"class_token":true,"layer_scale":true,"feature_block":3,"ln_eps":1e-6},` +
		`"siglip":{"image_size":56,"patch":14,"embed_dim":64,"depth":4,"heads":1,"mlp_hidden":239,"feature_block":0,"ln_eps":1e-5},` +
		`"sam":{"image_size":128,"patch":16,"embed_dim":64,"depth":4,"heads":2,"mlp_hidden":256,"window":8,"global_blocks":[0],"rel_pos":true,"neck_channels":32,"merge":2}}`))
	f.Add([]byte(`{"sam":{"window":1000}}`))
	be, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { be.Close() })
	img := image.NewGray(image.Rect(0, 0, 20, 10))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		if err := cfg.Check(src); err != nil {
			if !strings.Contains(err.Error(), "vision") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		e, err := LoadEncoder(src, be, cfg)
		if err != nil {
			t.Fatalf("Check accepted %s but LoadEncoder failed: %v", data, err)
		}
		defer e.Close()
		rows, err := e.Embed(context.Background(), img)
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		for i, v := range rows {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: row value %d is %v", data, i, v)
			}
		}
	})
}

// countingImage counts pixel reads.
type countingImage struct {
	image.Image
	n *atomic.Int64
}

func (c countingImage) At(x, y int) color.Color {
	c.n.Add(1)
	return c.Image.At(x, y)
}

// TestPrepareOnce checks that Encode reads an image once to prepare the
// three towers' inputs: the DINOv2 and SigLIP inputs share their resize
// (both 448² in the released models; 56² in the fixture) instead of
// converting and resizing the image again per tower.
func TestPrepareOnce(t *testing.T) {
	f, cfg := fixture(t)
	be, _ := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	e, err := LoadEncoder(f, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	src := image.NewRGBA64(image.Rect(0, 0, 30, 20))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 13)
	}
	var n atomic.Int64
	if err := e.Encode(context.Background(), countingImage{src, &n}, nil, func(kernels.Tensor) error { return nil }); err != nil {
		t.Fatal(err)
	}
	pix := e.pix
	if got, want := n.Load(), int64(30*20); got != want {
		t.Errorf("%d pixel reads to prepare the three towers' inputs, want %d (one pass over the image)", got, want)
	}
	if len(pix) != 3 || len(pix[0]) != 3*56*56 || len(pix[2]) != 3*128*128 {
		t.Fatalf("prepared sizes %d, %d, %d", len(pix[0]), len(pix[1]), len(pix[2]))
	}
}
