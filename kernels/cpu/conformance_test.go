package cpu

import (
	"testing"

	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// TestConformance checks every op against its float64 reference.
func TestConformance(t *testing.T) {
	be, err := New(Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	kernelstest.Run(t, be)
}
