package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/goose-rwkv/goose/kernels"
)

// Epsilons of the reference implementation.
const (
	lnEps = 1e-5  // every LayerNorm
	gnEps = 64e-5 // the time-mix GroupNorm (ln_x)
)

// ErrClosed is returned when a closed model or freed state is used.
var ErrClosed = errors.New("core: model closed or state freed")

// Forward feeds tokens through the model, advancing st. If logits is not
// nil it receives the logits after the last token (len(logits) must be the
// vocabulary size). Long inputs run in chunks; ctx is checked between
// chunks, and a cancelled call leaves st advanced by the whole chunks that
// ran (use a State snapshot to undo).
//
// One token runs in "RNN mode"; several run in "sequence mode", whose
// projections are matrix-matrix products. Both compute the same function.
func (m *Model) Forward(ctx context.Context, st *State, tokens []int32, logits []float32) error {
	if logits != nil && len(logits) != m.cfg.Vocab {
		return fmt.Errorf("forward: logits buffer has %d entries, vocabulary is %d", len(logits), m.cfg.Vocab)
	}
	return m.forward(ctx, st, tokens, logits, false)
}

// ForwardAll is Forward that returns the logits after every token:
// len(logits) must be len(tokens)·vocab, row t after token t.
func (m *Model) ForwardAll(ctx context.Context, st *State, tokens []int32, logits []float32) error {
	if len(logits) != len(tokens)*m.cfg.Vocab {
		return fmt.Errorf("forward: logits buffer has %d entries, want %d tokens × %d", len(logits), len(tokens), m.cfg.Vocab)
	}
	return m.forward(ctx, st, tokens, logits, true)
}

// ForwardEmbeds is Forward for input rows instead of token ids: rows holds
// n·C floats, n embeddings as the embedding table would give them (before
// ln0), for example an image's projected features spliced into a prompt
// (VisualRWKV). Feeding a prompt's segments one call after another — tokens,
// image rows, tokens — computes the same as one sequence. If logits is not
// nil it receives the logits after the last row.
func (m *Model) ForwardEmbeds(ctx context.Context, st *State, rows []float32, logits []float32) error {
	C := m.cfg.Width
	if len(rows)%C != 0 {
		return fmt.Errorf("forward: %d floats are not whole rows of width %d", len(rows), C)
	}
	return m.forwardRows(ctx, st, len(rows)/C, logits, func(dst kernels.Tensor, off int) error {
		return m.be.Upload(dst, float32Bytes(rows[off*C:(off+dst.Rows)*C]))
	})
}

// ForwardEmbedTensor is ForwardEmbeds for rows already on the model's
// backend, an F32 [n, Width] tensor (say an image's projected features):
// they are copied into the model's working memory on the device and never
// pass through the host.
func (m *Model) ForwardEmbedTensor(ctx context.Context, st *State, rows kernels.Tensor, logits []float32) error {
	if rows.DType != kernels.F32 || rows.Cols != m.cfg.Width {
		return fmt.Errorf("forward: embedding rows %v, want f32 rows of width %d", rows, m.cfg.Width)
	}
	return m.forwardRows(ctx, st, rows.Rows, logits, func(dst kernels.Tensor, off int) error {
		m.be.Copy(dst, rows.Slice(off, off+dst.Rows))
		return nil
	})
}

// forwardRows runs n input rows through the model in chunks; load fills
// dst (the chunk's input rows) with rows [off, off+dst.Rows).
func (m *Model) forwardRows(ctx context.Context, st *State, n int, logits []float32, load func(dst kernels.Tensor, off int) error) error {
	if logits != nil && len(logits) != m.cfg.Vocab {
		return fmt.Errorf("forward: logits buffer has %d entries, vocabulary is %d", len(logits), m.cfg.Vocab)
	}
	if st == nil || st.m != m || !st.buf.Valid() {
		return fmt.Errorf("forward: %w", ErrClosed)
	}
	if n == 0 {
		return nil
	}
	sc, err := m.getScratch(m.prefillChunk(n, false), false)
	if err != nil {
		return err
	}
	defer m.putScratch(sc)
	sc.rows = true
	defer func() { sc.rows = false }()
	for off := 0; off < n; off += sc.T {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(sc.T, n-off)
		if err := load(sc.xa.Slice(0, k), off); err != nil {
			return err
		}
		out := 0
		if off+k == n && logits != nil {
			out = 1
		}
		m.run(m.be, sc, st, k, out)
		if out == 1 {
			if err := m.be.Download(float32Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
				return err
			}
		}
	}
	return m.be.Sync()
}

