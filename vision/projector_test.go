package vision

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// TestProjector maps the fixture's concatenated tower features to LM
// embeddings and compares with the VisualRWKV-7 reference at 1e-3·std.
func TestProjector(t *testing.T) {
	dir := filepath.Join("..", "testdata", "visualrwkv")
	f, err := checkpoint.Open(filepath.Join(dir, "mm.visualrwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be, err := cpu.New(cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	p, err := LoadProjector(f, be)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	feat, err := npy.ReadFile(filepath.Join(dir, "mm.features.npy"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFile(filepath.Join(dir, "mm.projected.npy"))
	if err != nil {
		t.Fatal(err)
	}
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
