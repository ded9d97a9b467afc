package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// visionBench holds one image question's stage times in milliseconds.
type visionBench struct {
	Decode     float64 `json:"decode_ms"`
	Preprocess float64 `json:"preprocess_ms"`
	DINO       float64 `json:"dino_ms"`
	SigLIP     float64 `json:"siglip_ms"`
	SAM        float64 `json:"sam_ms"`
	Projector  float64 `json:"projector_ms"`
	Prefill    float64 `json:"prefill_ms"`
	FirstToken float64 `json:"first_token_ms"`
}

// visionReport is bench --vision's JSON line.
type visionReport struct {
	Backend string `json:"backend"`
	Device  string `json:"device"`
	CPUs    int    `json:"cpus"`
	Commit  string `json:"commit"`
	LM      string `json:"lm"`
	Image   string `json:"image"`
	Tokens  int    `json:"prompt_tokens"`
	// FirstTokenMS is image bytes → first answer token, the best of the
	// untimed runs (no waits between stages); Stages are from a run that
	// waits for the backend after each stage.
	FirstTokenMS   float64   `json:"first_token_ms"`
	FirstTokenRuns []float64 `json:"first_token_runs_ms"`
	// EncodeMS is a decoded image → its embedding rows on the backend
	// (preprocessing, towers, projector), the best of the untimed runs;
	// ConcurrentTowers says whether the towers ran side by side there.
	EncodeMS         float64     `json:"encode_ms"`
	ConcurrentTowers bool        `json:"concurrent_towers"`
	Stages           visionBench `json:"stages"`
	GEMMRate         float64     `json:"gemm_flops_per_s"`
	FloorMS          visionBench `json:"floor_ms"`
	TowerGFLOP       float64     `json:"towers_gflop"`
	GoalMS           float64     `json:"goal_ms"`
	WorkingMemoryMB  float64     `json:"working_memory_mb"`
}