func (m *Model) forward(ctx context.Context, st *State, tokens []int32, logits []float32, all bool) error {
	if st == nil || st.m != m || !st.buf.Valid() {
		return fmt.Errorf("forward: %w", ErrClosed)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.cfg.Vocab {
			return fmt.Errorf("forward: token %d at position %d is outside the vocabulary [0,%d)", id, i, m.cfg.Vocab)
		}
	}
	if len(tokens) == 0 {
		return nil
	}
	if len(tokens) == 1 && m.graphsSupported {
		if err := ctx.Err(); err != nil {
			return err
		}
		return m.step(st, tokens[0], logits)
	}
	chunk := m.prefillChunk(len(tokens), all)
	sc, err := m.getScratch(chunk, all)
	if err != nil {
		return err
	}
	defer m.putScratch(sc)
	V := m.cfg.Vocab
	for off := 0; off < len(tokens); off += chunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		ids := tokens[off:min(off+chunk, len(tokens))]
		n := len(ids)
		if err := m.be.Upload(sc.ids, int32Bytes(padIDs(sc.idBuf, ids))); err != nil {
			return err
		}
		last := off+n == len(tokens)
		switch {
		case all:
			m.run(m.be, sc, st, n, n)
			if err := m.be.Download(float32Bytes(logits[off*V:(off+n)*V]), sc.logits.Slice(0, n)); err != nil {
				return err
			}
		case last && logits != nil:
			m.run(m.be, sc, st, n, 1)
			if err := m.be.Download(float32Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
				return err
			}
		default:
			m.run(m.be, sc, st, n, 0)
		}
	}
	return m.be.Sync()
}

// allLogitsChunk is the most tokens per call of ForwardAll, whose logits
// buffer holds one vocabulary row per token (256 MB at 1,024 tokens).
const allLogitsChunk = 1024

// prefillChunk returns the scratch size for a forward call of n tokens:
// at most one chunk (the backend's preferred chunk, at most allLogitsChunk
// when every token's logits are wanted), and otherwise n rounded up to a
// power of two, so that prompts of many lengths share a few scratch sizes.
func (m *Model) prefillChunk(n int, all bool) int {
	limit := m.chunk
	if all {
		limit = min(limit, allLogitsChunk)
	}
	if n >= limit {
		return limit
	}
	p := 1
	for p < n {
		p <<= 1
	}
	return min(p, limit)
}

// padIDs copies ids into buf and zero-fills the rest (so the upload has a
// fixed size).
func padIDs(buf, ids []int32) []int32 {
	n := copy(buf, ids)
	clear(buf[n:])
	return buf
}

// step runs one token through a captured graph, capturing it on first use
// with this state. On a backend with CaptureIO (kernels.StepGrapher) the
// token id's upload and the logits' download are part of the graph.
func (m *Model) step(st *State, token int32, logits []float32) error {
	sc, err := m.getScratch(1, false)
	if err != nil {
		return err
	}
	defer m.putScratch(sc)
	sc.idBuf[0] = token
	io, isIO := m.be.(kernels.StepGrapher)
	if sc.graph == nil || sc.graphState != st {
		if sc.graph != nil {
			sc.graph.Free()
			sc.graph = nil
		}
		run := func(rec kernels.Backend) { m.run(rec, sc, st, 1, 1) }
		var g kernels.Graph
		if isIO {
			g, err = io.CaptureIO(run, sc.ids, sc.logits.Slice(0, 1))
		} else {
			g, err = m.be.(kernels.Grapher).Capture(run)
		}
		if err != nil {
			return fmt.Errorf("capture decode step: %w", err)
		}
		sc.graph, sc.graphState = g, st
	}
	if g, ok := sc.graph.(kernels.StepGraph); ok && isIO {
		return g.Step(int32Bytes(sc.idBuf), float32Bytes(logits))
	}
	if err := m.be.Upload(sc.ids, int32Bytes(sc.idBuf)); err != nil {
		return err
	}
	if err := sc.graph.Launch(); err != nil {
		return err
	}
	if logits != nil {
		if err := m.be.Download(float32Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
			return err
		}
	}
	return m.be.Sync()
}

