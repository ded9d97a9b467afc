package core

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/kernels"
)

// profiled wraps a backend and times every op, waiting for the device
// after each, so an op's time is its device time plus one host round trip
// (a few µs). It forwards the fused ops when the backend has them.
type profiled struct {
	kernels.Backend
	total map[string]time.Duration
	calls map[string]int
}

// profiledFused is profiled with the fused ops of the wrapped backend.
type profiledFused struct {
	*profiled
	f kernels.Fused
}

func (p *profiled) time(op string, fn func()) {
	start := time.Now()
	fn()
	p.Backend.Sync()
	p.total[op] += time.Since(start)
	p.calls[op]++
}

func dims(w kernels.Tensor) string { return fmt.Sprintf("%d×%d", w.Rows, w.Cols) }

func (p *profiled) Embed(d, t, i kernels.Tensor) {
	p.time("Embed", func() { p.Backend.Embed(d, t, i) })
}
func (p *profiled) Linear(d, x, w kernels.Tensor) {
	p.time("Linear "+dims(w), func() { p.Backend.Linear(d, x, w) })
}
func (p *profiled) MatMul(d, x, w kernels.Tensor) {
	p.time("MatMul (LoRA)", func() { p.Backend.MatMul(d, x, w) })
}
func (p *profiled) LayerNorm(d, x, w, b kernels.Tensor, eps float32) {
	p.time("LayerNorm", func() { p.Backend.LayerNorm(d, x, w, b, eps) })
}
func (p *profiled) ShiftMix(d []kernels.Tensor, x, s kernels.Tensor, m []kernels.Tensor) {
	p.time("ShiftMix", func() { p.Backend.ShiftMix(d, x, s, m) })
}
func (p *profiled) Act(d, x kernels.Tensor, f kernels.Activation) {
	p.time("Act", func() { p.Backend.Act(d, x, f) })
}
func (p *profiled) Add(d, a, b kernels.Tensor) { p.time("Add", func() { p.Backend.Add(d, a, b) }) }
func (p *profiled) Copy(d, s kernels.Tensor)   { p.time("Copy", func() { p.Backend.Copy(d, s) }) }
func (p *profiled) Lerp(d []kernels.Tensor, x, dd kernels.Tensor, m []kernels.Tensor) {
	p.time(fmt.Sprintf("Lerp ×%d", len(d)), func() { p.Backend.Lerp(d, x, dd, m) })
}
func (p *profiled) Prep7(q kernels.Prep7) { p.time("Prep7", func() { p.Backend.Prep7(q) }) }
func (p *profiled) Out7(o kernels.Out7)   { p.time("Out7", func() { p.Backend.Out7(o) }) }
func (p *profiled) WKV7(y, s, r, w, k, v, a, b kernels.Tensor) {
	p.time("WKV7", func() { p.Backend.WKV7(y, s, r, w, k, v, a, b) })
}

func (p profiledFused) LinearBatch(items []kernels.LinearItem) {
	var names []string
	for _, it := range items {
		names = append(names, dims(it.W))
	}
	p.time("LinearBatch "+strings.Join(names, ","), func() { p.f.LinearBatch(items) })
}
func (p profiledFused) NormShiftMix(n kernels.Tensor, d []kernels.Tensor, x, w, b kernels.Tensor, eps float32, s kernels.Tensor, m []kernels.Tensor) {
	p.time("NormShiftMix", func() { p.f.NormShiftMix(n, d, x, w, b, eps, s, m) })
}
func (p profiledFused) NormShiftRows(n kernels.Tensor, d []kernels.Tensor, x, w, b kernels.Tensor, eps float32, s kernels.Tensor, m []kernels.Tensor) {
	p.time(fmt.Sprintf("NormShiftRows ×%d", len(d)), func() { p.f.(kernels.RowShift).NormShiftRows(n, d, x, w, b, eps, s, m) })
}
func (p profiledFused) Prep7Up(q kernels.Prep7, u kernels.Up7) {
	p.time("Prep7Up", func() { p.f.Prep7Up(q, u) })
}
func (p profiledFused) WKV7Out(s, w, a, b kernels.Tensor, o kernels.Out7) {
	p.time("WKV7Out", func() { p.f.WKV7Out(s, w, a, b, o) })
}

// report logs the ops by total time.
func (p *profiled) report(b *testing.B, tokens int) {
	var names []string
	var sum time.Duration
	for n, d := range p.total {
		names = append(names, n)
		sum += d
	}
	sort.Slice(names, func(i, j int) bool { return p.total[names[i]] > p.total[names[j]] })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%d tokens, %v in ops (%.1f µs/token, %.0f tok/s)\n", tokens, sum.Round(time.Microsecond),
		sum.Seconds()*1e6/float64(tokens), float64(tokens)/sum.Seconds())
	for _, n := range names {
		d := p.total[n]
		fmt.Fprintf(&sb, "  %5.1f%% %9.2f ms %6.2f µs/token %5d calls  %s\n", 100*d.Seconds()/sum.Seconds(),
			d.Seconds()*1e3, d.Seconds()*1e6/float64(tokens), p.calls[n], n)
	}
	b.Log(sb.String())
}

