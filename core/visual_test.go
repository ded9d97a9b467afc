package core

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
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

	// The same prompt in one pass (ForwardSegments), the image rows on
	// the backend: the last position's logits.
	rows, err := be.Alloc(kernels.F32, n, C)
	if err != nil {
		t.Fatal(err)
	}
	defer be.Free(rows)
	if err := be.Upload(rows, half.Bytes(proj.Data)); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.NewState()
	defer st2.Free()
	last := make([]float32, V)
	if err := m.ForwardSegments(ctx, st2, []Segment{{Tokens: before}, {Rows: rows}, {Tokens: after}}, last); err != nil {
		t.Fatal(err)
	}
	if d, at := maxDiff(last, want.Data[3*V:]); d > tol {
		t.Fatalf("one pass: logits at the last position: max |Δ| = %.3g at %d, tolerance %.3g", d, at, tol)
	}
}

// TestForwardSegments feeds tokens, embedding rows and tokens in one pass
// whose chunks (256 rows on the CPU) cut across the segments, and checks
// the logits and the state against feeding the segments one call after
// another.
func TestForwardSegments(t *testing.T) {
	be := newCPU(t)
	cfg := Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
	src, err := RandomSource(cfg, 4)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(src, LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(7, 8))
	toks := func(n int) []int32 {
		ids := make([]int32, n)
		for i := range ids {
			ids[i] = int32(rng.IntN(cfg.Vocab))
		}
		return ids
	}
	a, b := toks(100), toks(50)
	host := make([]float32, 300*cfg.Width)
	for i := range host {
		host[i] = float32(rng.NormFloat64() * 0.5)
	}
	rows, _ := be.Alloc(kernels.F32, 300, cfg.Width)
	defer be.Free(rows)
	if err := be.Upload(rows, half.Bytes(host)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want, got := make([]float32, cfg.Vocab), make([]float32, cfg.Vocab)
	st1, _ := m.NewState()
	defer st1.Free()
	if err := m.Forward(ctx, st1, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.ForwardEmbedTensor(ctx, st1, rows, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward(ctx, st1, b, want); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.NewState()
	defer st2.Free()
	if err := m.ForwardSegments(ctx, st2, []Segment{{Tokens: a}, {Rows: rows}, {Tokens: b}}, got); err != nil {
		t.Fatal(err)
	}
	if d, at := maxDiff(got, want); d > 1e-4*std(want) {
		t.Fatalf("logits: max |Δ| = %.3g at %d, one call per segment vs one pass", d, at)
	}
	// The states agree too: the next token's logits match.
	next := toks(1)
	if err := m.Forward(ctx, st1, next, want); err != nil {
		t.Fatal(err)
	}
	if err := m.Forward(ctx, st2, next, got); err != nil {
		t.Fatal(err)
	}
	if d, _ := maxDiff(got, want); d > 1e-4*std(want) {
		t.Fatalf("after one more token: max |Δ| = %.3g", d)
	}
	// Bad segments are refused before anything runs.
	for _, segs := range [][]Segment{{{Tokens: []int32{-1}}}, {{Tokens: []int32{int32(cfg.Vocab)}}}, {{Rows: rows.Reshape(600, cfg.Width/2)}}} {
		if err := m.ForwardSegments(ctx, st2, segs, nil); err == nil {
			t.Errorf("segments %v accepted", segs)
		}
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