// run issues the ops for n tokens whose ids are in sc.ids, and the logits
// of the last `out` rows into sc.logits rows [0, out). A backend with fused
// ops (kernels.Fused) gets them (runFused); otherwise each op is issued on
// its own (runComposed). Both compute the same function.
func (m *Model) run(be kernels.Backend, sc *scratch, st *State, n, out int) {
	if f, ok := be.(kernels.Fused); ok {
		m.runFused(be, f, sc, st, n, out)
	} else {
		m.runComposed(be, sc, st, n, out)
	}
}

// acts are the activation views of one forward call for n tokens.
type acts struct {
	x, xa, tmp                        kernels.Tensor
	r, k, v, w, a, b, g, y, o, vfirst kernels.Tensor
	mix                               []kernels.Tensor // x_r, x_w, x_k, x_v, x_a, x_g
	xr, xw, xk, xv, xaa, xg           kernels.Tensor
	hw, ha, hv, hg, zv, ffh           kernels.Tensor
	// Operand lists for the fused ops, kept here so a decode step does not
	// allocate them per layer.
	items  [7]kernels.LinearItem
	one    [1]kernels.LinearItem
	ffnMix [1]kernels.Tensor
}

// views returns sc's activations for n tokens (cached for the last n).
func (sc *scratch) views(n int) *acts {
	if sc.act != nil && sc.actN == n {
		return sc.act
	}
	rows := func(t kernels.Tensor) kernels.Tensor { return t.Slice(0, n) }
	a := &acts{x: rows(sc.x), xa: rows(sc.xa), tmp: rows(sc.tmp),
		r: rows(sc.r), k: rows(sc.k), v: rows(sc.v), w: rows(sc.w), a: rows(sc.a), b: rows(sc.b), g: rows(sc.g),
		y: rows(sc.y), o: rows(sc.o), vfirst: rows(sc.vfirst),
		hw: rows(sc.hw), ha: rows(sc.ha), hv: rows(sc.hv), hg: rows(sc.hg), zv: rows(sc.zv), ffh: rows(sc.ffh)}
	a.mix = make([]kernels.Tensor, 6)
	for i := range a.mix {
		a.mix[i] = rows(sc.mix[i])
	}
	a.xr, a.xw, a.xk, a.xv, a.xaa, a.xg = a.mix[0], a.mix[1], a.mix[2], a.mix[3], a.mix[4], a.mix[5]
	sc.act, sc.actN = a, n
	return a
}

// embed issues the embedding and ln0 of n tokens into t.x.
// With sc.rows set, t.xa already holds the input rows (ForwardEmbeds) and
// only ln0 runs: VisualRWKV applies ln0 to image rows too.
func (m *Model) embed(be kernels.Ops, sc *scratch, t *acts, n int) {
	if !sc.rows {
		be.Embed(t.xa, m.emb, sc.ids.Reshape(sc.T, 1).Slice(0, n).Reshape(1, n))
	}
	be.LayerNorm(t.x, t.xa, m.ln0w, m.ln0b, lnEps)
}

// logitsOut issues the output norm and head of the last `out` rows of t.x.
func (m *Model) logitsOut(be kernels.Ops, sc *scratch, t *acts, n, out int) {
	if out == 0 {
		return
	}
	last := t.x.Slice(n-out, n)
	norm := t.xa.Slice(0, out)
	be.LayerNorm(norm, last, m.lnOutW, m.lnOutB, lnEps)
	be.Linear(sc.logits.Slice(0, out), norm, m.head)
}

// prep7 returns the Prep7 operands of layer l.
func (m *Model) prep7(t *acts, l int) kernels.Prep7 {
	ly := &m.layers[l]
	p := kernels.Prep7{K: t.k, V: t.v, VFirst: t.vfirst, W: t.w, A: t.a, B: t.b,
		W0: ly.w0, A0: ly.a0, KK: ly.kk, KA: ly.ka, HeadSize: m.cfg.HeadSize}
	if l > 0 {
		p.ZV, p.V0 = t.zv, ly.v0
	}
	return p
}

// out7 returns the Out7 operands of layer l.
func (m *Model) out7(t *acts, l int) kernels.Out7 {
	ly := &m.layers[l]
	return kernels.Out7{Dst: t.o, Y: t.y, R: t.r, K: t.k, V: t.v, G: t.g, RK: ly.rk,
		LnW: ly.lnxw, LnB: ly.lnxb, HeadSize: m.cfg.HeadSize, Eps: gnEps}
}