// cudaModel loads random weights at an official shape on the GPU.
func cudaModel(b *testing.B, be kernels.Backend, shape string) *Model {
	b.Helper()
	cfg, _ := OfficialShape(shape)
	src, err := RandomSource(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(src, LoadOptions{Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkCUDAPrefillProfile prefills 4096 tokens at the 1.5B shape with
// every op timed on its own, through the fused ops (as Model runs on CUDA)
// and through the plain ops, and logs where the time goes. Run with
// -test.benchtime 1x.
func BenchmarkCUDAPrefillProfile(b *testing.B) {
	gpu := cudaBackend(b)
	ids := make([]int32, 4096)
	for i := range ids {
		ids[i] = int32(1 + i*397%60000)
	}
	for _, mode := range []string{"fused", "composed"} {
		b.Run(mode, func(b *testing.B) {
			p := &profiled{Backend: gpu, total: map[string]time.Duration{}, calls: map[string]int{}}
			var be kernels.Backend = p
			if mode == "fused" {
				be = profiledFused{p, gpu.(kernels.Fused)}
			}
			m := cudaModel(b, be, "1.5b")
			st, err := m.NewState()
			if err != nil {
				b.Fatal(err)
			}
			defer st.Free()
			logits := make([]float32, m.Config().Vocab)
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				// Warm-up (cuBLAS heuristics, scratch), then a measured run.
				if err := m.Forward(ctx, st, ids[:1024], logits); err != nil {
					b.Fatal(err)
				}
				clear(p.total)
				clear(p.calls)
				if err := m.Forward(ctx, st, ids, logits); err != nil {
					b.Fatal(err)
				}
				p.report(b, len(ids))
			}
		})
	}
}

// BenchmarkCUDABatchProfile runs one batched decode step of 1024 sessions
// at the 1.5B shape, with exact and with rounded products, every op timed
// on its own (waiting for the device after each), and logs where the
// step's time goes. The logits are
// downloaded (the wrapper has no kernels.Greedy), outside the ops' times.
// Run with -test.benchtime 1x.
func BenchmarkCUDABatchProfile(b *testing.B) {
	gpu := cudaBackend(b)
	const n = 1024
	p := &profiled{Backend: gpu, total: map[string]time.Duration{}, calls: map[string]int{}}
	m := cudaModel(b, profiledFused{p, gpu.(kernels.Fused)}, "1.5b")
	for _, round := range []bool{false, true} {
		b.Run(fmt.Sprintf("round=%v", round), func(b *testing.B) { profileBatch(b, m, p, n, BatchOptions{RoundProducts: round}) })
	}
}

func profileBatch(b *testing.B, m *Model, p *profiled, n int, opts BatchOptions) {
	bt, err := m.NewBatch(n, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	for range n {
		st, err := m.NewState()
		if err != nil {
			b.Fatal(err)
		}
		defer st.Free()
		if _, err := bt.Join(st); err != nil {
			b.Fatal(err)
		}
	}
	tokens := make([]int32, n)
	for i := range tokens {
		tokens[i] = int32(1 + i*397%60000)
	}
	logits := make([]float32, n*m.Config().Vocab)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		if err := bt.Step(ctx, tokens, logits, nil); err != nil { // warm-up
			b.Fatal(err)
		}
		clear(p.total)
		clear(p.calls)
		if err := bt.Step(ctx, tokens, logits, nil); err != nil {
			b.Fatal(err)
		}
		p.report(b, n)
	}
}

// BenchmarkCUDAStep splits the time of one decode step: the whole Forward
// call (upload, graph, logits download), without the download, the graph
// replayed and waited for one at a time, and the graph replayed back to
// back (device time only). Run with -test.benchtime 1x.
func BenchmarkCUDAStep(b *testing.B) {
	gpu := cudaBackend(b)
	for _, shape := range []string{"0.1b", "1.5b"} {
		b.Run(shape, func(b *testing.B) {
			m := cudaModel(b, gpu, shape)
			st, err := m.NewState()
			if err != nil {
				b.Fatal(err)
			}
			defer st.Free()
			logits := make([]float32, m.Config().Vocab)
			ctx := context.Background()
			const steps = 300
			timeIt := func(name string, fn func(i int) error) {
				if err := fn(0); err != nil { // warm-up
					b.Fatal(err)
				}
				start := time.Now()
				for i := range steps {
					if err := fn(i); err != nil {
						b.Fatal(err)
					}
				}
				if err := gpu.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(time.Since(start).Seconds()*1e6/steps, "µs/"+name)
			}
			timeIt("step", func(i int) error { return m.Forward(ctx, st, []int32{int32(1 + i)}, logits) })
			timeIt("step-nologits", func(i int) error { return m.Forward(ctx, st, []int32{int32(1 + i)}, nil) })
			m.mu.Lock()
			var g kernels.Graph
			for _, sc := range m.free {
				if sc.T == 1 && sc.step.g != nil {
					g = sc.step.g
				}
			}
			m.mu.Unlock()
			if g == nil {
				b.Fatal("no captured decode graph")
			}
			timeIt("graph-sync", func(int) error {
				if err := g.Launch(); err != nil {
					return err
				}
				return gpu.Sync()
			})
			timeIt("graph", func(int) error { return g.Launch() })
		})
	}
}

// BenchmarkCUDAPrefill is the steady-state prefill rate (scratch memory
// already allocated, unlike the first prompt of a `gooseapp bench` run):
// 512 tokens at the 0.1B shape and 4096 at the 1.5B shape.
func BenchmarkCUDAPrefill(b *testing.B) {
	gpu := cudaBackend(b)
	for _, c := range []struct {
		shape string
		n     int
	}{{"0.1b", 512}, {"1.5b", 4096}} {
		b.Run(fmt.Sprintf("%s_%d", c.shape, c.n), func(b *testing.B) {
			m := cudaModel(b, gpu, c.shape)
			st, err := m.NewState()
			if err != nil {
				b.Fatal(err)
			}
			defer st.Free()
			ids := make([]int32, c.n)
			for i := range ids {
				ids[i] = int32(1 + i*397%60000)
			}
			logits := make([]float32, m.Config().Vocab)
			ctx := context.Background()
			if err := m.Forward(ctx, st, ids, logits); err != nil { // allocate
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := m.Forward(ctx, st, ids, logits); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
