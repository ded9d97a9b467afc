package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// runTag tags a WAV recording with an A-RWKV checkpoint and prints its
// most likely AudioSet classes with their probabilities (and, with
// --timeline, the tags of each window). The file is read window by window,
// so a recording of any length takes constant memory.
func runTag(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("tag", stderr)
	model := fs.String("model", "", "A-RWKV checkpoint `FILE` (.pth)")
	configPath := fs.String("config", "", "model configuration `FILE.json` (default: the released A-RWKV configuration)")
	be := fs.String("backend", "auto", "compute backend: "+backend.Names)
	threads := fs.Int("threads", 0, "CPU threads (0: all cores)")
	top := fs.Int("top", 5, "print at most `N` tags (N ≥ 1)")
	threshold := fs.Float64("threshold", 0, "print only tags with probability at least `P` (0 to 1)")
	hop := fs.Duration("hop", 0, "time between window starts (default: half the clip, 5s)")
	timeline := fs.Bool("timeline", false, "also print each window's tags")
	asJSON := fs.Bool("json", false, `print one JSON object: {"tags":[{"index":I,"label":"…","prob":P},…],"windows":[…],…}`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *model == "" || fs.NArg() != 1 {
		return fmt.Errorf("usage: gooseapp tag --model ARWKV.pth [--config CONFIG.json] [--top N] [--threshold P] [--json] AUDIO.wav")
	}
	if *top < 1 {
		return fmt.Errorf("--top %d: want a positive number of tags", *top)
	}
	if !(*threshold >= 0 && *threshold <= 1) {
		return fmt.Errorf("--threshold %v: want a probability from 0 to 1", *threshold)
	}
	wavPath := fs.Arg(0)
	in, err := wav.Open(wavPath)
	if err != nil {
		return err
	}
	defer in.Close()
	tg, err := audio.Open(*model, audio.Options{Backend: *be, Threads: *threads, Config: *configPath})
	if err != nil {
		return err
	}
	defer tg.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := audio.TagOptions{Hop: *hop, Top: *top, Threshold: float32(*threshold)}
	res, err := tg.TagReader(ctx, in, in.Rate(), opts)
	if err != nil {
		return fmt.Errorf("%s: %w", wavPath, err)
	}
	info := tg.Info()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res.Summary(info.Kind, *top, float32(*threshold)))
	}
	if len(res.Top) == 0 {
		fmt.Fprintf(stdout, "no tag reaches %.4f\n", *threshold)
	}
	for _, t := range res.Top {
		fmt.Fprintf(stdout, "%.4f  %s\n", t.Prob, t.Label)
	}
	if *timeline {
		for _, w := range res.Windows {
			fmt.Fprintf(stdout, "%s–%s", clock(w.Start), clock(w.End))
			for i, t := range w.Top(*top, float32(*threshold)) {
				sep := "  "
				if i > 0 {
					sep = ", "
				}
				fmt.Fprintf(stdout, "%s%s %.2f", sep, t.Label, t.Prob)
			}
			fmt.Fprintln(stdout)
		}
	}
	return nil
}

// clock formats d as m:ss.t.
func clock(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	return fmt.Sprintf("%d:%04.1f", int(d.Minutes()), (d % time.Minute).Seconds())
}