// runComposed issues every op on its own (about 30 per layer).
func (m *Model) runComposed(be kernels.Ops, sc *scratch, st *State, n, out int) {
	t := sc.views(n)
	m.embed(be, sc, t, n)
	x, xa, tmp := t.x, t.xa, t.tmp
	for l := range m.layers {
		ly := &m.layers[l]
		// Time mix.
		be.LayerNorm(xa, x, ly.ln1w, ly.ln1b, lnEps)
		be.ShiftMix(t.mix, xa, st.att(l), ly.mix)
		be.Linear(t.r, t.xr, ly.wr)
		be.Linear(t.k, t.xk, ly.wk)
		be.Linear(t.v, t.xv, ly.wv)
		be.MatMul(t.hw, t.xw, ly.w1)
		be.Act(t.hw, t.hw, kernels.Tanh)
		be.MatMul(t.w, t.hw, ly.w2)
		be.MatMul(t.ha, t.xaa, ly.a1)
		be.MatMul(t.a, t.ha, ly.a2)
		if l > 0 {
			be.MatMul(t.hv, t.xv, ly.v1)
			be.MatMul(t.zv, t.hv, ly.v2)
		}
		be.MatMul(t.hg, t.xg, ly.g1)
		be.Act(t.hg, t.hg, kernels.Sigmoid)
		be.MatMul(t.g, t.hg, ly.g2)
		be.Prep7(m.prep7(t, l))
		be.WKV7(t.y, st.wkv(l), t.r, t.w, t.k, t.v, t.a, t.b)
		be.Out7(m.out7(t, l))
		be.Linear(tmp, t.o, ly.wo)
		be.Add(x, x, tmp)
		// Channel mix.
		be.LayerNorm(xa, x, ly.ln2w, ly.ln2b, lnEps)
		be.ShiftMix(t.mix[:1], xa, st.ffn(l), []kernels.Tensor{ly.ffnMix})
		be.Linear(t.ffh, t.xr, ly.ffnKey)
		be.Act(t.ffh, t.ffh, kernels.ReLUSquared)
		be.Linear(tmp, t.ffh, ly.ffnValue)
		be.Add(x, x, tmp)
	}
	m.logitsOut(be, sc, t, n, out)
}

// runFused issues the same computation through the fused ops: eight calls
// a layer, which a GPU runs as eight kernels for one token.
func (m *Model) runFused(be kernels.Ops, f kernels.Fused, sc *scratch, st *State, n, out int) {
	t := sc.views(n)
	m.embed(be, sc, t, n)
	x := t.x
	for l := range m.layers {
		ly := &m.layers[l]
		// Time mix: the r, k, v projections and the LoRA down-projections
		// (with their activations) are independent: one batch.
		f.NormShiftMix(t.xa, t.mix, x, ly.ln1w, ly.ln1b, lnEps, st.att(l), ly.mix)
		items := t.items[:6]
		items[0] = kernels.LinearItem{Dst: t.r, X: t.xr, W: ly.wr}
		items[1] = kernels.LinearItem{Dst: t.k, X: t.xk, W: ly.wk}
		items[2] = kernels.LinearItem{Dst: t.v, X: t.xv, W: ly.wv}
		items[3] = kernels.LinearItem{Dst: t.hw, X: t.xw, W: ly.w1, NN: true, Activate: true, Act: kernels.Tanh}
		items[4] = kernels.LinearItem{Dst: t.ha, X: t.xaa, W: ly.a1, NN: true}
		items[5] = kernels.LinearItem{Dst: t.hg, X: t.xg, W: ly.g1, NN: true, Activate: true, Act: kernels.Sigmoid}
		if l > 0 {
			items = append(items, kernels.LinearItem{Dst: t.hv, X: t.xv, W: ly.v1, NN: true})
		}
		f.LinearBatch(items)
		f.Prep7Up(m.prep7(t, l), kernels.Up7{HW: t.hw, W2: ly.w2, HA: t.ha, A2: ly.a2,
			HV: t.hv, V2: ly.v2, HG: t.hg, G2: ly.g2, G: t.g})
		f.WKV7Out(st.wkv(l), t.w, t.a, t.b, m.out7(t, l))
		t.one[0] = kernels.LinearItem{Dst: x, X: t.o, W: ly.wo, Accumulate: true}
		f.LinearBatch(t.one[:])
		// Channel mix.
		t.ffnMix[0] = ly.ffnMix
		f.NormShiftMix(t.xa, t.mix[:1], x, ly.ln2w, ly.ln2b, lnEps, st.ffn(l), t.ffnMix[:])
		t.one[0] = kernels.LinearItem{Dst: t.ffh, X: t.xr, W: ly.ffnKey, Activate: true, Act: kernels.ReLUSquared}
		f.LinearBatch(t.one[:])
		t.one[0] = kernels.LinearItem{Dst: x, X: t.ffh, W: ly.ffnValue, Accumulate: true}
		f.LinearBatch(t.one[:])
	}
	m.logitsOut(be, sc, t, n, out)
}

