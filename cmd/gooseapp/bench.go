package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// runBench measures prefill and decode speed and memory, each beside its
// floor measured in the same run.
func runBench(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	switch {
	case benchMode(args, "vision"):
		return runBenchVision(args, stdout, stderr)
	case benchMode(args, "audio"):
		return runBenchAudio(args, stdout, stderr)
	}
	fs := newFlags("bench", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	shape := fs.String("shape", "", "random weights at an official shape: 0.1b, 0.4b, 1.5b, 2.9b, or LAYERSxWIDTH (e.g. 4x256)")
	dtype := fs.String("dtype", "bf16", "weight dtype for --shape: bf16, f16 or f32")
	prompt := fs.Int("prompt", 512, "prompt tokens to prefill")
	gen := fs.Int("gen", 128, "tokens to decode")
	rssEvery := fs.Int("rss-every", 0, "print RSS every N decoded tokens (shows memory staying flat)")
	batchList := fs.String("batch", "1", "sessions decoded together, or a comma-separated list of counts: one step advances all of them; prints aggregate and per-session tok/s")
	products := fs.String("batch-products", "exact", batchProductsUsage)
	sampling := fs.String("sample", "greedy", "how decode picks tokens: greedy (temperature 0), chat (the chat defaults: temperature 1, top-p 0.3, penalties; drawn on the device where the backend can) or chat-host (the same, sampled on the host from the logits)")
	asJSON := fs.Bool("json", false, "also print the figures as one JSON object on the last line")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	bopts, err := parseBatchProducts(*products)
	if err != nil {
		return err
	}
	if (*shape == "") == (mf.model == "") {
		return fmt.Errorf("give exactly one of --model FILE or --shape NAME")
	}
	if *sampling != "greedy" && *sampling != "chat" && *sampling != "chat-host" {
		return fmt.Errorf("--sample %q: want greedy, chat or chat-host", *sampling)
	}
	if *prompt < 1 || *gen < 1 {
		return fmt.Errorf("--prompt and --gen must be at least 1")
	}
	var batches []int
	for _, f := range strings.Split(*batchList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return fmt.Errorf("--batch %q: want counts from 1 to 4096, comma-separated", *batchList)
		}
		batches = append(batches, n)
	}
	be, rep, err := mf.open(stderr)
	if err != nil {
		return err
	}
	defer be.Close()

	opts, err := mf.loadOptions(be)
	if err != nil {
		return err
	}
	var m *core.Model
	label := mf.model
	if *shape != "" {
		cfg, err := parseShape(*shape, *dtype)
		if err != nil {
			return err
		}
		src, err := core.RandomSource(cfg, 1)
		if err != nil {
			return err
		}
		m, err = core.Load(src, opts)
		if err != nil {
			return err
		}
		label = "random weights, shape " + *shape + ", " + *dtype
	} else {
		m, err = core.LoadFile(mf.model, opts)
		if err != nil {
			return err
		}
	}
	defer m.Close()
	c := m.Config()
	fmt.Fprintf(stdout, "model:    %s: %d layers × %d, vocab %d, %.1f M params, %.1f MB weights\n",
		label, c.Layers, c.Width, c.Vocab, float64(c.Params)/1e6, float64(c.WeightBytes)/1e6)
	if q := m.Quantization(); q != core.QuantNone {
		fmt.Fprintf(stdout, "quant:    %s: %.1f MB in memory (%.1f MB saved)\n", q, float64(m.WeightBytes())/1e6, float64(c.WeightBytes-m.WeightBytes())/1e6)
	}
	fmt.Fprintf(stdout, "backend:  %s: %s\n", rep.Used, rep.Device.Name) // why not the GPU: on stderr, once

	rng := rand.New(rand.NewPCG(7, 7))
	ids := make([]int32, *prompt)
	for i := range ids {
		ids[i] = int32(1 + rng.IntN(min(c.Vocab, 65529)-1))
	}
	ctx := context.Background()
	st, err := m.NewState()
	if err != nil {
		return err
	}
	defer st.Free()
	logits := make([]float32, c.Vocab)
	// Warm up with the whole prompt once (allocating the prefill scratch,
	// compiling kernels, creating library handles) and capture the decode
	// graph, so the timed runs measure the steady state.
	if err := m.Forward(ctx, st, ids, logits); err != nil {
		return err
	}
	if err := m.Forward(ctx, st, ids[:1], logits); err != nil {
		return err
	}
	if _, err := m.ForwardGreedy(ctx, st, ids[0], logits, nil); err != nil {
		return err
	}
	if err := st.Reset(); err != nil {
		return err
	}

	start := time.Now()
	if err := m.Forward(ctx, st, ids, logits); err != nil {
		return err
	}
	prefill := time.Since(start)
	prefillRate := float64(len(ids)) / prefill.Seconds()
	fmt.Fprintf(stdout, "prefill:  %d tokens in %v: %.1f tok/s\n", len(ids), prefill.Round(time.Microsecond), prefillRate)

	// Drop the garbage of loading (random weights are generated in Go
	// memory) so the RSS series shows the steady state of decoding.
	runtime.GC()
	debug.FreeOSMemory()
	rss0 := readRSS()
	// Greedy decoding as a temperature-0 session runs it: the token is
	// picked on the device where the backend can (Model.ForwardGreedy),
	// else from the logits on the host. With --sample chat, as a chat
	// session samples (Model.ForwardSample).
	smp := sample.New(sample.DefaultChat(), c.Vocab)
	smp.Ban(0)
	step := func(tok int32) (next int32, device bool, err error) {
		switch *sampling {
		case "chat":
			logits[0] = float32(math.NaN()) // stays NaN when the device drew
			next, err = m.ForwardSample(ctx, st, tok, logits, smp)
			return next, next >= 0 && math.IsNaN(float64(logits[0])), err
		case "chat-host":
			if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
				return -1, false, err
			}
			return smp.Sample(logits), false, nil
		}
		next, err = m.ForwardGreedy(ctx, st, tok, logits, nil)
		if err == nil && next < 0 {
			return sample.Greedy(logits), false, nil
		}
		return next, true, err
	}
	if *sampling == "chat" { // capture the sampled step's graph
		if _, _, err := step(ids[0]); err != nil {
			return err
		}
		if err := st.Reset(); err != nil {
			return err
		}
		if err := m.Forward(ctx, st, ids, logits); err != nil {
			return err
		}
	}
	tok := sample.Greedy(logits)
	onDevice := 0
	start = time.Now()
	for i := 1; i <= *gen; i++ {
		next, device, err := step(tok)
		if err != nil {
			return err
		}
		if device {
			onDevice++
		}
		if next < 0 {
			return errors.New("bench: no token can be sampled")
		}
		tok = next
		if *rssEvery > 0 && i%*rssEvery == 0 {
			r := readRSS()
			fmt.Fprintf(stdout, "rss:      after %6d decoded tokens: %7.1f MB (Go heap %.1f MB)\n", i, float64(r.current)/1e6, heapMB())
		}
	}
	decode := time.Since(start)
	decodeRate := float64(*gen) / decode.Seconds()
	picked := "greedy on the host"
	switch {
	case *sampling != "greedy":
		picked = fmt.Sprintf("chat sampling drawn on the device for %d of %d", onDevice, *gen)
	case onDevice > 0:
		picked = fmt.Sprintf("greedy token picked on the device for %d of %d", onDevice, *gen)
	}
	fmt.Fprintf(stdout, "decode:   %d tokens in %v: %.1f tok/s (%.2f ms/token; %s)\n", *gen, decode.Round(time.Microsecond), decodeRate, 1e3/decodeRate, picked)
	res := benchJSON{Backend: rep.Used, Device: rep.Device.Name, Model: label, Quant: m.Quantization().String(),
		Prompt: len(ids), Gen: *gen, Batch: 1, PrefillTokS: prefillRate, DecodeTokS: decodeRate, PerSessionTokS: decodeRate}
	for _, n := range batches {
		if n == 1 && len(batches) == 1 {
			break // the single-session figures above
		}
		agg, per, err := benchBatch(ctx, m, ids[:min(len(ids), 64)], n, *gen, bopts, *sampling, stdout)
		if err != nil {
			return err
		}
		res.Batches = append(res.Batches, batchFigures{Batch: n, DecodeTokS: agg, PerSessionTokS: per})
		if agg > res.DecodeTokS || res.Batch == 1 && res.SingleDecodeTokS == 0 {
			res.Batch, res.DecodeTokS, res.PerSessionTokS, res.SingleDecodeTokS = n, agg, per, decodeRate
		}
	}
	fmt.Fprintf(stdout, "ratio:    prefill/decode throughput %.1f×\n", prefillRate/decodeRate)
	r := readRSS()
	fmt.Fprintf(stdout, "memory:   peak RSS %.1f MB (RSS %.1f MB before decode, %.1f MB after); state %.2f MB\n",
		float64(r.peak)/1e6, float64(rss0.current)/1e6, float64(r.current)/1e6, float64(c.StateBytes())/1e6)
	// Floors: weights read per decoded token over copy bandwidth; matrix
	// FLOPs per prompt token over the measured GEMM rate.
	embBytes := int64(c.Vocab) * int64(c.Width) * int64(c.DType.Size())
	perToken := m.WeightBytes() - embBytes + int64(c.Width*c.DType.Size())
	flopsPerToken := matFLOPsPerToken(c)
	// Two floors for decode: the time to copy the weights once (bandwidth
	// as bytes copied per second), and the weights at the copy's full
	// traffic, read plus write (the STREAM and CUDA bandwidthTest
	// convention, and the stricter floor).
	var decodeFloor, decodeFloorRW, prefillFloor, bw, gemm float64
	if p, ok := be.(kernels.Prober); ok {
		n := int64(256 << 20)
		if rep.Used == "cuda" {
			n = 2 << 30
		}
		if bw, err = p.CopyBandwidth(n); err != nil {
			return err
		}
		decodeFloor = bw / float64(perToken)
		decodeFloorRW = 2 * bw / float64(perToken)
		if gemm, err = p.MatMulRate(min(*prompt, 4096), c.Width, 4*c.Width, c.DType); err != nil {
			return err
		}
		prefillFloor = gemm / flopsPerToken
		fmt.Fprintf(stdout, "floor:    copy %.1f GB/s copied (%.1f GB/s read+write); %.1f MB of weights read per token → decode ≤ %.1f tok/s (copy time) or ≤ %.1f tok/s (read+write rate)\n",
			bw/1e9, 2*bw/1e9, float64(perToken)/1e6, decodeFloor, decodeFloorRW)
		fmt.Fprintf(stdout, "floor:    GEMM %.1f GFLOP/s → prefill ≤ %.0f tok/s (%.2f GFLOP per token)\n",
			gemm/1e9, prefillFloor, flopsPerToken/1e9)
	}

	if decodeFloor > 0 {
		fmt.Fprintf(stdout, "vs floor: decode %.2f× the weights' copy time (%.0f%%), %.2f× the read+write floor (%.0f%%); prefill %.0f%% of the GEMM floor\n",
			decodeFloor/decodeRate, 100*decodeRate/decodeFloor, decodeFloorRW/decodeRate, 100*decodeRate/decodeFloorRW, 100*prefillRate/prefillFloor)
		res.DecodeFloorTokS, res.PrefillFloorTokS = decodeFloorRW, prefillFloor
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	return nil
}

