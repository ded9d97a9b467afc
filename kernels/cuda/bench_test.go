package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// Benchmarks of single ops run them inside a captured graph (as a decode
// step does), so that the numbers are GPU time rather than host launch
// overhead; BenchmarkEagerOp measures that overhead.

func mustAlloc(b *testing.B, g *Backend, dt kernels.DType, rows, cols int) kernels.Tensor {
	t, err := g.Alloc(dt, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// fill sets t to small non-zero values (never time on zeros).
func fill(b *testing.B, g *Backend, t kernels.Tensor) {
	n := t.Len() * t.DType.Size()
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(i*7+3) & 0x3f // small finite values for every dtype
	}
	if err := g.Upload(t, raw); err != nil {
		b.Fatal(err)
	}
}

// replay captures fn into a graph and times b.N replays of it.
func replay(b *testing.B, g *Backend, fn func()) {
	gr, err := g.Capture(recording(g, fn))
	if err != nil {
		b.Fatal(err)
	}
	defer gr.Free()
	if err := gr.Launch(); err != nil {
		b.Fatal(err)
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := gr.Launch(); err != nil {
			b.Fatal(err)
		}
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLinearDecode times one-token Linear (GEMV) on bf16 weights of
// the model shapes, cycling through enough copies (≥256 MiB) that the
// weights come from device memory, not L2. MB/s is weight bytes per second.
func BenchmarkLinearDecode(b *testing.B) {
	g := newGPU(b)
	for _, s := range []struct{ N, K int }{{768, 768}, {3072, 768}, {2048, 2048}, {8192, 2048}, {2048, 8192}, {10240, 2560}, {65536, 2048}} {
		b.Run(fmt.Sprintf("bf16_N%d_K%d", s.N, s.K), func(b *testing.B) {
			bytes := int64(s.N) * int64(s.K) * 2
			n := int(max(2, (256<<20)/bytes))
			ws := make([]kernels.Tensor, n)
			for i := range ws {
				ws[i] = mustAlloc(b, g, kernels.BF16, s.N, s.K)
				fill(b, g, ws[i])
			}
			x := mustAlloc(b, g, kernels.F32, 1, s.K)
			fill(b, g, x)
			y := mustAlloc(b, g, kernels.F32, 1, s.N)
			b.SetBytes(bytes * int64(n))
			replay(b, g, func() {
				for _, w := range ws {
					g.Linear(y, x, w)
				}
			})
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*n)*1e6, "µs/op")
			for _, w := range ws {
				g.Free(w)
			}
		})
	}
}

// BenchmarkMatMulDecode times one-token MatMul on the LoRA shapes (32
// copies, which fit in L2: these are latency-bound).
func BenchmarkMatMulDecode(b *testing.B) {
	g := newGPU(b)
	for _, s := range []struct{ K, N int }{{2048, 96}, {96, 2048}, {2048, 256}, {768, 64}} {
		b.Run(fmt.Sprintf("bf16_K%d_N%d", s.K, s.N), func(b *testing.B) {
			const n = 32
			ws := make([]kernels.Tensor, n)
			for i := range ws {
				ws[i] = mustAlloc(b, g, kernels.BF16, s.K, s.N)
				fill(b, g, ws[i])
			}
			x := mustAlloc(b, g, kernels.F32, 1, s.K)
			fill(b, g, x)
			y := mustAlloc(b, g, kernels.F32, 1, s.N)
			b.SetBytes(int64(s.K) * int64(s.N) * 2 * n)
			replay(b, g, func() {
				for _, w := range ws {
					g.MatMul(y, x, w)
				}
			})
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*n)*1e6, "µs/op")
		})
	}
}

