package backend

import (
	"errors"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda"
)

func TestOpen(t *testing.T) {
	be, rep, err := Open("cpu", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	be.Close()
	if rep.Used != "cpu" || rep.Fallback != "" || !strings.Contains(rep.String(), "cpu") {
		t.Errorf("cpu report %+v", rep)
	}
	if _, _, err := Open("tpu", Options{}); err == nil || !strings.Contains(err.Error(), "unknown backend") {
		t.Errorf("unknown backend: %v", err)
	}

	// What auto and cuda do depends on whether this machine has a GPU.
	gpu, gpuErr := cuda.New(cuda.Options{})
	if gpuErr == nil {
		gpu.Close()
	}
	be, rep, err = Open("auto", Options{})
	if err != nil {
		t.Fatal(err)
	}
	be.Close()
	var un *kernels.UnavailableError
	switch {
	case gpuErr == nil:
		if rep.Used != "cuda" {
			t.Errorf("auto with a GPU used %q", rep.Used)
		}
	case errors.As(gpuErr, &un):
		if rep.Used != "cpu" || rep.Fallback != un.Reason {
			t.Errorf("auto without a GPU: %+v, want the CPU with reason %q", rep, un.Reason)
		}
		if !strings.Contains(rep.String(), "GPU not used: "+un.Reason) {
			t.Errorf("report does not say why: %s", rep)
		}
		if _, _, err := Open("cuda", Options{}); !errors.As(err, &un) {
			t.Errorf("cuda without a GPU: %v, want an UnavailableError", err)
		}
	}
}
