package main

import (
	"fmt"
	"io"
	"os"

	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels/cuda"
	"github.com/goose-rwkv/goose/vision"
)

// runInfo describes a checkpoint, or lists GPUs with --devices.
func runInfo(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("info", stderr)
	devices := fs.Bool("devices", false, "list GPUs instead")
	verify := fs.Bool("verify", false, "also read every weight: check the .pth checksums and that no weight is NaN or infinite")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *devices {
		return listDevices(stdout)
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: gooseapp info FILE")
	}
	path := fs.Arg(0)
	f, err := checkpoint.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if arwkv.IsCheckpoint(f) {
		return infoARWKV(stdout, path, f)
	}
	c, err := core.Inspect(core.LanguageModel(f))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "file:        %s\n", path)
	kind := "RWKV-7 (x070) language model"
	if vision.IsCheckpoint(f) {
		kind = "VisualRWKV-7 (RWKV-7 language model with DINOv2, SigLIP and SAM towers)"
	}
	fmt.Fprintf(stdout, "kind:        %s, %s\n", kind, f.Format())
	fmt.Fprintf(stdout, "layers:      %d\n", c.Layers)
	fmt.Fprintf(stdout, "width:       %d\n", c.Width)
	fmt.Fprintf(stdout, "heads:       %d × %d\n", c.Heads, c.HeadSize)
	fmt.Fprintf(stdout, "vocab:       %d\n", c.Vocab)
	fmt.Fprintf(stdout, "ffn:         %d\n", c.FFN)
	fmt.Fprintf(stdout, "lora:        decay %d, a %d, v %d, gate %d\n", c.DecayLoRA, c.AlphaLoRA, c.ValueLoRA, c.GateLoRA)
	fmt.Fprintf(stdout, "dtype:       %s\n", c.DType)
	fmt.Fprintf(stdout, "parameters:  %d (%.2f M)\n", c.Params, float64(c.Params)/1e6)
	fmt.Fprintf(stdout, "state:       %d bytes\n", c.StateBytes())
	fmt.Fprintf(stdout, "file size:   %d bytes\n", fi.Size())
	if *verify {
		if err := verifyFile(f, stderr); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "verified:    checksums match, every weight is finite")
	}
	return nil
}

// infoARWKV describes an A-RWKV audio tagger checkpoint.
func infoARWKV(stdout io.Writer, path string, f *checkpoint.File) error {
	d, err := arwkv.Inspect(f)
	if err != nil {
		return fmt.Errorf("%s: A-RWKV audio tagger: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var params int64
	for _, t := range f.Tensors() {
		params += int64(t.Len())
	}
	emb, _ := f.Lookup("emb.weight")
	_, kind := d.Size()
	fmt.Fprintf(stdout, "file:        %s\n", path)
	fmt.Fprintf(stdout, "kind:        %s audio tagger (AudioRWKV-7, bidirectional RWKV-7 over log-mel patches), %s\n", kind, f.Format())
	fmt.Fprintf(stdout, "layers:      %d\n", d.Layers)
	fmt.Fprintf(stdout, "width:       %d\n", d.Width)
	fmt.Fprintf(stdout, "heads:       %d × %d\n", d.Width/64, 64)
	fmt.Fprintf(stdout, "classes:     %d\n", d.Classes)
	fmt.Fprintf(stdout, "patches:     %d of %d×%d\n", d.Tokens, d.Patch, d.Patch)
	fmt.Fprintf(stdout, "ffn:         %d\n", d.FFN)
	fmt.Fprintf(stdout, "lora:        decay %d, a %d, v %d, gate %d\n", d.DecayLoRA, d.AlphaLoRA, d.ValueLoRA, d.GateLoRA)
	fmt.Fprintf(stdout, "dtype:       %s\n", emb.DType)
	fmt.Fprintf(stdout, "parameters:  %d (%.2f M)\n", params, float64(params)/1e6)
	fmt.Fprintf(stdout, "file size:   %d bytes\n", fi.Size())
	return nil
}

func listDevices(stdout io.Writer) error {
	devs, err := cuda.Devices()
	if err != nil {
		fmt.Fprintf(stdout, "no CUDA devices: %v\n", err)
		return nil
	}
	if len(devs) == 0 {
		fmt.Fprintln(stdout, "no CUDA devices")
	}
	for i, d := range devs {
		fmt.Fprintf(stdout, "cuda:%d  %s  %.1f GiB (%.1f GiB free)  %s  driver %s\n", i, d.Name,
			float64(d.TotalMemory)/(1<<30), float64(d.FreeMemory)/(1<<30), d.Compute, d.Driver)
	}
	return nil
}
