package arwkv

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/cuda"
)

const fixtureDir = "../../testdata/arwkv"

func readConfig(t testing.TB) Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, "mm.arwkv.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("mm.arwkv.json: %v", err)
	}
	return cfg
}

func readNpy(t testing.TB, name string) *npy.Array {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newCPU(t testing.TB) kernels.Backend {
	t.Helper()
	be, err := cpu.New(cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// newCUDA opens the first GPU or skips the test (fails instead when
// GOOSE_CUDA_REQUIRED is set, as on the GPU test machine).
func newCUDA(t testing.TB) kernels.Backend {
	t.Helper()
	be, err := cuda.New(cuda.Options{})
	var ue *kernels.UnavailableError
	if errors.As(err, &ue) && os.Getenv("GOOSE_CUDA_REQUIRED") == "" {
		t.Skip("cuda: " + ue.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

func loadFixture(t testing.TB, be kernels.Backend) *Model {
	t.Helper()
	f, err := checkpoint.Open(filepath.Join(fixtureDir, "mm.arwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := Load(f, readConfig(t), be)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func std(x []float32) float64 {
	var m, v float64
	for _, e := range x {
		m += float64(e)
	}
	m /= float64(len(x))
	for _, e := range x {
		v += (float64(e) - m) * (float64(e) - m)
	}
	return math.Sqrt(v / float64(len(x)))
}

// checkGolden runs the fixture's input through the model, in a batch of
// three windows (the fixture between two others) and alone, and compares
// the logits with the reference at the fixture's tolerance (max |Δ| ≤
// 1e-3 × std).
func checkGolden(t *testing.T, be kernels.Backend) {
	m := loadFixture(t, be)
	in := readNpy(t, "mm.arwkv_input.npy")
	want := readNpy(t, "mm.arwkv_logits.npy")
	if len(in.Shape) != 2 || in.Shape[0] != m.Frames() || in.Shape[1] != m.Bins() {
		t.Fatalf("input shape %v, model wants [%d %d]", in.Shape, m.Frames(), m.Bins())
	}
	other := make([]float32, len(in.Data))
	for i := range other {
		other[i] = float32(math.Sin(float64(i) * 0.37))
	}
	// The batch of three comes first: the single window then runs in
	// views of its scratch.
	for _, batch := range [][][]float32{{other, in.Data, other}, {in.Data}} {
		out, err := m.Logits(context.Background(), batch)
		if err != nil {
			t.Fatal(err)
		}
		got := out[0]
		if len(batch) > 1 {
			got = out[1]
		}
		if len(got) != len(want.Data) {
			t.Fatalf("got %d logits, want %d", len(got), len(want.Data))
		}
		var maxd float64
		for i := range got {
			maxd = max(maxd, math.Abs(float64(got[i]-want.Data[i])))
		}
		s := std(want.Data)
		t.Logf("%s, batch of %d: max |Δ| = %.3g, std = %.3g, max |Δ|/std = %.3g", be.Name(), len(batch), maxd, s, maxd/s)
		if !(maxd <= 1e-3*s) {
			t.Errorf("%s, batch of %d: max |Δ| %.3g > 1e-3 × std %.3g", be.Name(), len(batch), maxd, s)
		}
		if len(batch) > 1 {
			var d float64
			for i := range out[0] {
				d = max(d, math.Abs(float64(out[0][i]-out[2][i])))
			}
			if d > 1e-4*s {
				t.Errorf("the same window at two places in a batch differs by %.3g", d)
			}
		}
	}
}

// TestGolden: the fixture's logits through the shared RWKV-7 block on the
// CPU backend.
func TestGolden(t *testing.T) { checkGolden(t, newCPU(t)) }

// TestGoldenFlipped: the same on the CPU with its WKV7Bi hidden, so the
// Bi-WKV runs as backends without it run it (FlipRows, one WKV7 over the
// stacked sequences, FlipRows back).
func TestGoldenFlipped(t *testing.T) {
	be := plainBackend{newCPU(t)}
	if _, ok := kernels.Backend(be).(kernels.BiWKV); ok {
		t.Fatal("plainBackend still has WKV7Bi")
	}
	checkGolden(t, be)
}

// plainBackend is a backend with only the methods of kernels.Backend.
type plainBackend struct{ kernels.Backend }

// TestGoldenCUDA: the same on the GPU.
func TestGoldenCUDA(t *testing.T) { checkGolden(t, newCUDA(t)) }

func TestLogitsBadInput(t *testing.T) {
	m := loadFixture(t, newCPU(t))
	n := m.Frames() * m.Bins()
	nan := make([]float32, n)
	nan[5] = float32(math.NaN())
	tests := []struct {
		name  string
		input []float32
		want  string
	}{
		{"nil", nil, "input 0 has 0 values"},
		{"short", make([]float32, n-1), "want 8192"},
		{"long", make([]float32, n+1), "want 8192"},
		{"nan", nan, "is NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Logits(context.Background(), [][]float32{tc.input})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Logits(ctx, [][]float32{make([]float32, n)}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	m.Close()
	if _, err := m.Logits(context.Background(), [][]float32{make([]float32, n)}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// plainOps hides the CPU backend's fused ops, so the shared block runs its
// composition of plain ops.
type plainOps struct{ kernels.Backend }

// TestFusedMatchesComposed: the model gives the same logits, bit for bit,
// through the backend's fused ops and through the block's composition of
// plain ops.
func TestFusedMatchesComposed(t *testing.T) {
	cpu := newCPU(t)
	in := readNpy(t, "mm.arwkv_input.npy")
	var out [2][]float32
	for i, be := range []kernels.Backend{cpu, plainOps{cpu}} {
		m := loadFixture(t, be)
		o, err := m.Logits(context.Background(), [][]float32{in.Data, in.Data})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = append(o[0], o[1]...)
	}
	for i := range out[0] {
		if out[0][i] != out[1][i] {
			t.Fatalf("logit %d: fused %g, composed %g", i, out[0][i], out[1][i])
		}
	}
}