// runBenchVision times an image question end to end with VisualRWKV-7 at
// the released tower sizes (random weights built in memory) and a language
// model of an official shape: each stage beside its floor (FLOPs over the
// backend's measured GEMM rate) and image bytes → first answer token.
func runBenchVision(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	fs.Bool("vision", true, "benchmark VisualRWKV-7 (this mode)")
	lmShape := fs.String("lm", "0.1b", "language model shape: 0.1b, 0.4b or 1.5b")
	imagePath := fs.String("image", "", "image `FILE` (default: a synthetic 1024×768 JPEG, quality 90, like a photo)")
	runs := fs.Int("runs", 0, "timed runs (0: 5 on a GPU, 1 on the CPU)")
	jsonOut := fs.Bool("json", false, "print one JSON object on the last line")
	profile := fs.Bool("profile", false, "also time each backend op of one image question (waiting after each)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if mf.model != "" {
		return fmt.Errorf("bench --vision builds random weights at the released sizes; --model is not used")
	}
	lmCfg, ok := core.OfficialShape(*lmShape)
	if !ok || !slices.Contains([]string{"0.1b", "0.4b", "1.5b"}, strings.ToLower(*lmShape)) {
		return fmt.Errorf("--lm %q: want 0.1b, 0.4b or 1.5b", *lmShape)
	}
	var raw []byte
	label := "synthetic 1024×768 JPEG (quality 90)"
	if *imagePath != "" {
		var err error
		if raw, err = os.ReadFile(*imagePath); err != nil {
			return err
		}
		label = *imagePath
	} else {
		raw = syntheticJPEG(1024, 768)
	}
	be, rep, err := mf.open(stderr)
	if err != nil {
		return err
	}
	cfg := vision.Released()
	src, err := vision.RandomSource(cfg, lmCfg, 1)
	if err != nil {
		be.Close()
		return err
	}
	loadStart := time.Now()
	var prof *opProfile
	var mbe kernels.Backend = be
	if *profile {
		prof = newOpProfile(be)
		mbe = prof
	}
	m, err := vision.New(src, mbe, cfg, nil)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(stdout, "model:    VisualRWKV-7, released towers (DINOv2-L/14 reg4 448, SigLIP-So400m/14 448, SAM ViT-B 1024), LM %s; random bf16 weights built in %v\n",
		*lmShape, time.Since(loadStart).Round(time.Millisecond))
	fmt.Fprintf(stdout, "backend:  %s: %s\n", rep.Used, rep.Device.Name) // why not the GPU: on stderr, once
	fmt.Fprintf(stdout, "image:    %s, %d bytes\n", label, len(raw))
	s, err := visualSession(m)
	if err != nil {
		return err
	}
	defer s.Close()
	const question = "What is in the image?"
	ctx := context.Background()

	// ask runs one image question from the bytes to the first answer
	// token; with st it waits after each stage to time it.
	ask := func(st *vision.Stages) (visionBench, error) {
		var b visionBench
		if err := s.Reset(); err != nil {
			return b, err
		}
		t0 := time.Now()
		img, err := preprocess.Decode(bytes.NewReader(raw))
		if err != nil {
			return b, fmt.Errorf("%s: %w", label, err)
		}
		b.Decode = ms(time.Since(t0))
		tAsk := time.Now()
		if err := m.Ask(ctx, s, img, question, st); err != nil {
			return b, err
		}
		askDur := time.Since(tAsk)
		var first time.Duration
		if _, err := s.Generate(ctx, "", core.GenerateOptions{MaxTokens: 1}, func(core.Piece) bool {
			if first == 0 {
				first = time.Since(t0)
			}
			return true
		}); err != nil {
			return b, err
		}
		if first == 0 { // no text piece (a token without bytes): count the call
			first = time.Since(t0)
		}
		b.FirstToken = ms(first)
		if st != nil {
			b.Preprocess, b.DINO, b.SigLIP, b.SAM, b.Projector = ms(st.Preprocess), ms(st.DINO), ms(st.SigLIP), ms(st.SAM), ms(st.Projector)
			b.Prefill = ms(askDur) - (b.Preprocess + b.DINO + b.SigLIP + b.SAM + b.Projector)
		}
		return b, nil
	}

	n := *runs
	if n <= 0 {
		n = 5
		if rep.Used == "cpu" {
			n = 1
		}
	}
	if rep.Used != "cpu" {
		// Warm up: working memory, kernel modules, library handles.
		if _, err := ask(nil); err != nil {
			return err
		}
	}
	var firsts []float64
	for range n {
		b, err := ask(nil)
		if err != nil {
			return err
		}
		firsts = append(firsts, b.FirstToken)
	}
	// The encoding alone, as it runs in the untimed questions.
	img, err := preprocess.Decode(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	var encodes []float64
	for range n {
		t0 := time.Now()
		if err := m.Encoder().Encode(ctx, img, nil, func(kernels.Tensor) error { return nil }); err != nil {
			return err
		}
		encodes = append(encodes, ms(time.Since(t0)))
	}
	var st vision.Stages
	staged, err := ask(&st)
	if err != nil {
		return err
	}
	if prof != nil {
		prof.reset()
		if _, err := ask(nil); err != nil {
			return err
		}
		prof.print(stdout)
	}

	// Floors: FLOPs over the GEMM rate measured on a tower-shaped product.
	r := visionReport{Backend: rep.Used, Device: rep.Device.Name, CPUs: runtime.NumCPU(), Commit: benchCommit(),
		LM: strings.ToLower(*lmShape), Image: label, FirstTokenMS: slices.Min(firsts), FirstTokenRuns: firsts,
		Stages: staged, EncodeMS: slices.Min(encodes), ConcurrentTowers: m.Encoder().Concurrent()}
	if p, ok := m.Backend().(kernels.Prober); ok {
		if r.GEMMRate, err = p.MatMulRate(1024, 1024, 4096, kernels.BF16); err != nil {
			return err
		}
	}
	dino, siglip, samF, proj := cfg.FLOPs(lmCfg.Width)
	r.TowerGFLOP = (dino + siglip + samF) / 1e9
	lmc := m.LM().Config()
	promptTokens := m.Encoder().Tokens() + 16 // the image rows and the question's text, padded
	r.Tokens = promptTokens
	lmFLOPs := matFLOPsPerToken(lmc)*float64(promptTokens) + 2*float64(lmc.Vocab*lmc.Width)
	if r.GEMMRate > 0 {
		f := func(flops float64) float64 { return 1e3 * flops / r.GEMMRate }
		r.FloorMS = visionBench{DINO: f(dino), SigLIP: f(siglip), SAM: f(samF), Projector: f(proj), Prefill: f(lmFLOPs),
			FirstToken: f(dino + siglip + samF + proj + lmFLOPs)}
	}
	r.GoalMS = map[string]float64{"cuda0.1b": 50, "cuda1.5b": 80, "cpu0.1b": 15000}[rep.Used+r.LM]
	r.WorkingMemoryMB = float64(cfg.DINO.WorkingBytes()+cfg.SigLIP.WorkingBytes()+cfg.SAM.WorkingBytes()) / 1e6

	row := func(name string, got, floor float64) {
		if floor > 0 {
			fmt.Fprintf(stdout, "  %-22s %9.1f ms   floor %8.1f ms   (%.0f%% of the floor's speed)\n", name, got, floor, 100*floor/got)
		} else {
			fmt.Fprintf(stdout, "  %-22s %9.1f ms\n", name, got)
		}
	}
	fmt.Fprintf(stdout, "stages (one run, the towers one after another, waiting after each stage):\n")
	row("decode image", staged.Decode, 0)
	row("preprocess", staged.Preprocess, 0)
	row("DINOv2 tower", staged.DINO, r.FloorMS.DINO)
	row("SigLIP tower", staged.SigLIP, r.FloorMS.SigLIP)
	row("SAM tower", staged.SAM, r.FloorMS.SAM)
	row("projector", staged.Projector, r.FloorMS.Projector)
	row(fmt.Sprintf("prefill (%d rows)", promptTokens), staged.Prefill, r.FloorMS.Prefill)
	fmt.Fprintf(stdout, "floor:    GEMM %.1f GFLOP/s (bf16 1024×1024×4096 Linear); towers %.0f GFLOP, projector %.0f, prefill %.0f\n",
		r.GEMMRate/1e9, r.TowerGFLOP, proj/1e9, lmFLOPs/1e9)
	how := "one after another"
	if r.ConcurrentTowers {
		how = "side by side"
	}
	fmt.Fprintf(stdout, "encode:   decoded image → embedding rows %.1f ms (best of %d; towers %s)\n", r.EncodeMS, n, how)
	fmt.Fprintf(stdout, "first token: image bytes → first answer token %.1f ms (best of %d: %v); floor %.1f ms",
		r.FirstTokenMS, n, roundAll(firsts), r.FloorMS.FirstToken)
	if r.GoalMS > 0 {
		fmt.Fprintf(stdout, "; goal ≤ %.0f ms: %s", r.GoalMS, map[bool]string{true: "met", false: "missed"}[r.FirstTokenMS <= r.GoalMS])
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "memory:   towers' working memory %.0f MB; peak RSS %.0f MB\n", r.WorkingMemoryMB, float64(readRSS().peak)/1e6)
	if *jsonOut {
		return json.NewEncoder(stdout).Encode(r)
	}
	return nil
}

// benchCommit is the commit the binary was built from.
func benchCommit() string {
	_, rev := buildVersion()
	return rev
}

func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}

// syntheticJPEG draws a w×h test picture (gradients, a disc, noise) and
// encodes it as a quality-90 JPEG.
func syntheticJPEG(w, h int) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	x := uint32(12345)
	for y := range h {
		for xx := range w {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			dx, dy := xx-w/2, y-h/2
			disc := dx*dx+dy*dy < (h/3)*(h/3)
			i := img.PixOffset(xx, y)
			r, g, b := uint8(255*xx/w), uint8(255*y/h), uint8(x>>24&31)
			if disc {
				r, g, b = 220, 60+uint8(x>>26&15), 40
			}
			img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = r, g, b, 255
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}); err != nil {
		panic(err) // encoding an in-memory NRGBA cannot fail
	}
	return buf.Bytes()
}
