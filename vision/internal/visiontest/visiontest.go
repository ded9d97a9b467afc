// Package visiontest opens the compute backends the vision tests run on.
package visiontest

import (
	"errors"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/cuda"
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
// on a machine without one.
func CUDA(tb testing.TB) kernels.Backend {
	tb.Helper()
	be, err := cuda.New(cuda.Options{})
	var un *kernels.UnavailableError
	if errors.As(err, &un) {
		tb.Skipf("no GPU: %s", un.Reason)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { be.Close() })
	return be
}
