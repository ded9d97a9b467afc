package main

import (
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/kernels"
)

// opProfile wraps a backend, waiting for the device after each op of the
// image towers and the language model and adding its time to a per-op
// total (bench --vision --profile). The waits cost a little time; the
// totals say where it goes.
type opProfile struct {
	kernels.Backend
	mu    sync.Mutex
	total map[string]time.Duration
	count map[string]int
}

func newOpProfile(be kernels.Backend) *opProfile {
	return &opProfile{Backend: be, total: map[string]time.Duration{}, count: map[string]int{}}
}

func (p *opProfile) time(op string, fn func()) {
	start := time.Now()
	fn()
	p.Backend.Sync()
	d := time.Since(start)
	p.mu.Lock()
	p.total[op] += d
	p.count[op]++
	p.mu.Unlock()
}

// reset clears the totals.
func (p *opProfile) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.total)
	clear(p.count)
}

// print writes the totals, largest first.
func (p *opProfile) print(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ops := make([]string, 0, len(p.total))
	var sum time.Duration
	for op, d := range p.total {
		ops = append(ops, op)
		sum += d
	}
	slices.SortFunc(ops, func(a, b string) int { return int(p.total[b] - p.total[a]) })
	fmt.Fprintf(w, "profile:  %v in ops (each waited for):\n", sum.Round(time.Microsecond))
	for _, op := range ops {
		fmt.Fprintf(w, "  %-16s %9.2f ms  %5.1f%%  (%d calls)\n", op, ms(p.total[op]), 100*float64(p.total[op])/float64(sum), p.count[op])
	}
}

func (p *opProfile) Linear(d, x, w kernels.Tensor) {
	name := fmt.Sprintf("Linear %dx%d", w.Rows, w.Cols)
	if x.Rows <= 16 {
		name = "Linear (≤16 rows)"
	}
	p.time(name, func() { p.Backend.Linear(d, x, w) })
}
func (p *opProfile) MatMul(d, x, w kernels.Tensor) {
	p.time("MatMul", func() { p.Backend.MatMul(d, x, w) })
}
func (p *opProfile) LayerNorm(d, x, w, b kernels.Tensor, eps float32) {
	p.time("LayerNorm", func() { p.Backend.LayerNorm(d, x, w, b, eps) })
}
func (p *opProfile) Act(d, x kernels.Tensor, f kernels.Activation) {
	p.time("Act", func() { p.Backend.Act(d, x, f) })
}
func (p *opProfile) Add(d, a, b kernels.Tensor) { p.time("Add", func() { p.Backend.Add(d, a, b) }) }
func (p *opProfile) Mul(d, a, b kernels.Tensor) { p.time("Mul", func() { p.Backend.Mul(d, a, b) }) }
func (p *opProfile) Copy(d, s kernels.Tensor)   { p.time("Copy", func() { p.Backend.Copy(d, s) }) }
func (p *opProfile) Im2Col(d, s kernels.Tensor, c kernels.Conv) {
	p.time("Im2Col", func() { p.Backend.Im2Col(d, s, c) })
}
func (p *opProfile) Attention(a kernels.Attention) {
	name := "Attention"
	if a.RelH.Valid() {
		name = fmt.Sprintf("Attention span %d", a.Span)
	}
	p.time(name, func() { p.Backend.Attention(a) })
}
func (p *opProfile) WindowPartition(d, s kernels.Tensor, w kernels.Window) {
	p.time("WindowPartition", func() { p.Backend.WindowPartition(d, s, w) })
}
func (p *opProfile) WindowMerge(d, s kernels.Tensor, w kernels.Window) {
	p.time("WindowMerge", func() { p.Backend.WindowMerge(d, s, w) })
}
func (p *opProfile) Residual(d, x, y, b, g kernels.Tensor) {
	p.time("Residual", func() { p.Backend.Residual(d, x, y, b, g) })
}
func (p *opProfile) BiasAct(d, x, b kernels.Tensor, f kernels.Activation) {
	p.time("BiasAct", func() { p.Backend.BiasAct(d, x, b, f) })
}
func (p *opProfile) SpaceToDepth(d, s kernels.Tensor, h, w, f int) {
	p.time("SpaceToDepth", func() { p.Backend.SpaceToDepth(d, s, h, w, f) })
}
func (p *opProfile) CopyCols(d, s kernels.Tensor, col int) {
	p.time("CopyCols", func() { p.Backend.CopyCols(d, s, col) })
}

// The language model's ops (its prefill runs them composed here: the
// profile does not pass the backend's fused ops through).
func (p *opProfile) Embed(d, t, ids kernels.Tensor) {
	p.time("LM Embed", func() { p.Backend.Embed(d, t, ids) })
}
func (p *opProfile) ShiftMix(d []kernels.Tensor, x, st kernels.Tensor, mix []kernels.Tensor) {
	p.time("LM ShiftMix", func() { p.Backend.ShiftMix(d, x, st, mix) })
}
func (p *opProfile) Prep7(a kernels.Prep7) { p.time("LM Prep7", func() { p.Backend.Prep7(a) }) }
func (p *opProfile) WKV7(y, s, r, w, k, v, a, b kernels.Tensor) {
	p.time("LM WKV7", func() { p.Backend.WKV7(y, s, r, w, k, v, a, b) })
}
func (p *opProfile) Out7(o kernels.Out7) { p.time("LM Out7", func() { p.Backend.Out7(o) }) }
