// Package visiontest holds what the vision tests share: the compute
// backends they run on, the golden fixture (testdata/visualrwkv at the
// module's root) and random weights for benchmarks.
package visiontest

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/cuda"
	"github.com/goose-rwkv/goose/vision/internal/nn"
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
// on a machine without one (fails instead when GOOSE_CUDA_REQUIRED is set,
// as on a GPU test machine, like the kernels and audio tests).
func CUDA(tb testing.TB) kernels.Backend {
	tb.Helper()
	be, err := cuda.New(cuda.Options{})
	var un *kernels.UnavailableError
	if errors.As(err, &un) && os.Getenv("GOOSE_CUDA_REQUIRED") == "" {
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

// Random places random tensors on a backend, for benchmarks at real
// sizes (speed does not depend on the values). Its tensors live as long
// as the backend.
type Random struct {
	tb  testing.TB
	be  kernels.Backend
	rng *rand.Rand
}

// NewRandom returns a Random placing tensors on be, failing tb on an
// error; its values are the same in every run.
func NewRandom(tb testing.TB, be kernels.Backend) *Random {
	return &Random{tb: tb, be: be, rng: rand.New(rand.NewPCG(1, 2))}
}

// Floats returns n values uniform in ±scale.
func (r *Random) Floats(n int, scale float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = (r.rng.Float32()*2 - 1) * scale
	}
	return v
}

// F32 returns an F32 [rows, cols] tensor of values uniform in ±scale.
func (r *Random) F32(rows, cols int, scale float32) kernels.Tensor {
	r.tb.Helper()
	t, err := r.be.Alloc(kernels.F32, rows, cols)
	if err == nil {
		err = r.be.Upload(t, half.Bytes(r.Floats(rows*cols, scale)))
	}
	if err != nil {
		r.tb.Fatal(err)
	}
	return t
}

// BF16 returns a weight [rows, cols] in bf16, the checkpoints' dtype, of
// values uniform in ±0.03.
func (r *Random) BF16(rows, cols int) kernels.Tensor {
	r.tb.Helper()
	raw := make([]byte, 2*rows*cols)
	for i := range rows * cols {
		binary.LittleEndian.PutUint16(raw[2*i:], half.F32ToBF16((r.rng.Float32()*2-1)*0.03))
	}
	w, err := r.be.Weight(kernels.BF16, rows, cols, raw)
	if err != nil {
		r.tb.Fatal(err)
	}
	return w
}

// Dense returns a Linear layer [rows, cols] of BF16 weights and F32 biases
// uniform in ±0.1.
func (r *Random) Dense(rows, cols int) nn.Dense {
	return nn.Dense{W: r.BF16(rows, cols), B: r.F32(1, rows, 0.1)}
}
