package core

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/internal/npy"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// golden describes one fixture in testdata/rwkv7 (see testdata/GOLDEN-README.md).
type golden struct {
	Layers    int     `json:"n_layer"`
	Width     int     `json:"n_embd"`
	Vocab     int     `json:"vocab_size"`
	Tokens    []int32 `json:"tokens"`
	Positions []int   `json:"logits_positions"`
	logits    *npy.Array
	shift     *npy.Array
	wkv       *npy.Array
}

func loadGolden(t testing.TB, name string) *golden {
	t.Helper()
	dir := filepath.Join("..", "testdata", "rwkv7")
	raw, err := os.ReadFile(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	g := &golden{}
	if err := json.Unmarshal(raw, g); err != nil {
		t.Fatalf("%s.json: %v", name, err)
	}
	for _, f := range []struct {
		dst  **npy.Array
		file string
	}{{&g.logits, ".logits.npy"}, {&g.shift, ".state_shift.npy"}, {&g.wkv, ".state_wkv.npy"}} {
		a, err := npy.ReadFile(filepath.Join(dir, name+f.file))
		if err != nil {
			t.Fatal(err)
		}
		*f.dst = a
	}
	return g
}

func newCPU(t testing.TB) kernels.Backend {
	t.Helper()
	be, err := cpu.New(cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// std is the population standard deviation of x.
func std(x []float32) float64 {
	var s, s2 float64
	for _, v := range x {
		s += float64(v)
		s2 += float64(v) * float64(v)
	}
	n := float64(len(x))
	return math.Sqrt(s2/n - (s/n)*(s/n))
}

// maxDiff returns max |a−b| and its index.
func maxDiff(a, b []float32) (float64, int) {
	worst, at := 0.0, -1
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(b[i]))
		if d > worst || math.IsNaN(d) {
			worst, at = d, i
			if math.IsNaN(d) {
				return math.Inf(1), i
			}
		}
	}
	return worst, at
}

// checkGolden runs the fixture's tokens in the given mode and compares every
// logits row and the final state with the reference at 1e-3·std(logits).
func checkGolden(t *testing.T, be kernels.Backend, name, file, mode string) {
	m, err := LoadFile(filepath.Join("..", "testdata", "rwkv7", file), LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkGoldenModel(t, m, name, mode, 1e-3)
}

// checkGoldenModel compares a loaded model with fixture name at tolFactor·std
// and returns the largest logits error seen, relative to std(logits).
func checkGoldenModel(t *testing.T, m *Model, name, mode string, tolFactor float64) float64 {
	t.Helper()
	g := loadGolden(t, name)
	c := m.Config()
	if c.Layers != g.Layers || c.Width != g.Width || c.Vocab != g.Vocab {
		t.Fatalf("config %+v, fixture says layers %d width %d vocab %d", c, g.Layers, g.Width, g.Vocab)
	}
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Free()
	V := c.Vocab
	all := make([]float32, len(g.Tokens)*V)
	ctx := context.Background()
	switch mode {
	case "seq":
		if err := m.ForwardAll(ctx, st, g.Tokens, all); err != nil {
			t.Fatal(err)
		}
	case "rnn":
		for i, tok := range g.Tokens {
			if err := m.Forward(ctx, st, []int32{tok}, all[i*V:(i+1)*V]); err != nil {
				t.Fatal(err)
			}
		}
	}
	sd := std(g.logits.Data)
	tol := tolFactor * sd
	worst := 0.0
	for r, pos := range g.Positions {
		want := g.logits.Data[r*V : (r+1)*V]
		got := all[pos*V : (pos+1)*V]
		d, at := maxDiff(got, want)
		if d > tol {
			t.Fatalf("logits after position %d: max |Δ| = %.3g at %d (got %g, want %g), tolerance %.3g", pos, d, at, got[at], want[at], tol)
		}
		worst = max(worst, d/sd)
	}
	f, err := st.Floats()
	if err != nil {
		t.Fatal(err)
	}
	C := c.Width
	for l := range c.Layers {
		att, ffn, wkv := st.Layer(f, l)
		for _, part := range []struct {
			name      string
			got, want []float32
		}{
			{"att shift", att, g.shift.Data[(2*l)*C : (2*l+1)*C]},
			{"ffn shift", ffn, g.shift.Data[(2*l+1)*C : (2*l+2)*C]},
			{"wkv", wkv, g.wkv.Data[l*C*64 : (l+1)*C*64]},
		} {
			ptol := tolFactor * max(std(part.want), 1e-3)
			if d, at := maxDiff(part.got, part.want); d > ptol {
				t.Errorf("layer %d %s: max |Δ| = %.3g at %d, tolerance %.3g", l, part.name, d, at, ptol)
			}
		}
	}
	return worst
}

func TestGolden(t *testing.T) {
	tests := []struct{ name, file string }{
		{"tiny", "tiny.pth"},
		{"small", "small.pth"},
		{"small", "small.safetensors"},
		{"long", "long.pth"},
	}
	for _, tc := range tests {
		for _, mode := range []string{"seq", "rnn"} {
			t.Run(fmt.Sprintf("%s/%s", tc.file, mode), func(t *testing.T) {
				if testing.Short() && tc.name == "long" && mode == "rnn" {
					t.Skip("long rnn in -short mode")
				}
				checkGolden(t, newCPU(t), tc.name, tc.file, mode)
			})
		}
	}
}
