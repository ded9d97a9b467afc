package weights

import (
	"errors"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// hidden hides some tensors of a source.
type hidden struct {
	Source
	names []string
}

func (h hidden) Lookup(name string) (checkpoint.Info, bool) {
	for _, n := range h.names {
		if n == name {
			return checkpoint.Info{}, false
		}
	}
	return h.Source.Lookup(name)
}

func TestLoader(t *testing.T) {
	be, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	src := RandomSource(map[string][]int{
		"a.weight":  {4, 8},
		"b.bias":    {8},
		"c.vec":     {1, 1, 8},
		"conv":      {8, 1, 2, 2},
		"head.r_k":  {2, 4},
		"not.asked": {3},
	}, kernels.BF16, 1)

	ld := NewLoader(src, be)
	placed := 0
	ld.Placed = func() { placed++ }
	w := ld.Matrix("a.weight", 4, 8)
	v := ld.Vector("c.vec", 8)
	c := ld.MatrixAs("conv", []int{8, 1, 2, 2}, 8, 4)
	rk := ld.Vector("head.r_k", 2, 4)
	if err := ld.Err(); err != nil {
		t.Fatal(err)
	}
	if w.DType != kernels.BF16 || w.Rows != 4 || v.DType != kernels.F32 || v.Len() != 8 || c.Rows != 8 || c.Cols != 4 || rk.Len() != 8 {
		t.Errorf("placed %v %v %v %v", w, v, c, rk)
	}
	if placed != 4 || len(ld.Owned()) != 4 || ld.Params() != 32+8+32+8 {
		t.Errorf("placed %d, owned %d, params %d", placed, len(ld.Owned()), ld.Params())
	}

	// Every missing tensor is named in one error; shapes are checked.
	ld = NewLoader(hidden{src, []string{"a.weight", "b.bias"}}, be)
	ld.Matrix("a.weight", 4, 8)
	ld.Vector("b.bias", 8)
	ld.Vector("zzz", 3)
	var me *MissingError
	if err := ld.Err(); !errors.As(err, &me) || strings.Join(me.Names, ",") != "a.weight,b.bias,zzz" {
		t.Errorf("missing: %v", err)
	}
	ld = NewLoader(src, be)
	ld.Matrix("a.weight", 8, 4)
	var se *ShapeError
	if err := ld.Err(); !errors.As(err, &se) || se.Name != "a.weight" || !strings.Contains(err.Error(), "has shape [4 8], want [8 4]") {
		t.Errorf("shape: %v", err)
	}
	ld = NewLoader(src, be)
	ld.Vector("c.vec", 4)
	if err := ld.Err(); !errors.As(err, &se) || se.Name != "c.vec" {
		t.Errorf("vector shape: %v", err)
	}
}

func TestShapeMatches(t *testing.T) {
	for _, tc := range []struct {
		got, want []int
		ok        bool
	}{
		{[]int{1, 1, 8}, []int{8}, true},
		{[]int{8}, []int{8}, true},
		{[]int{2, 8}, []int{8}, false},
		{[]int{1, 496, 192}, []int{496, 192}, true},
		{[]int{0}, []int{0}, false},
	} {
		if ShapeMatches(tc.got, tc.want) != tc.ok {
			t.Errorf("ShapeMatches(%v, %v) = %v", tc.got, tc.want, !tc.ok)
		}
	}
}
