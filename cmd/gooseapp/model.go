package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// modelFlags are the flags of every command that loads a model.
type modelFlags struct {
	model   string
	backend string
	threads int
	quant   string
}

func (m *modelFlags) register(fs *flag.FlagSet, defaultBackend string) {
	fs.StringVar(&m.model, "model", "", "checkpoint `FILE` (.pth or .safetensors)")
	fs.StringVar(&m.backend, "backend", defaultBackend, "compute backend: "+backend.Names)
	fs.IntVar(&m.threads, "threads", 0, "CPU threads (0: all cores)")
	fs.StringVar(&m.quant, "quant", "none", "weights in memory: none (as in the file) or int8 (per-channel scales, about half the memory of bf16)")
}

// loadOptions returns the options for core.Load on be.
func (m *modelFlags) loadOptions(be kernels.Backend) (core.LoadOptions, error) {
	q, err := core.ParseQuantization(m.quant)
	if err != nil {
		return core.LoadOptions{}, fmt.Errorf("--quant: %w", err)
	}
	return core.LoadOptions{Backend: be, Quant: q}, nil
}

// open opens the backend, reporting any fallback on stderr, once. The
// model file, when --model names one, is checked first, so that a missing
// file is the only message.
func (m *modelFlags) open(stderr io.Writer) (kernels.Backend, backend.Report, error) {
	if m.model != "" {
		fi, err := os.Stat(m.model)
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, backend.Report{}, fmt.Errorf("%s: %w", m.model, pe.Err)
		}
		if err != nil {
			return nil, backend.Report{}, err
		}
		if fi.IsDir() {
			return nil, backend.Report{}, fmt.Errorf("%s is a folder, not a checkpoint file", m.model)
		}
	}
	be, rep, err := backend.Open(m.backend, backend.Options{Threads: m.threads})
	if err != nil {
		return nil, rep, err
	}
	noteFallback(stderr, rep)
	return be, rep, nil
}

// noteFallback says on stderr why the GPU is not used, when the backend
// fell back to the CPU.
func noteFallback(stderr io.Writer, rep backend.Report) {
	if rep.Fallback != "" {
		fmt.Fprintf(stderr, "gooseapp: using the CPU (GPU not used: %s)\n", rep.Fallback)
	}
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
	opts, err := m.loadOptions(be)
	if err != nil {
		be.Close()
		return nil, rep, err
	}
	model, err := core.LoadFile(m.model, opts)
	if err != nil {
		be.Close()
		return nil, rep, err
	}
	return model, rep, nil
}

// deviceLine names the backend and device in use, without the fallback
// reason that open has already printed.
func deviceLine(rep backend.Report) string {
	return fmt.Sprintf("backend %s: %s", rep.Used, rep.Device.Name)
}
