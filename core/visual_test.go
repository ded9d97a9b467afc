package core

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels"
)

// TestVisualSplice runs the VisualRWKV-7 fixture's language model on its
// prompt with the projected image features spliced in place of the 16
// placeholder ids, and compares the logits at the last four positions with
// the reference (testdata/visualrwkv, from the VisualRWKV-7 reference code:
// prompt left-padded with token 261 to a multiple of 16, ln0 on every row).
func TestVisualSplice(t *testing.T) { checkVisualSplice(t, newCPU(t)) }

// TestVisualSpliceCUDA is TestVisualSplice on the GPU.
func TestVisualSpliceCUDA(t *testing.T) { checkVisualSplice(t, cudaBackend(t)) }

func checkVisualSplice(t *testing.T, be kernels.Backend) {
	dir := filepath.Join("..", "testdata", "visualrwkv")
	var fx struct {
		PromptIDs []int32 `json:"prompt_ids"`
		ImageID   int32   `json:"image_token_id"`
		PadID     int32   `json:"pad_token_id"`
		ChunkLen  int     `json:"chunk_len"`
		Argmax    int32   `json:"argmax_last"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "mm.visualrwkv.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	proj, err := npy.ReadFile(filepath.Join(dir, "mm.projected.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFile(filepath.Join(dir, "mm.logits_last4.npy"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Open(filepath.Join(dir, "mm.visualrwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := Load(SubSource(f, "rwkv."), LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	C, V := m.Config().Width, m.Config().Vocab
	if proj.Shape[1] != C {
		t.Fatalf("projected features are %v wide, the model %d", proj.Shape, C)
	}

	// Left-pad, then split the prompt at the run of image placeholders.
	ids := fx.PromptIDs
	for len(ids)%fx.ChunkLen != 0 {
		ids = append([]int32{fx.PadID}, ids...)
	}
	first, n := -1, 0
	for i, id := range ids {
		if id == fx.ImageID {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n != proj.Shape[0] {
		t.Fatalf("%d placeholders, %d feature rows", n, proj.Shape[0])
	}
	before, after := ids[:first], ids[first+n:]
	if len(after) < 4 {
		t.Fatalf("need 4 positions after the image, have %d", len(after))
	}

	ctx := context.Background()
	st, _ := m.NewState()
	defer st.Free()
	if err := m.Forward(ctx, st, before, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.ForwardEmbeds(ctx, st, proj.Data, nil); err != nil {
		t.Fatal(err)
	}
	logits := make([]float32, len(after)*V)
	if err := m.ForwardAll(ctx, st, after, logits); err != nil {
		t.Fatal(err)
	}
	got := logits[(len(after)-4)*V:]
	tol := 1e-3 * std(want.Data)
	if d, at := maxDiff(got, want.Data); d > tol {
		t.Fatalf("logits at the last 4 positions: max |Δ| = %.3g at %d (row %d), tolerance %.3g", d, at, at/V, tol)
	}
	if g := logits[(len(after)-1)*V:]; argmax(g) != fx.Argmax {
		t.Errorf("argmax of the last position = %d, reference %d", argmax(g), fx.Argmax)
	}
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

// TestLoadFileMultimodal loads the language model of a VisualRWKV-7
// checkpoint straight from the file.
func TestLoadFileMultimodal(t *testing.T) {
	m, err := LoadFile(filepath.Join("..", "testdata", "visualrwkv", "mm.visualrwkv.pth"), LoadOptions{Backend: newCPU(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if c := m.Config(); c.Layers != 2 || c.Width != 64 || c.Vocab != 65536 {
		t.Errorf("config %+v", c)
	}
}
