package main

import (
	"fmt"
	"io"

	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision"
)

// runTestModel writes a random-weight model: a language model with the
// full World vocabulary (--kind lm), or an A-RWKV audio tagger at a
// released size (--kind arwkv): a stand-in for trying the app, the API or
// a pipeline without downloading a real model (its output is gibberish).
func runTestModel(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("testmodel", stderr)
	out := fs.String("out", "", "output `FILE.safetensors`")
	kind := fs.String("kind", "lm", "lm (RWKV-7 language model), arwkv (A-RWKV audio tagger) or visualrwkv (a small VisualRWKV-7: image towers, projector and a 2x64 language model)")
	shape := fs.String("shape", "", "lm: LAYERSxWIDTH or an official size (0.1b, …; default 2x64); arwkv: t, s or b (default t)")
	seed := fs.Uint64("seed", 1, "random seed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out FILE is required")
	}
	switch *kind {
	case "lm":
		if *shape == "" {
			*shape = "2x64"
		}
		cfg, err := parseShape(*shape, "bf16")
		if err != nil {
			return err
		}
		if err := core.WriteRandom(*out, cfg, *seed); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: random weights, %d layers × %d, vocab %d\n", *out, cfg.Layers, cfg.Width, cfg.Vocab)
	case "arwkv":
		if *shape == "" {
			*shape = "t"
		}
		d, ok := arwkv.ShapeDims(*shape)
		if !ok {
			return fmt.Errorf("--shape %q: an A-RWKV size is t, s or b", *shape)
		}
		src, err := arwkv.RandomSource(d, kernels.BF16, *seed)
		if err != nil {
			return err
		}
		if err := core.WriteSafetensors(*out, src); err != nil {
			return err
		}
		_, name := d.Size()
		fmt.Fprintf(stdout, "wrote %s: random weights, %s (%d layers × %d, %d classes)\n", *out, name, d.Layers, d.Width, d.Classes)
	case "visualrwkv":
		lm, _ := parseShape("2x64", "bf16")
		cfg := vision.Small()
		src, err := vision.RandomSource(cfg, lm, *seed)
		if err != nil {
			return err
		}
		if err := core.WriteSafetensors(*out, src); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: random weights, VisualRWKV-7 with small towers (%d image tokens) and a %d × %d language model\n",
			*out, cfg.DINO.Patches(), lm.Layers, lm.Width)
	default:
		return fmt.Errorf("--kind %q: want lm, arwkv or visualrwkv", *kind)
	}
	return nil
}
