package nn

import (
	"math"
	"sync/atomic"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

func TestDense(t *testing.T) {
	be, err := cpu.New(cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	const n, in, out = 5, 7, 3
	w := make([]float32, out*in)
	x := make([]float32, n*in)
	for i := range w {
		w[i] = float32(i%5) - 2
	}
	for i := range x {
		x[i] = float32(i%3) + 0.5
	}
	wt, err := be.Weight(kernels.F32, out, in, FloatBytes(w))
	if err != nil {
		t.Fatal(err)
	}
	d := Dense{W: wt, Bias: []float32{1, 2, 3}, In: in, Out: out}
	defer d.Free(be)
	y := make([]float32, n*out)
	if err := d.Apply(be, y, x, n); err != nil {
		t.Fatal(err)
	}
	for r := range n {
		for o := range out {
			want := d.Bias[o]
			for k := range in {
				want += x[r*in+k] * w[o*in+k]
			}
			if math.Abs(float64(y[r*out+o]-want)) > 1e-5 {
				t.Fatalf("y[%d,%d] = %g, want %g", r, o, y[r*out+o], want)
			}
		}
	}
}

func TestParallelFor(t *testing.T) {
	for _, tc := range []struct{ n, grain int }{{0, 1}, {1, 1}, {10, 3}, {1000, 7}, {5, 0}} {
		var seen []atomic.Int32
		seen = make([]atomic.Int32, tc.n)
		ParallelFor(tc.n, tc.grain, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if seen[i].Load() != 1 {
				t.Fatalf("n=%d grain=%d: index %d visited %d times", tc.n, tc.grain, i, seen[i].Load())
			}
		}
	}
}