// benchMode reports whether bench's arguments turn on the mode flag name
// (--vision, --audio), which has flags of its own.
func benchMode(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		f, isFlag := strings.CutPrefix(a, "-")
		if f = strings.TrimPrefix(f, "-"); isFlag && (f == name || f == name+"=true") {
			return true
		}
	}
	return false
}

// benchJSON is the --json line: decode_tok_s is the aggregate over the
// batch's sessions (the single-session rate when --batch is 1; with
// several counts, the best aggregate among them).
type benchJSON struct {
	Backend          string  `json:"backend"`
	Device           string  `json:"device"`
	Model            string  `json:"model"`
	Quant            string  `json:"quant"`
	Prompt           int     `json:"prompt"`
	Gen              int     `json:"gen"`
	Batch            int     `json:"batch"`
	PrefillTokS      float64 `json:"prefill_tok_s"`
	DecodeTokS       float64 `json:"decode_tok_s"`
	PerSessionTokS   float64 `json:"per_session_tok_s"`
	SingleDecodeTokS float64 `json:"single_decode_tok_s,omitempty"`
	DecodeFloorTokS  float64 `json:"decode_floor_rw_tok_s,omitempty"`
	PrefillFloorTokS float64 `json:"prefill_floor_tok_s,omitempty"`
	// Batches has every --batch count's figures; the fields above are
	// those of the best aggregate.
	Batches []batchFigures `json:"batches,omitempty"`
}

