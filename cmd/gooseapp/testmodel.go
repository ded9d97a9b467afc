package main

import (
	"fmt"
	"io"

	"github.com/goose-rwkv/goose/core"
)

// runTestModel writes a small random-weight model with the full World
// vocabulary: a stand-in for trying the app, the API or a pipeline without
// downloading a real model (its replies are gibberish).
func runTestModel(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("testmodel", stderr)
	out := fs.String("out", "", "output `FILE.safetensors`")
	shape := fs.String("shape", "2x64", "LAYERSxWIDTH or an official size (0.1b, …)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out FILE is required")
	}
	cfg, err := parseShape(*shape, "bf16")
	if err != nil {
		return err
	}
	if err := core.WriteRandom(*out, cfg, *seed); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: random weights, %d layers × %d, vocab %d\n", *out, cfg.Layers, cfg.Width, cfg.Vocab)
	return nil
}
