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
	chunk := min(m.chunk, len(tokens))
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
			m.run(sc, st, n, n)
			if err := m.be.Download(float32Bytes(logits[off*V:(off+n)*V]), sc.logits.Slice(0, n)); err != nil {
				return err
			}
		case last && logits != nil:
			m.run(sc, st, n, 1)
			if err := m.be.Download(float32Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
				return err
			}
		default:
			m.run(sc, st, n, 0)
		}
	}
	return m.be.Sync()
}

// padIDs copies ids into buf and zero-fills the rest (so the upload has a
// fixed size).
func padIDs(buf, ids []int32) []int32 {
	n := copy(buf, ids)
	clear(buf[n:])
	return buf
}

// step runs one token through a captured graph, capturing it on first use
// with this state.
func (m *Model) step(st *State, token int32, logits []float32) error {
	sc, err := m.getScratch(1, false)
	if err != nil {
		return err
	}
	defer m.putScratch(sc)
	sc.idBuf[0] = token
	if err := m.be.Upload(sc.ids, int32Bytes(sc.idBuf)); err != nil {
		return err
	}
	if sc.graph == nil || sc.graphState != st {
		if sc.graph != nil {
			sc.graph.Free()
			sc.graph = nil
		}
		g, err := m.be.(kernels.Grapher).Capture(func() { m.run(sc, st, 1, 1) })
		if err != nil {
			return fmt.Errorf("capture decode step: %w", err)
		}
		sc.graph, sc.graphState = g, st
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
// of the last `out` rows into sc.logits rows [0, out).
func (m *Model) run(sc *scratch, st *State, n, out int) {
	be, cfg := m.be, m.cfg
	rows := func(t kernels.Tensor) kernels.Tensor { return t.Slice(0, n) }
	x, xa, tmp := rows(sc.x), rows(sc.xa), rows(sc.tmp)
	be.Embed(xa, m.emb, sc.ids.Reshape(sc.T, 1).Slice(0, n).Reshape(1, n))
	be.LayerNorm(x, xa, m.ln0w, m.ln0b, lnEps)

	r, k, v, w, a, b, g := rows(sc.r), rows(sc.k), rows(sc.v), rows(sc.w), rows(sc.a), rows(sc.b), rows(sc.g)
	y, o, vfirst := rows(sc.y), rows(sc.o), rows(sc.vfirst)
	mix := make([]kernels.Tensor, 6)
	for i := range mix {
		mix[i] = rows(sc.mix[i])
	}
	xr, xw, xk, xv, xaa, xg := mix[0], mix[1], mix[2], mix[3], mix[4], mix[5]
	hw, ha, hv, hg, zv := rows(sc.hw), rows(sc.ha), rows(sc.hv), rows(sc.hg), rows(sc.zv)
	ffh := rows(sc.ffh)

	for l := range m.layers {
		ly := &m.layers[l]
		// Time mix.
		be.LayerNorm(xa, x, ly.ln1w, ly.ln1b, lnEps)
		be.ShiftMix(mix, xa, st.att(l), ly.mix)
		be.Linear(r, xr, ly.wr)
		be.Linear(k, xk, ly.wk)
		be.Linear(v, xv, ly.wv)
		be.MatMul(hw, xw, ly.w1)
		be.Act(hw, hw, kernels.Tanh)
		be.MatMul(w, hw, ly.w2)
		be.MatMul(ha, xaa, ly.a1)
		be.MatMul(a, ha, ly.a2)
		p := kernels.Prep7{K: k, V: v, VFirst: vfirst, W: w, A: a, B: b,
			W0: ly.w0, A0: ly.a0, KK: ly.kk, KA: ly.ka, HeadSize: cfg.HeadSize}
		if l > 0 {
			be.MatMul(hv, xv, ly.v1)
			be.MatMul(zv, hv, ly.v2)
			p.ZV, p.V0 = zv, ly.v0
		}
		be.MatMul(hg, xg, ly.g1)
		be.Act(hg, hg, kernels.Sigmoid)
		be.MatMul(g, hg, ly.g2)
		be.Prep7(p)
		be.WKV7(y, st.wkv(l), r, w, k, v, a, b)
		be.Out7(kernels.Out7{Dst: o, Y: y, R: r, K: k, V: v, G: g, RK: ly.rk,
			LnW: ly.lnxw, LnB: ly.lnxb, HeadSize: cfg.HeadSize, Eps: gnEps})
		be.Linear(tmp, o, ly.wo)
		be.Add(x, x, tmp)
		// Channel mix.
		be.LayerNorm(xa, x, ly.ln2w, ly.ln2b, lnEps)
		be.ShiftMix(mix[:1], xa, st.ffn(l), []kernels.Tensor{ly.ffnMix})
		be.Linear(ffh, xr, ly.ffnKey)
		be.Act(ffh, ffh, kernels.ReLUSquared)
		be.Linear(tmp, ffh, ly.ffnValue)
		be.Add(x, x, tmp)
	}
	if out == 0 {
		return
	}
	last := x.Slice(n-out, n)
	norm := xa.Slice(0, out)
	be.LayerNorm(norm, last, m.lnOutW, m.lnOutB, lnEps)
	be.Linear(sc.logits.Slice(0, out), norm, m.head)
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