// batchFigures are one batch size's decode rates.
type batchFigures struct {
	Batch          int     `json:"batch"`
	DecodeTokS     float64 `json:"decode_tok_s"`
	PerSessionTokS float64 `json:"per_session_tok_s"`
}

// benchBatch prefills n sessions (each with prompt rotated by its index),
// decodes gen tokens for all of them in one core.Batch and prints the
// aggregate and per-session rates. The tokens are greedy, or with
// sampling "chat" or "chat-host" drawn with the chat defaults by each
// session's own sampler (on the device where the backend draws, for
// "chat").
func benchBatch(ctx context.Context, m *core.Model, prompt []int32, n, gen int, opts core.BatchOptions, sampling string, stdout io.Writer) (agg, per float64, err error) {
	b, err := m.NewBatch(n, opts)
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	V := m.Config().Vocab
	logits := make([]float32, V)
	tokens := make([]int32, n)
	p := make([]int32, len(prompt))
	for i := range n {
		st, err := m.NewState()
		if err != nil {
			return 0, 0, err
		}
		defer st.Free()
		for j := range p {
			p[j] = prompt[(i+j)%len(prompt)]
		}
		if err := m.Forward(ctx, st, p, logits); err != nil {
			return 0, 0, err
		}
		tokens[i] = sample.Greedy(logits)
		if _, err := b.Join(st); err != nil {
			return 0, 0, err
		}
	}
	_, onDevice := m.Backend().(kernels.Greedy)
	_, draws := m.Backend().(kernels.Drawer)
	smps := make([]*sample.Sampler, n)
	for i := range smps {
		p := sample.DefaultChat()
		p.Seed = uint64(i)
		smps[i] = sample.New(p, V)
		smps[i].Ban(0)
	}
	var all []float32
	if !onDevice || sampling != "greedy" {
		all = make([]float32, n*V)
	}
	plans, picks := make([]sample.Plan, n), make([]int32, 2*n)
	drawn := 0
	step := func() error {
		switch {
		case sampling == "chat" && draws:
			for i, s := range smps {
				plans[i] = s.Plan()
			}
			if err := b.StepDraw(ctx, tokens, plans, picks, all); err != nil {
				return err
			}
			// The rows the host must decide are sampled side by side, as
			// a server's sessions sample them, each on its own goroutine.
			var wg sync.WaitGroup
			for i, s := range smps {
				if picks[2*i+1] == 0 {
					tokens[i] = picks[2*i]
					s.Record(tokens[i])
					drawn++
				} else {
					wg.Go(func() { tokens[i] = s.SampleU(all[i*V:(i+1)*V], plans[i].U) })
				}
			}
			wg.Wait()
		case sampling != "greedy":
			if err := b.Step(ctx, tokens, all, nil); err != nil {
				return err
			}
			var wg sync.WaitGroup
			for i, s := range smps {
				wg.Go(func() { tokens[i] = s.Sample(all[i*V : (i+1)*V]) })
			}
			wg.Wait()
		case onDevice:
			return b.Step(ctx, tokens, nil, tokens)
		default:
			if err := b.Step(ctx, tokens, all, nil); err != nil {
				return err
			}
			for i := range tokens {
				tokens[i] = sample.Greedy(all[i*V : (i+1)*V])
			}
		}
		for _, t := range tokens {
			if t < 0 {
				return errors.New("bench: no token can be sampled")
			}
		}
		return nil
	}
	for range 2 { // warm up: scratch, library handles
		if err := step(); err != nil {
			return 0, 0, err
		}
	}
	start := time.Now()
	for range gen {
		if err := step(); err != nil {
			return 0, 0, err
		}
	}
	el := time.Since(start)
	agg = float64(n*gen) / el.Seconds()
	per = float64(gen) / el.Seconds()
	where := "greedy from downloaded logits"
	switch {
	case sampling == "chat" && draws:
		where = fmt.Sprintf("chat sampling drawn by the backend for %d of %d", drawn, n*(gen+2))
	case sampling != "greedy":
		where = "chat sampling on the host"
	case onDevice:
		where = "greedy by the backend (kernels.Greedy)"
	}
	if opts.RoundProducts {
		where += "; products rounded"
	}
	fmt.Fprintf(stdout, "batch:    %d sessions × %d tokens in %v: aggregate %.1f tok/s, per session %.1f tok/s (%.2f ms/step; %s)\n",
		n, gen, el.Round(time.Microsecond), agg, per, 1e3*el.Seconds()/float64(gen), where)
	return agg, per, nil
}

