//go:build linux

package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

type pathSource struct {
	Source
	path string
}

func (p pathSource) Path() string { return p.path }

// TestWeightsFileTruncatedWhileMapped: a model file truncated (as by
// `cp new.safetensors live.safetensors`) while a model uses it fails the
// forward pass with an error naming the file; the process lives (before,
// SIGBUS killed it), the next call fails the same way, and a fresh model
// of the rewritten file works.
func TestWeightsFileTruncatedWhileMapped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live.safetensors")
	cfg := Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
	if err := WriteRandom(path, cfg, 7); err != nil {
		t.Fatal(err)
	}
	be, err := cpu.New(cpu.Options{Threads: 4}) // faults on pool workers too
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	tests := []struct {
		name  string
		open  func(f *checkpoint.File) Source
		want  string
		fault bool
	}{
		// The size check before each call notices the truncation.
		{"changed", func(f *checkpoint.File) Source { return f }, "changed on disk", false},
		// Without it, reading the mapping faults; the guard turns that
		// into an error naming the file.
		{"fault", func(f *checkpoint.File) Source { return pathSource{Source: f, path: f.Path()} }, "read weights from " + path, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := WriteRandom(path, cfg, 7); err != nil {
				t.Fatal(err)
			}
			f, err := checkpoint.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			m, err := Load(tc.open(f), LoadOptions{Backend: be})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			st, _ := m.NewState()
			defer st.Free()
			logits := make([]float32, cfg.Vocab)
			ctx := context.Background()
			if err := m.Forward(ctx, st, []int32{1, 2, 3}, logits); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			for _, tokens := range [][]int32{{1, 2, 3}, {4}, {5}} {
				err := m.Forward(ctx, st, tokens, logits)
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
					t.Fatalf("forward %v after truncation: %v, want an error naming %s containing %q", tokens, err, path, tc.want)
				}
				var fe *memfault.Error
				if errors.As(err, &fe) != tc.fault {
					t.Errorf("forward %v: memfault.Error in %v: %v, want %v", tokens, err, !tc.fault, tc.fault)
				}
				t.Log(err)
			}
			// Batched decode (serve --batch) is guarded the same way.
			b, err := m.NewBatch(2, BatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			st2, _ := m.NewState()
			defer st2.Free()
			for _, s := range []*State{st, st2} {
				if _, err := b.Join(s); err != nil {
					t.Fatal(err)
				}
			}
			err = b.Step(ctx, []int32{6, 7}, make([]float32, 2*cfg.Vocab), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("batch step after truncation: %v, want an error naming %s containing %q", err, path, tc.want)
			}
			var fe *memfault.Error
			if errors.As(err, &fe) != tc.fault {
				t.Errorf("batch step: memfault.Error in %v: %v, want %v", err, !tc.fault, tc.fault)
			}
		})
	}
}
