package vision

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// TestProjector maps the fixture's concatenated tower features to LM
// embeddings and compares with the VisualRWKV-7 reference at 1e-3·std.
func TestProjector(t *testing.T) {
	p, err := LoadProjector(visiontest.Checkpoint(t), visiontest.CPU(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	feat := visiontest.NPY(t, "mm.features.npy")
	want := visiontest.NPY(t, "mm.projected.npy")
	if p.InDim() != feat.Shape[1] || p.OutDim() != want.Shape[1] {
		t.Fatalf("projector %d→%d, fixture %v→%v", p.InDim(), p.OutDim(), feat.Shape, want.Shape)
	}
	got, err := p.Project(feat.Data)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "projected", got, want.Data)
	if _, err := p.Project(feat.Data[:10]); err == nil || !strings.Contains(err.Error(), "whole rows") {
		t.Errorf("partial row: %v", err)
	}
}

func TestLoadProjectorErrors(t *testing.T) {
	f, err := checkpoint.Open(filepath.Join("..", "testdata", "rwkv7", "tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be, _ := cpu.New(cpu.Options{Threads: 1})
	defer be.Close()
	if _, err := LoadProjector(f, be); err == nil || !strings.Contains(err.Error(), "missing tensor proj.gate.weight") {
		t.Errorf("checkpoint without a projector: %v", err)
	}
}
