package kernels_test

import (
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// TestCopyListFallback runs kernels.CopyList on a backend without a
// CopyList of its own: the copies happen in order, one Copy each.
func TestCopyListFallback(t *testing.T) {
	be, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	if _, ok := kernels.Backend(be).(kernels.CopyLister); ok {
		t.Skip("the CPU backend has its own CopyList")
	}
	src, _ := be.Alloc(kernels.F32, 2, 4)
	dst, _ := be.Alloc(kernels.F32, 3, 4)
	if err := be.Upload(src, half.Bytes([]float32{1, 2, 3, 4, 5, 6, 7, 8})); err != nil {
		t.Fatal(err)
	}
	kernels.CopyList(be, []kernels.Tensor{dst.Row(0), dst.Row(1), dst.Row(2)}, []kernels.Tensor{src.Row(1), src.Row(0), dst.Row(0)})
	got := make([]float32, 12)
	if err := be.Download(half.Bytes(got), dst); err != nil {
		t.Fatal(err)
	}
	want := []float32{5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("dst = %v, want %v", got, want)
		}
	}
}
