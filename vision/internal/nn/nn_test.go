package nn

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// memSource is an in-memory checkpoint of F32 tensors.
type memSource map[string]struct {
	shape []int
	data  []float32
}

func (m memSource) Tensors() []checkpoint.Info {
	var out []checkpoint.Info
	for n := range m {
		info, _ := m.Lookup(n)
		out = append(out, info)
	}
	return out
}

func (m memSource) Lookup(name string) (checkpoint.Info, bool) {
	t, ok := m[name]
	return checkpoint.Info{Name: name, DType: kernels.F32, Shape: t.shape}, ok
}

func (m memSource) Bytes(name string) ([]byte, error) {
	t, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("no %s", name)
	}
	b := make([]byte, 4*len(t.data))
	for i, v := range t.data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b, nil
}

func TestLoader(t *testing.T) {
	be, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	src := memSource{
		"p.lin.weight": {[]int{3, 2}, []float32{1, 2, 3, 4, 5, 6}},
		"p.lin.bias":   {[]int{3}, []float32{0.5, -1, 2}},
		"p.bad":        {[]int{2}, []float32{1, float32(math.NaN())}},
	}
	l := &Loader{Src: src, Prefix: "p.", Be: be}
	d := l.Dense("lin", 3, 2, 3, 2)
	if l.Err() != nil {
		t.Fatal(l.Err())
	}
	if d.In() != 2 || d.Out() != 3 {
		t.Fatalf("dense %d→%d, want 2→3", d.In(), d.Out())
	}
	x, err := be.Alloc(kernels.F32, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := be.Upload(x, half.Bytes([]float32{1, -1})); err != nil {
		t.Fatal(err)
	}
	y, _ := be.Alloc(kernels.F32, 1, 3)
	be.Linear(y, x, d.W)
	be.Add(y, y, d.B)
	got, err := Download(be, y)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1 - 2 + 0.5, 3 - 4 - 1, 5 - 6 + 2}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("y = %v, want %v", got, want)
		}
	}
	for _, tc := range []struct {
		load func(*Loader)
		want string
	}{
		{func(l *Loader) { l.Vector("missing", 3) }, "missing tensor p.missing"},
		{func(l *Loader) { l.Matrix("lin.weight", 2, 3, 2, 3) }, "tensor p.lin.weight has shape [3 2], want [2 3]"},
		{func(l *Loader) { l.Vector("bad", 2) }, "tensor p.bad: element 1 is NaN"},
		{func(l *Loader) { l.Floats("lin.bias", -1, 3) }, "has shape [3], want [-1 3]"},
	} {
		l := &Loader{Src: src, Prefix: "p.", Be: be}
		tc.load(l)
		if l.Err() == nil || !strings.Contains(l.Err().Error(), tc.want) {
			t.Errorf("error %v, want one containing %q", l.Err(), tc.want)
		}
		l.Free()
	}
}

func TestCheckFinite(t *testing.T) {
	if err := CheckFinite([]float32{1, 2, 3}); err != nil {
		t.Error(err)
	}
	if err := CheckFinite([]float32{1, float32(math.Inf(1))}); err == nil || !strings.Contains(err.Error(), "element 1") {
		t.Errorf("infinite value: %v", err)
	}
}