// BenchmarkDeviceCopy is the device's copy bandwidth, counting bytes read
// plus bytes written: the ceiling GEMV is compared with.
func BenchmarkDeviceCopy(b *testing.B) {
	g := newGPU(b)
	const n = 64 << 20 // floats: 256 MiB
	src := mustAlloc(b, g, kernels.F32, 1, n)
	dst := mustAlloc(b, g, kernels.F32, 1, n)
	fill(b, g, src)
	b.SetBytes(2 * 4 * n)
	b.ResetTimer()
	for range b.N {
		g.Copy(dst, src)
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrefillLinear times cuBLAS Linear for 512 and 4096 tokens
// (bf16), including the split of x into two bf16 halves (two GEMMs).
func BenchmarkPrefillLinear(b *testing.B) {
	g := newGPU(b)
	for _, T := range []int{512, 4096} {
		b.Run(fmt.Sprintf("T%d", T), func(b *testing.B) {
			const N, K = 2048, 2048
			w := mustAlloc(b, g, kernels.BF16, N, K)
			fill(b, g, w)
			x := mustAlloc(b, g, kernels.F32, T, K)
			fill(b, g, x)
			y := mustAlloc(b, g, kernels.F32, T, N)
			g.Linear(y, x, w)
			b.ResetTimer()
			for range b.N {
				g.Linear(y, x, w)
			}
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(2*float64(T)*N*K*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
	}
}

// BenchmarkWKV7 times the recurrence over 32 heads (1.5B) for one token
// and for 1024 tokens: the one-block-per-head kernel with 4, 8 and 16
// threads per state row, and (T > 1) the row-split kernels (threads per
// row, warps per block, input buffers).
func BenchmarkWKV7(b *testing.B) {
	g := newGPU(b)
	for _, T := range []int{1, 1024} {
		type kern struct {
			tpr int
			v   wkvVariant
		}
		kerns := []kern{{4, wkvVariant{}}, {8, wkvVariant{}}, {16, wkvVariant{}}}
		if T > 1 {
			for _, v := range wkvVariants() {
				kerns = append(kerns, kern{4, v})
			}
		}
		for _, kern := range kerns {
			b.Run(fmt.Sprintf("T%d_H32_tpr%d_split%d.%d.%d", T, kern.tpr, kern.v.tpr, kern.v.warps, kern.v.stages), func(b *testing.B) {
				const C = 2048
				ts := make([]kernels.Tensor, 7)
				for i := range ts {
					ts[i] = mustAlloc(b, g, kernels.F32, T, C)
					fill(b, g, ts[i])
				}
				s := mustAlloc(b, g, kernels.F32, C, 64)
				reps := 1
				if T == 1 {
					reps = 24
				}
				g.wkvTPR, g.wkvRows = kern.tpr, kern.v
				defer func() { g.wkvTPR, g.wkvRows = defaultWKVTPR, defaultWKVRows() }()
				replay(b, g, func() {
					for range reps {
						g.WKV7(ts[0], s, ts[1], ts[2], ts[3], ts[4], ts[5], ts[6])
					}
				})
				b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*reps)*1e6, "µs/op")
				b.ReportMetric(float64(T*reps)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkWKV7Batch times one token of each of B sequences, one state
// each (batched decode: core.Batch), at the 1.5B width, for each number
// of threads per state row; GB/s counts the states read and written.
func BenchmarkWKV7Batch(b *testing.B) {
	g := newGPU(b)
	const C = 2048
	for _, B := range []int{256, 1024} {
		ts := make([]kernels.Tensor, 7)
		for i := range ts {
			ts[i] = mustAlloc(b, g, kernels.F32, B, C)
			fill(b, g, ts[i])
		}
		s := mustAlloc(b, g, kernels.F32, B*C, 64)
		for _, tpr := range []int{4, 8, 16} {
			b.Run(fmt.Sprintf("B%d_tpr%d", B, tpr), func(b *testing.B) {
				g.wkvTPR = tpr
				defer func() { g.wkvTPR = defaultWKVTPR }()
				replay(b, g, func() { g.WKV7(ts[0], s, ts[1], ts[2], ts[3], ts[4], ts[5], ts[6]) })
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(sec*1e6, "µs/op")
				b.ReportMetric(2*float64(B*C*64*4)/sec/1e9, "GB/s")
			})
		}
		for _, t := range append(ts, s) {
			g.Free(t)
		}
	}
}

// BenchmarkGraphSmallOps replays a graph of 100 tiny kernels: the cost of
// one kernel in a captured decode step.
func BenchmarkGraphSmallOps(b *testing.B) {
	g := newGPU(b)
	x := mustAlloc(b, g, kernels.F32, 1, 2048)
	fill(b, g, x)
	y := mustAlloc(b, g, kernels.F32, 1, 2048)
	replay(b, g, func() {
		for range 50 {
			g.Act(y, x, kernels.Sigmoid)
			g.Add(x, y, x)
		}
	})
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/100*1e6, "µs/kernel")
}

// BenchmarkEagerOp is the host cost of one op outside a graph.
func BenchmarkEagerOp(b *testing.B) {
	g := newGPU(b)
	x := mustAlloc(b, g, kernels.F32, 1, 2048)
	fill(b, g, x)
	y := mustAlloc(b, g, kernels.F32, 1, 2048)
	b.ResetTimer()
	for range b.N {
		g.Act(y, x, kernels.Sigmoid)
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
}

// decodeLayer holds one layer's operands at an official shape for
// BenchmarkFusedDecode.
type decodeLayer struct {
	wr, wk, wv, wo, key, value kernels.Tensor
	w1, w2, a1, a2, v1, v2     kernels.Tensor
	g1, g2                     kernels.Tensor
	state, shift               kernels.Tensor
}

// BenchmarkFusedDecode times the fused ops of a one-token step at the 1.5B
// shape (24 layers of distinct bf16 weights, as in a model, so they come
// from device memory): each op replayed alone over the 24 layers, and the
// whole layer sequence (as Model runs it) with and without programmatic
// dependent launch.
// µs/layer is per layer (per op for the single-op cases).
func BenchmarkFusedDecode(b *testing.B) {
	g := newGPU(b)
	const L, C, F, D, Dv, Dg = 24, 2048, 8192, 96, 64, 256
	w := func(rows, cols int) kernels.Tensor {
		t := mustAlloc(b, g, kernels.BF16, rows, cols)
		fill(b, g, t)
		return t
	}
	act := func(cols int) kernels.Tensor {
		t := mustAlloc(b, g, kernels.F32, 1, cols)
		fill(b, g, t)
		return t
	}
	ls := make([]decodeLayer, L)
	ln, vec := act(C), act(C)
	for l := range ls {
		ly := &ls[l]
		ly.wr, ly.wk, ly.wv, ly.wo = w(C, C), w(C, C), w(C, C), w(C, C)
		ly.key, ly.value = w(F, C), w(C, F)
		ly.w1, ly.w2, ly.a1, ly.a2 = w(C, D), w(D, C), w(C, D), w(D, C)
		ly.v1, ly.v2, ly.g1, ly.g2 = w(C, Dv), w(Dv, C), w(C, Dg), w(Dg, C)
		ly.state, ly.shift = act(C*64), act(C)
		ly.state = ly.state.Reshape(C, 64)
	}
	x, xa := act(C), act(C)
	mix := make([]kernels.Tensor, 6)
	mixw := make([]kernels.Tensor, 6)
	for i := range mix {
		mix[i], mixw[i] = act(C), act(C)
	}
	r, k, v, ww, a, bb, gg, y, o, vf, zv := act(C), act(C), act(C), act(C), act(C), act(C), act(C), act(C), act(C), act(C), act(C)
	hw, ha, hv, hg, ffh := act(D), act(D), act(Dv), act(Dg), act(F)
	ops := map[string]func(ly *decodeLayer){
		"NormShiftMix": func(ly *decodeLayer) {
			g.NormShiftMix(xa, mix, x, ln, vec, 1e-5, ly.shift, mixw)
		},
		"LinearBatch_rkv_down": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{
				{Dst: r, X: mix[0], W: ly.wr}, {Dst: k, X: mix[2], W: ly.wk}, {Dst: v, X: mix[3], W: ly.wv},
				{Dst: hw, X: mix[1], W: ly.w1, NN: true, Activate: true, Act: kernels.Tanh},
				{Dst: ha, X: mix[4], W: ly.a1, NN: true},
				{Dst: hg, X: mix[5], W: ly.g1, NN: true, Activate: true, Act: kernels.Sigmoid},
				{Dst: hv, X: mix[3], W: ly.v1, NN: true},
			})
		},
		"LinearBatch_rkv": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{{Dst: r, X: mix[0], W: ly.wr}, {Dst: k, X: mix[2], W: ly.wk}, {Dst: v, X: mix[3], W: ly.wv}})
		},
		"LinearBatch_down": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{
				{Dst: hw, X: mix[1], W: ly.w1, NN: true, Activate: true, Act: kernels.Tanh},
				{Dst: ha, X: mix[4], W: ly.a1, NN: true},
				{Dst: hg, X: mix[5], W: ly.g1, NN: true, Activate: true, Act: kernels.Sigmoid},
				{Dst: hv, X: mix[3], W: ly.v1, NN: true},
			})
		},
		"Prep7Up": func(ly *decodeLayer) {
			g.Prep7Up(kernels.Prep7{K: k, V: v, VFirst: vf, ZV: zv, W: ww, A: a, B: bb, W0: vec, A0: vec, V0: vec, KK: vec, KA: vec, HeadSize: 64},
				kernels.Up7{HW: hw, W2: ly.w2, HA: ha, A2: ly.a2, HV: hv, V2: ly.v2, HG: hg, G2: ly.g2, G: gg})
		},
		"WKV7Out": func(ly *decodeLayer) {
			g.WKV7Out(ly.state, ww, a, bb, kernels.Out7{Dst: o, Y: y, R: r, K: k, V: v, G: gg, RK: vec, LnW: vec, LnB: vec, HeadSize: 64, Eps: 64e-5})
		},
		"LinearBatch_wo": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{{Dst: x, X: o, W: ly.wo, Accumulate: true}})
		},
		"LinearBatch_key": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{{Dst: ffh, X: mix[0], W: ly.key, Activate: true, Act: kernels.ReLUSquared}})
		},
		"LinearBatch_value": func(ly *decodeLayer) {
			g.LinearBatch([]kernels.LinearItem{{Dst: x, X: ffh, W: ly.value, Accumulate: true}})
		},
	}
	// The op sequence of a layer as Model runs it.
	order := []string{"NormShiftMix", "LinearBatch_rkv_down", "Prep7Up", "WKV7Out", "LinearBatch_wo", "NormShiftMix", "LinearBatch_key", "LinearBatch_value"}
	run := func(name string, pdl bool, fn func(ly *decodeLayer)) {
		b.Run(name, func(b *testing.B) {
			saved := g.pdl
			g.pdl = pdl && saved
			defer func() { g.pdl = saved }()
			replay(b, g, func() {
				for l := range ls {
					fn(&ls[l])
				}
			})
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N*L)*1e6, "µs/layer")
		})
	}
	for _, name := range []string{"NormShiftMix", "LinearBatch_rkv_down", "LinearBatch_rkv", "LinearBatch_down", "Prep7Up", "WKV7Out",
		"LinearBatch_wo", "LinearBatch_key", "LinearBatch_value"} {
		run(name, true, ops[name])
	}
	layer := func(ly *decodeLayer) {
		for _, name := range order {
			ops[name](ly)
		}
	}
	run("layer", true, layer)
	run("layer_nopdl", false, layer)
}

