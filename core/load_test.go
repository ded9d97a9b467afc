package core

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
)

// editedSource changes a checkpoint's tensor list: drop removes a tensor,
// add inserts an extra one, reshape gives one a different shape.
type editedSource struct {
	Source
	drop, add string
	reshape   map[string][]int
}

func (s editedSource) Tensors() []checkpoint.Info {
	var out []checkpoint.Info
	for _, t := range s.Source.Tensors() {
		if t.Name == s.drop {
			continue
		}
		if sh, ok := s.reshape[t.Name]; ok {
			t.Shape = sh
		}
		out = append(out, t)
	}
	if s.add != "" {
		out = append(out, checkpoint.Info{Name: s.add, DType: out[0].DType, Shape: []int{1}})
		slices.SortFunc(out, func(a, b checkpoint.Info) int { return strings.Compare(a.Name, b.Name) })
	}
	return out
}

func (s editedSource) Lookup(name string) (checkpoint.Info, bool) {
	for _, t := range s.Tensors() {
		if t.Name == name {
			return t, true
		}
	}
	return checkpoint.Info{}, false
}

func (s editedSource) Bytes(name string) ([]byte, error) {
	if name == s.add {
		return make([]byte, 2), nil
	}
	return s.Source.Bytes(name)
}

// TestLoadErrors checks that bad checkpoints give errors that name the file
// and the tensor, never a panic.
func TestLoadErrors(t *testing.T) {
	be := newCPU(t)
	f, err := checkpoint.Open(filepath.Join("..", "testdata", "rwkv7", "tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := []struct {
		name string
		src  Source
		want []string
	}{
		{"missing", editedSource{Source: f, drop: "blocks.1.att.key.weight"}, []string{"missing tensors", "blocks.1.att.key.weight"}},
		{"unexpected", editedSource{Source: f, add: "blocks.0.ffn.s_emb.weight"}, []string{"unexpected tensors", "blocks.0.ffn.s_emb.weight", "rwkv7a"}},
		{"wrong shape", editedSource{Source: f, reshape: map[string][]int{"blocks.1.ffn.value.weight": {128, 100}}}, []string{"blocks.1.ffn.value.weight", "shape [128 100]"}},
		{"no embedding", editedSource{Source: f, drop: "emb.weight"}, []string{"missing tensors emb.weight"}},
		{"layer-0 value lora ignored", editedSource{Source: f, add: "blocks.0.att.v0"}, nil},
		// One absurd layer index is rejected before a tensor list of that
		// many layers is built (it cost 5 s and 622 MB).
		{"absurd layer index", editedSource{Source: f, add: "blocks.4000.ln1.weight"}, []string{"layers missing", "highest layer index is 4000", "blocks.2.*"}},
		{"huge layer index", editedSource{Source: f, add: "blocks.60000.ln1.weight"}, []string{"unexpected tensors", "blocks.60000.ln1.weight"}},
		{"overflowing layer index", editedSource{Source: f, add: "blocks.99999999999999999999.ln1.weight"}, []string{"unexpected tensors"}},
	}
	for _, tc := range tests {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := Load(tc.src, LoadOptions{Backend: be})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
			t.Errorf("%s: load allocated %d MB", tc.name, alloc>>20)
		}
		if tc.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else {
				m.Close()
			}
			continue
		}
		if err == nil {
			m.Close()
			t.Errorf("%s: loaded", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}

	// A truncated file: the error names the file.
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "rwkv7", "tiny.pth"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, 1000, len(raw) / 2, len(raw) - 100} {
		path := filepath.Join(t.TempDir(), "cut.pth")
		os.WriteFile(path, raw[:n], 0o644)
		m, err := LoadFile(path, LoadOptions{Backend: be})
		if err == nil {
			m.Close()
			t.Errorf("truncated to %d bytes: loaded", n)
		} else if !strings.Contains(err.Error(), "cut.pth") {
			t.Errorf("truncated to %d bytes: error %q does not name the file", n, err)
		}
	}
}

// smallDevice is a backend that reports little free memory.
type smallDevice struct{ kernels.Backend }

func (d smallDevice) Device() kernels.DeviceInfo {
	return kernels.DeviceInfo{Name: "Tiny GPU", TotalMemory: 1 << 20, FreeMemory: 1 << 20}
}

func TestLoadChecksDeviceMemory(t *testing.T) {
	f, err := checkpoint.Open(filepath.Join("..", "testdata", "rwkv7", "small.pth"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = Load(f, LoadOptions{Backend: smallDevice{newCPU(t)}})
	var me *MemoryError
	if !errors.As(err, &me) || !strings.Contains(err.Error(), "Tiny GPU") || !strings.Contains(err.Error(), "GB free") {
		t.Fatalf("got %v, want a MemoryError naming the device and the sizes", err)
	}
}
