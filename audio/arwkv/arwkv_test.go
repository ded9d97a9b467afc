package arwkv

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/npy"
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

func loadFixture(t testing.TB) *Tagger {
	t.Helper()
	f, err := checkpoint.Open(filepath.Join(fixtureDir, "mm.arwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	tg, err := Load(f, readConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return tg
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

func TestLogitsMatchFixture(t *testing.T) {
	tg := loadFixture(t)
	in := readNpy(t, "mm.arwkv_input.npy")
	want := readNpy(t, "mm.arwkv_logits.npy")
	if len(in.Shape) != 2 || in.Shape[0] != tg.Frames() || in.Shape[1] != tg.Bins() {
		t.Fatalf("input shape %v, tagger wants [%d %d]", in.Shape, tg.Frames(), tg.Bins())
	}
	got, err := tg.Logits(in.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want.Data) {
		t.Fatalf("got %d logits, want %d", len(got), len(want.Data))
	}
	var maxd float64
	for i := range got {
		maxd = max(maxd, math.Abs(float64(got[i]-want.Data[i])))
	}
	s := std(want.Data)
	t.Logf("max |Δ| = %.3g, std = %.3g, max |Δ|/std = %.3g", maxd, s, maxd/s)
	if maxd > 1e-3*s {
		t.Errorf("max |Δ| %.3g > 1e-3 × std %.3g", maxd, s)
	}
}

func TestLogitsBadInput(t *testing.T) {
	tg := loadFixture(t)
	n := tg.Frames() * tg.Bins()
	nan := make([]float32, n)
	nan[5] = float32(math.NaN())
	tests := []struct {
		name  string
		input []float32
		want  string
	}{
		{"nil", nil, "input has 0 values"},
		{"short", make([]float32, n-1), "want 8192"},
		{"long", make([]float32, n+1), "want 8192"},
		{"nan", nan, "is NaN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tg.Logits(tc.input)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func BenchmarkLogits(b *testing.B) {
	tg := loadFixture(b)
	in := readNpy(b, "mm.arwkv_input.npy")
	for b.Loop() {
		if _, err := tg.Logits(in.Data); err != nil {
			b.Fatal(err)
		}
	}
}