// BenchmarkStepIO is the host side of a decode step around a graph whose
// GPU work is tiny (an embedding lookup, then one kernel writing 65,536
// logits): the old sequence (Upload of the id from pageable memory, Launch,
// Download, Sync), CaptureIO's Step (the logits by DMA into the caller's
// buffer, which it registers; or through staging; or not at all), the
// bare Launch + Sync, and the pieces: Download of 256 KB alone and the
// host copy of 256 KB out of page-locked memory with warm caches.
func BenchmarkStepIO(b *testing.B) {
	g := newGPU(b)
	const V, C = 1024, 768
	tab := mustAlloc(b, g, kernels.F32, V, C)
	fill(b, g, tab)
	ids := mustAlloc(b, g, kernels.I32, 1, 1)
	x := mustAlloc(b, g, kernels.F32, 1, C)
	big := mustAlloc(b, g, kernels.F32, 1, 65536)
	fill(b, g, big)
	logits := mustAlloc(b, g, kernels.F32, 1, 65536)
	run := func() {
		g.Embed(x, tab, ids)
		g.Act(logits, big, kernels.Tanh)
	}
	id := []byte{5, 0, 0, 0}
	out := make([]byte, 4*65536)
	plain, err := g.Capture(recording(g, run))
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Free()
	io, err := g.CaptureIO(recording(g, run), ids, logits)
	if err != nil {
		b.Fatal(err)
	}
	defer io.Free()
	step := io.(*graph)
	check := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Run("separate", func(b *testing.B) {
		for range b.N {
			check(g.Upload(ids, id))
			check(plain.Launch())
			check(g.Download(out, logits))
			check(g.Sync())
		}
	})
	b.Run("io", func(b *testing.B) {
		for range b.N {
			check(step.Step(id, out))
		}
	})
	b.Run("io-staged", func(b *testing.B) {
		g.reg.off = true
		defer func() { g.reg.off = false }()
		for range b.N {
			check(step.Step(id, out))
		}
	})
	b.Run("io-nologits", func(b *testing.B) {
		for range b.N {
			check(step.Step(id, nil))
		}
	})
	b.Run("launch-sync", func(b *testing.B) {
		for range b.N {
			check(plain.Launch())
			check(g.Sync())
		}
	})
	b.Run("download", func(b *testing.B) {
		for range b.N {
			check(g.Download(out, logits))
		}
	})
	b.Run("copy-pinned", func(b *testing.B) {
		b.SetBytes(int64(len(out)))
		for range b.N {
			copy(out, step.out)
		}
	})
}