// scratch holds the activations of one forward call for up to T tokens.
// Its tensors keep fixed addresses so a decode step can be captured once
// and replayed.
type scratch struct {
	T      int
	all    bool // logits has T rows (else 1)
	idBuf  []int32
	ids    kernels.Tensor // I32 [1, T]
	x, xa  kernels.Tensor
	tmp    kernels.Tensor
	r, k   kernels.Tensor
	v, w   kernels.Tensor
	a, b   kernels.Tensor
	g, y   kernels.Tensor
	o      kernels.Tensor
	vfirst kernels.Tensor
	zv     kernels.Tensor
	mix    [6]kernels.Tensor
	hw, ha kernels.Tensor
	hv, hg kernels.Tensor
	ffh    kernels.Tensor
	logits kernels.Tensor

	owned      []kernels.Tensor
	rows       bool  // the input is embedding rows in xa, not ids
	act        *acts // views for actN tokens
	actN       int
	graph      kernels.Graph
	graphState *State
}

func (sc *scratch) release(be kernels.Backend) {
	if sc.graph != nil {
		sc.graph.Free()
	}
	for _, t := range sc.owned {
		be.Free(t)
	}
}

// getScratch takes a free scratch of capacity T (with T logits rows when
// all is set) or allocates one.
func (m *Model) getScratch(T int, all bool) (*scratch, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	for i, sc := range m.free {
		if sc.T == T && (sc.all || !all) {
			m.free = append(m.free[:i], m.free[i+1:]...)
			m.mu.Unlock()
			return sc, nil
		}
	}
	m.mu.Unlock()
	return m.newScratch(T, all)
}

// putScratch returns sc to the free list, keeping a few of each size.
func (m *Model) putScratch(sc *scratch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(m.free) >= 8 {
		sc.release(m.be)
		return
	}
	m.free = append(m.free, sc)
}

func (m *Model) newScratch(T int, all bool) (*scratch, error) {
	c := m.cfg
	sc := &scratch{T: T, all: all, idBuf: make([]int32, T)}
	var err error
	alloc := func(dt kernels.DType, rows, cols int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var t kernels.Tensor
		t, err = m.be.Alloc(dt, rows, cols)
		if err == nil {
			sc.owned = append(sc.owned, t)
		}
		return t
	}
	C := c.Width
	sc.ids = alloc(kernels.I32, 1, T)
	for _, p := range []*kernels.Tensor{&sc.x, &sc.xa, &sc.tmp, &sc.r, &sc.k, &sc.v, &sc.w, &sc.a, &sc.b, &sc.g, &sc.y, &sc.o, &sc.vfirst, &sc.zv} {
		*p = alloc(kernels.F32, T, C)
	}
	for i := range sc.mix {
		sc.mix[i] = alloc(kernels.F32, T, C)
	}
	sc.hw = alloc(kernels.F32, T, c.DecayLoRA)
	sc.ha = alloc(kernels.F32, T, c.AlphaLoRA)
	sc.hv = alloc(kernels.F32, T, max(c.ValueLoRA, 1))
	sc.hg = alloc(kernels.F32, T, c.GateLoRA)
	sc.ffh = alloc(kernels.F32, T, c.FFN)
	lr := 1
	if all {
		lr = T
	}
	sc.logits = alloc(kernels.F32, lr, c.Vocab)
	if err != nil {
		sc.release(m.be)
		return nil, fmt.Errorf("allocate activations for %d tokens: %w", T, err)
	}
	return sc, nil
}
