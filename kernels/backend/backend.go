// Package backend opens a compute backend by name, falling back from the GPU
// to the CPU with a stated reason, never silently.
package backend

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/cuda"
)

// Names is the list of accepted backend names, for usage messages.
const Names = "auto, cpu, cuda"

// Options configure Open.
type Options struct {
	// Threads for the CPU backend; 0 means all cores.
	Threads int
	// Device is the CUDA device ordinal.
	Device int
}

// Report says what Open chose and why.
type Report struct {
	Requested string // "auto", "cpu" or "cuda"
	Used      string // "cpu" or "cuda"
	Device    kernels.DeviceInfo
	// Fallback is why a GPU was not used, when Requested is "auto" and the
	// CPU was chosen: "no libcuda.so.1", "compute capability 5.2 unsupported".
	Fallback string
}

func (r Report) String() string {
	s := fmt.Sprintf("backend %s: %s", r.Used, r.Device.Name)
	if r.Fallback != "" {
		s += " (GPU not used: " + r.Fallback + ")"
	}
	return s
}

// Open returns the backend called name: "cpu", "cuda", or "auto" (CUDA when
// a working driver and a supported GPU exist, else the CPU, with the reason
// in the report).
func Open(name string, opts Options) (kernels.Backend, Report, error) {
	rep := Report{Requested: strings.ToLower(name)}
	if rep.Requested == "" {
		rep.Requested = "auto"
	}
	openCPU := func() (kernels.Backend, Report, error) {
		be, err := cpu.New(cpu.Options{Threads: opts.Threads})
		if err != nil {
			return nil, rep, err
		}
		rep.Used, rep.Device = "cpu", be.Device()
		return be, rep, nil
	}
	switch rep.Requested {
	case "cpu":
		return openCPU()
	case "cuda", "auto":
		be, err := cuda.New(cuda.Options{Device: opts.Device})
		if err == nil {
			rep.Used, rep.Device = "cuda", be.Device()
			return be, rep, nil
		}
		var un *kernels.UnavailableError
		if rep.Requested == "cuda" || !errors.As(err, &un) {
			return nil, rep, err
		}
		rep.Fallback = un.Reason
		return openCPU()
	}
	return nil, rep, fmt.Errorf("unknown backend %q (want one of %s)", name, Names)
}