// BenchmarkDraw times Draw on one row of 65,536 logits (replayed in a
// graph, device time only) with the chat settings (top-p 0.3, penalties
// on 200 tokens), with top-k 40 at temperature 0.8, and with no filter, on
// a language model's kind of row (a broad bulk and a few strong tokens)
// and on a flat one (every probability close to 1/65,536); and the
// language model's rows 64 and 256 at once (a batched step's draw).
func BenchmarkDraw(b *testing.B) {
	g := newGPU(b)
	const V = 65536
	rng := rand.New(rand.NewPCG(1, 2))
	rows := map[string][]float32{"lm": make([]float32, V), "flat": make([]float32, V)}
	for i := range V {
		rows["lm"][i] = float32(2 * rng.NormFloat64())
		rows["flat"][i] = float32(0.05 * rng.NormFloat64())
	}
	for i := range 20 {
		rows["lm"][(i*7919+13)%V] += 10
	}
	shifts := make([]kernels.LogitShift, 200)
	for i := range shifts {
		shifts[i] = kernels.LogitShift{ID: int32(i * 37), Sub: 0.5 + 0.5*float64(i%5)}
	}
	specs := map[string]kernels.DrawSpec{
		"chat":       {U: 0.4, InvTemp: 1, TopP: 0.3, Shifts: shifts},
		"topk40_T08": {U: 0.4, InvTemp: 1.25, TopP: 1, TopK: 40},
		"nofilter":   {U: 0.4, InvTemp: 1, TopP: 1},
	}
	type run struct {
		row, spec string
		n         int // rows drawn at once (a batched step's members)
	}
	var runs []run
	for _, row := range []string{"lm", "flat"} {
		for _, name := range []string{"chat", "topk40_T08", "nofilter"} {
			runs = append(runs, run{row, name, 1})
		}
	}
	for _, n := range []int{64, 256} {
		runs = append(runs, run{"lm", "chat", n}, run{"lm", "nofilter", n})
	}
	for _, r := range runs {
		name := r.row + "/" + r.spec
		if r.n > 1 {
			name += fmt.Sprintf("/rows=%d", r.n)
		}
		b.Run(name, func(b *testing.B) {
			x := mustAlloc(b, g, kernels.F32, r.n, V)
			ds := make([]kernels.DrawSpec, r.n)
			for i := range r.n {
				if err := g.Upload(x.Slice(i, i+1), half.Bytes(rows[r.row])); err != nil {
					b.Fatal(err)
				}
				ds[i] = specs[r.spec]
			}
			words, err := kernels.EncodeDraws(ds)
			if err != nil {
				b.Fatal(err)
			}
			spec := mustAlloc(b, g, kernels.I32, 1, len(words)/4)
			if err := g.Upload(spec, words); err != nil {
				b.Fatal(err)
			}
			work, out := mustAlloc(b, g, kernels.F32, 1, kernels.DrawWork(r.n, V)), mustAlloc(b, g, kernels.I32, 1, 2*r.n)
			replay(b, g, func() { g.Draw(out, x, spec, work) })
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e6, "µs/draw")
			for _, t := range []kernels.Tensor{x, spec, work, out} {
				g.Free(t)
			}
		})
	}
}
