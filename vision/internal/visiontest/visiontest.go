// Package visiontest holds what the vision tests share: the compute
// backends they run on and the golden fixture, testdata/visualrwkv at the
// module's root.
package visiontest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/cuda"
)

// CPU returns a CPU backend closed when tb ends.
func CPU(tb testing.TB) kernels.Backend {
	tb.Helper()
	be, err := cpu.New(cpu.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	return be
}

// CUDA returns a GPU backend closed when tb ends, or skips tb, saying why,
// on a machine without one.
func CUDA(tb testing.TB) kernels.Backend {
	tb.Helper()
	be, err := cuda.New(cuda.Options{})
	var un *kernels.UnavailableError
	if errors.As(err, &un) {
		tb.Skipf("no GPU: %s", un.Reason)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	return be
}

// Path returns the path of the fixture file name. Tests run in their
// package's directory; the fixture is found from the module's root, the
// first directory above it holding go.mod.
func Path(tb testing.TB, name string) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "visualrwkv", name)
		}
		up := filepath.Dir(dir)
		if up == dir {
			tb.Fatal("visiontest: no go.mod above the test's directory")
		}
		dir = up
	}
}

// Read returns the contents of the fixture file name.
func Read(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// JSON decodes the fixture's description, mm.visualrwkv.json (the
// towers' sizes under "config", the question, the prompt's ids), into v.
func JSON(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(Read(tb, "mm.visualrwkv.json"), v); err != nil {
		tb.Fatalf("mm.visualrwkv.json: %v", err)
	}
}

// Checkpoint opens the fixture's checkpoint, mm.visualrwkv.pth, closed
// when tb ends.
func Checkpoint(tb testing.TB) *checkpoint.File {
	tb.Helper()
	f, err := checkpoint.Open(Path(tb, "mm.visualrwkv.pth"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}

// NPY reads the fixture array name (in C order, whatever order the file
// stores).
func NPY(tb testing.TB, name string) *npy.Array {
	tb.Helper()
	a, err := npy.ReadFile(Path(tb, name))
	if err != nil {
		tb.Fatal(err)
	}
	return a
}
