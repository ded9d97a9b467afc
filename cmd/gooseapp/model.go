package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	model   string
	backend string
	threads int
}

func (m *modelFlags) register(fs *flag.FlagSet, defaultBackend string) {
	fs.StringVar(&m.model, "model", "", "checkpoint `FILE` (.pth or .safetensors)")
	fs.StringVar(&m.backend, "backend", defaultBackend, "compute backend: "+backend.Names)
	fs.IntVar(&m.threads, "threads", 0, "CPU threads (0: all cores)")
}

// open opens the backend, reporting any fallback on stderr.
func (m *modelFlags) open(stderr io.Writer) (kernels.Backend, backend.Report, error) {
	be, rep, err := backend.Open(m.backend, backend.Options{Threads: m.threads})
	if err != nil {
		return nil, rep, err
	}
	if rep.Fallback != "" {
		fmt.Fprintf(stderr, "gooseapp: using the CPU: %s\n", rep.Fallback)
	}
	return be, rep, nil
}

// load opens the backend and the model.
func (m *modelFlags) load(stderr io.Writer) (*core.Model, backend.Report, error) {
	if m.model == "" {
		return nil, backend.Report{}, fmt.Errorf("--model FILE is required")
	}
	be, rep, err := m.open(stderr)
	if err != nil {
		return nil, rep, err
	}
	model, err := core.LoadFile(m.model, core.LoadOptions{Backend: be})
	if err != nil {
		be.Close()
		return nil, rep, err
	}
	return model, rep, nil
}
