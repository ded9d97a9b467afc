package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/audio/fbank"
	"github.com/goose-rwkv/goose/core/checkpoint"
)

// runTag tags a WAV recording with an A-RWKV checkpoint and prints the most
// likely classes with their probabilities.
func runTag(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("tag", stderr)
	model := fs.String("model", "", "A-RWKV checkpoint `FILE`")
	configPath := fs.String("config", "", "model configuration `FILE.json` (sample_rate, target_length, norm_mean, norm_std, fbank.num_mel_bins, model.grid, model.patch)")
	top := fs.Int("top", 5, "how many classes to print")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || *configPath == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: gooseapp tag --model ARWKV.pth --config CONFIG.json AUDIO.wav")
	}
	raw, err := os.ReadFile(*configPath)
	if err != nil {
		return err
	}
	var cfg arwkv.Config
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("%s: %w", *configPath, err)
	}
	wavPath := fs.Arg(0)
	w, err := os.Open(wavPath)
	if err != nil {
		return err
	}
	samples, rate, err := fbank.ReadWAV(w)
	w.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", wavPath, err)
	}
	input, err := cfg.Input(samples, rate)
	if err != nil {
		return fmt.Errorf("%s: %w", wavPath, err)
	}
	f, err := checkpoint.Open(*model)
	if err != nil {
		return err
	}
	defer f.Close()
	tg, err := arwkv.Load(f, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", *model, err)
	}
	logits, err := tg.Logits(input)
	if err != nil {
		return err
	}
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return logits[order[a]] > logits[order[b]] })
	for _, c := range order[:min(*top, len(order))] {
		p := 1 / (1 + math.Exp(-float64(logits[c])))
		fmt.Fprintf(stdout, "class %3d  %.4f\n", c, p)
	}
	return nil
}
