package vision

import (
	"context"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
	"github.com/goose-rwkv/goose/vision/sam"
	"github.com/goose-rwkv/goose/vision/vit"
)

// TestPipeline runs the fixture's normalised pixels through the three
// towers, concatenates their features per row (DINOv2 | SigLIP | SAM) and
// projects them, comparing with the reference's concatenated features and
// projected embeddings (which TestVisualSplice in core feeds to the LM).
func TestPipeline(t *testing.T) { checkPipeline(t, visiontest.CPU(t)) }

// TestPipelineCUDA is TestPipeline on the GPU; it skips, saying why,
// without one.
func TestPipelineCUDA(t *testing.T) { checkPipeline(t, visiontest.CUDA(t)) }

func checkPipeline(t *testing.T, be kernels.Backend) {
	f, cfg := fixture(t)
	feat := features(t, f, cfg, be)
	within(t, "features", feat, visiontest.NPY(t, "mm.features.npy").Data)

	proj, err := LoadProjector(f, be)
	if err != nil {
		t.Fatal(err)
	}
	defer proj.Close()
	emb, err := proj.Project(feat)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "projected", emb, visiontest.NPY(t, "mm.projected.npy").Data)
}

// features runs the fixture's normalised pixels through the three towers
// of src on be and concatenates their features per row (DINOv2 | SigLIP |
// SAM).
func features(t *testing.T, src core.Source, cfg Config, be kernels.Backend) []float32 {
	t.Helper()
	dino, err := vit.Load(src, "vit.dino_featurizer.", cfg.DINO, be)
	if err != nil {
		t.Fatal(err)
	}
	defer dino.Close()
	sig, err := vit.Load(src, "vit.siglip_featurizer.", cfg.SigLIP, be)
	if err != nil {
		t.Fatal(err)
	}
	defer sig.Close()
	enc, err := sam.Load(src, "vit.sam_featurizer.", cfg.SAM, be)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ctx := context.Background()
	parts := make([][]float32, 3)
	if parts[0], err = dino.Features(ctx, visiontest.NPY(t, "mm.pixels_dino.npy").Data); err != nil {
		t.Fatal(err)
	}
	if parts[1], err = sig.Features(ctx, visiontest.NPY(t, "mm.pixels_siglip.npy").Data); err != nil {
		t.Fatal(err)
	}
	if parts[2], err = enc.Features(ctx, visiontest.NPY(t, "mm.pixels_sam.npy").Data); err != nil {
		t.Fatal(err)
	}
	rows := len(parts[0]) / cfg.DINO.Dim
	var feat []float32
	for r := range rows {
		for _, p := range parts {
			w := len(p) / rows
			feat = append(feat, p[r*w:(r+1)*w]...)
		}
	}
	return feat
}

// within fails unless got matches want element-wise at 1e-3·std(want).
func within(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var s, s2 float64
	for _, v := range want {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(want))
	tol := 1e-3 * math.Sqrt(s2/n-(s/n)*(s/n))
	worst := 0.0
	for i := range want {
		d := math.Abs(float64(got[i] - want[i]))
		if !(d <= tol) {
			t.Fatalf("%s[%d] = %g, want %g (tolerance %.3g)", what, i, got[i], want[i], tol)
		}
		worst = max(worst, d)
	}
	t.Logf("%s: max |Δ| = %.3g (tolerance %.3g)", what, worst, tol)
}
