package hugemem

import (
	"testing"
	"unsafe"
)

func TestMake(t *testing.T) {
	for _, n := range []int{0, 1, Threshold - 1, Threshold, 3*Size + 5} {
		b := Make(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Make(%d): len %d cap %d", n, len(b), cap(b))
		}
		for i, v := range b {
			if v != 0 {
				t.Fatalf("Make(%d)[%d] = %d, want 0", n, i, v)
			}
		}
		if n >= Threshold && alignOffset(b) != 0 {
			t.Errorf("Make(%d) starts at %p, not on a %d-byte boundary", n, unsafe.SliceData(b), Size)
		}
		for i := range b {
			b[i] = byte(i)
		}
	}
}
