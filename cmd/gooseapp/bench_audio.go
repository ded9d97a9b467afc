package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/kernels"
)

// audioBenchResult is the JSON object bench --audio --json prints.
type audioBenchResult struct {
	Model        string  `json:"model"`
	Backend      string  `json:"backend"`
	Device       string  `json:"device"`
	ClipMS       float64 `json:"clip_ms"`        // one 10 s clip: front end + model
	FbankMS      float64 `json:"fbank_ms"`       // its log-mel front end (one thread)
	ModelMS      float64 `json:"model_ms"`       // its model pass
	FloorMS      float64 `json:"floor_ms"`       // the model's GEMM FLOPs over the measured GEMM rate
	GFLOPClip    float64 `json:"gflop_per_clip"` // GEMM FLOPs of one clip's model pass
	GEMMGFLOPS   float64 `json:"gemm_gflops"`    // measured rate at the model's shape
	RecordingS   float64 `json:"recording_s"`    // a 10-minute recording, windows batched
	Windows      int     `json:"windows"`
	Batch        int     `json:"batch"`
	RecFloorS    float64 `json:"recording_floor_s"`
	RecordingSec float64 `json:"recording_audio_s"`
}

// runBenchAudio measures the A-RWKV tagger with random weights at a
// released size: one 10 s clip (front end and model) and a 10-minute
// recording (sliding windows batched through the model), beside the GEMM
// floor measured in the same run.
func runBenchAudio(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	fs.Bool("audio", true, "benchmark the A-RWKV audio tagger")
	var mf modelFlags
	mf.register(fs, "auto")
	shape := fs.String("shape", "s", "A-RWKV size: t, s or b")
	dtype := fs.String("dtype", "bf16", "weight dtype: bf16 or f32")
	runs := fs.Int("runs", 5, "timed runs of one clip (the best is reported)")
	minutes := fs.Float64("minutes", 10, "length of the recording to tag, in minutes (0: skip)")
	asJSON := fs.Bool("json", false, "print one JSON object on the last line (clip_ms, …)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if mf.model != "" {
		return fmt.Errorf("bench --audio runs random weights at --shape t|s|b (no --model)")
	}
	d, ok := arwkv.ShapeDims(*shape)
	if !ok {
		return fmt.Errorf("--shape %q: an A-RWKV size is t, s or b", *shape)
	}
	if *runs < 1 || !(*minutes >= 0 && *minutes <= 600) {
		return fmt.Errorf("--runs must be at least 1 and --minutes from 0 to 600")
	}
	dt := kernels.BF16
	switch *dtype {
	case "bf16":
	case "f32":
		dt = kernels.F32
	default:
		return fmt.Errorf("--dtype %q: want bf16 or f32", *dtype)
	}
	be, rep, err := mf.open(stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	src, err := arwkv.RandomSource(d, dt, 1)
	if err != nil {
		return err
	}
	m, err := arwkv.Load(src, arwkv.Released(), be)
	if err != nil {
		return err
	}
	tg := audio.NewTagger(m)
	defer tg.Close()
	info := tg.Info()
	res := audioBenchResult{Model: info.Kind + " (random weights, " + *dtype + ")", Backend: rep.Used, Device: rep.Device.Name}
	fmt.Fprintf(stdout, "model:     %s: %d layers × %d, %d classes, %.1f M params\n", res.Model, info.Layers, info.Width, info.Classes, float64(info.Params)/1e6)
	fmt.Fprintf(stdout, "backend:   %s\n", rep)

	// One clip of noise and tones, 10 s at 32 kHz.
	rng := rand.New(rand.NewPCG(3, 3))
	clip := make([]float32, int(info.Clip.Seconds()*float64(info.SampleRate)))
	for i := range clip {
		clip[i] = float32(0.2*math.Sin(float64(i)*0.05) + 0.05*rng.NormFloat64())
	}
	cfg := m.Config()
	ctx := context.Background()
	var fb, model []time.Duration
	for i := range *runs + 1 { // the first run warms up (scratch, kernels)
		t0 := time.Now()
		in, err := cfg.Input(clip, cfg.SampleRate)
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := m.Logits(ctx, [][]float32{in}); err != nil {
			return err
		}
		t2 := time.Now()
		if i > 0 {
			fb, model = append(fb, t1.Sub(t0)), append(model, t2.Sub(t1))
		}
	}
	res.FbankMS, res.ModelMS = ms(slices.Min(fb)), ms(slices.Min(model))
	res.ClipMS = res.FbankMS + res.ModelMS
	fmt.Fprintf(stdout, "clip:      %.1f ms for one %v clip: log-mel %.1f ms + model %.1f ms (best of %d)\n", res.ClipMS, info.Clip, res.FbankMS, res.ModelMS, *runs)

	// The floor: the model's matrix products at the measured GEMM rate.
	res.GFLOPClip = m.Dims().FLOPs() / 1e9
	if p, ok := be.(kernels.Prober); ok {
		rate, err := p.MatMulRate(d.Tokens, d.Width, d.FFN, dt)
		if err != nil {
			return err
		}
		res.GEMMGFLOPS = rate / 1e9
		res.FloorMS = res.GFLOPClip / res.GEMMGFLOPS * 1e3
		fmt.Fprintf(stdout, "floor:     %.2f GFLOP of matrix products per clip at %.1f GFLOP/s (GEMM [%d×%d]·[%d×%d]) → model ≥ %.1f ms; model at %.0f%% of it\n",
			res.GFLOPClip, res.GEMMGFLOPS, d.Tokens, d.Width, d.Width, d.FFN, res.FloorMS, 100*res.FloorMS/res.ModelMS)
	}

	if *minutes > 0 {
		n := int(*minutes * 60 * float64(info.SampleRate))
		rec := make([]float32, n)
		for i := range rec {
			rec[i] = float32(0.2*math.Sin(float64(i)*0.05*(1+float64(i/320000%7))) + 0.05*rng.NormFloat64())
		}
		res.RecordingSec = float64(n) / float64(info.SampleRate)
		// Warm up the batch size's scratch.
		if _, err := tg.Tag(ctx, rec[:min(n, 320000*3)], info.SampleRate, audio.TagOptions{}); err != nil {
			return err
		}
		t0 := time.Now()
		r, err := tg.Tag(ctx, rec, info.SampleRate, audio.TagOptions{})
		if err != nil {
			return err
		}
		el := time.Since(t0)
		res.RecordingS, res.Windows = el.Seconds(), len(r.Windows)
		res.Batch = tg.DefaultBatch()
		if res.FloorMS > 0 {
			res.RecFloorS = float64(res.Windows) * res.FloorMS / 1e3
		}
		fmt.Fprintf(stdout, "recording: %.1f s for %.0f min of audio: %d windows of %v every 5s, %d per model call (%.1f ms a window); GEMM floor %.2f s\n",
			res.RecordingS, *minutes, res.Windows, info.Clip, res.Batch, 1e3*res.RecordingS/float64(res.Windows), res.RecFloorS)
	}
	if *asJSON {
		for _, f := range []*float64{&res.ClipMS, &res.FbankMS, &res.ModelMS, &res.FloorMS, &res.GFLOPClip, &res.GEMMGFLOPS, &res.RecordingS, &res.RecFloorS} {
			*f = math.Round(*f*1000) / 1000
		}
		return json.NewEncoder(stdout).Encode(res)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