// matFLOPsPerToken counts the floating-point operations (2 per
// multiply-add) of the matrix products one prompt token takes in a
// language model of shape c: its parameters but the embedding and the
// head, which runs once per prompt, not per prompt token.
func matFLOPsPerToken(c core.Config) float64 {
	return 2 * float64(c.Params-2*int64(c.Vocab)*int64(c.Width))
}

// parseShape reads an official size name or LAYERSxWIDTH.
func parseShape(s, dtype string) (core.Config, error) {
	cfg, ok := core.OfficialShape(s)
	if !ok {
		l, w, found := strings.Cut(strings.ToLower(s), "x")
		L, err1 := strconv.Atoi(l)
		C, err2 := strconv.Atoi(w)
		if !found || err1 != nil || err2 != nil || L < 1 || C < 64 || C%64 != 0 {
			return cfg, fmt.Errorf("--shape %q: want 0.1b, 0.4b, 1.5b, 2.9b or LAYERSxWIDTH with WIDTH a multiple of 64", s)
		}
		cfg = core.Config{Layers: L, Width: C, Vocab: 65536, DecayLoRA: 64, AlphaLoRA: 64, ValueLoRA: 32, GateLoRA: 128}
	}
	switch dtype {
	case "bf16":
		cfg.DType = kernels.BF16
	case "f16":
		cfg.DType = kernels.F16
	case "f32":
		cfg.DType = kernels.F32
	default:
		return cfg, fmt.Errorf("--dtype %q: want bf16, f16 or f32", dtype)
	}
	return cfg, nil
}

func heapMB() float64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / 1e6
}

// batchProductsUsage documents --batch-products (bench and serve).
const batchProductsUsage = "batched decode's large products: exact (fp32 activations, each session as if alone) or rounded (inputs rounded to the weights' bf16/f16 as the reference's bf16 inference does: one tensor-core pass instead of two on CUDA above 16 sessions)"

// parseBatchProducts reads --batch-products.
func parseBatchProducts(s string) (core.BatchOptions, error) {
	switch s {
	case "exact":
		return core.BatchOptions{}, nil
	case "rounded":
		return core.BatchOptions{RoundProducts: true}, nil
	}
	return core.BatchOptions{}, fmt.Errorf("--batch-products %q: want exact or rounded", s)
}
