package core

import (
	"context"
	"errors"
	"fmt"

	"github.com/goose-rwkv/goose/core/block"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
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
	return m.forwardRows(ctx, st, len(rows)/C, logits, func(_ *scratch, dst kernels.Tensor, off int) error {
		return m.be.Upload(dst, half.Bytes(rows[off*C:(off+dst.Rows)*C]))
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
	return m.forwardRows(ctx, st, rows.Rows, logits, func(_ *scratch, dst kernels.Tensor, off int) error {
		m.be.Copy(dst, rows.Slice(off, off+dst.Rows))
		return nil
	})
}

// Segment is one piece of a prompt fed by ForwardSegments: token ids, or
// (when Rows is valid) embedding rows on the model's backend, an F32
// [n, Width] tensor such as an image's projected features.
type Segment struct {
	Tokens []int32
	Rows   kernels.Tensor
}

// Len is the number of prompt positions the segment fills.
func (s Segment) Len() int {
	if s.Rows.Valid() {
		return s.Rows.Rows
	}
	return len(s.Tokens)
}

// ForwardSegments feeds the segments through the model as one sequence:
// the same function as feeding them one call after another (Forward,
// ForwardEmbedTensor), in one sequence-mode pass, so that a prompt made of
// text and image rows costs one pass over the weights, one set of chunks
// and, if logits is not nil, one head product after its last position.
func (m *Model) ForwardSegments(ctx context.Context, st *State, segs []Segment, logits []float32) error {
	n := 0
	for i, sg := range segs {
		if sg.Rows.Valid() {
			if sg.Rows.DType != kernels.F32 || sg.Rows.Cols != m.cfg.Width {
				return fmt.Errorf("forward: segment %d: embedding rows %v, want f32 rows of width %d", i, sg.Rows, m.cfg.Width)
			}
		} else {
			for j, id := range sg.Tokens {
				if id < 0 || int(id) >= m.cfg.Vocab {
					return fmt.Errorf("forward: segment %d: token %d at position %d is outside the vocabulary [0,%d)", i, id, j, m.cfg.Vocab)
				}
			}
		}
		n += sg.Len()
	}
	return m.forwardRows(ctx, st, n, logits, func(sc *scratch, dst kernels.Tensor, off int) error {
		// Token pieces of this chunk: ids gathered into sc.ids at their
		// rows, uploaded once, then embedded.
		type piece struct{ a, b int } // rows of dst
		var toks []piece
		pos := 0
		for _, sg := range segs {
			l := sg.Len()
			a, b := max(off, pos), min(off+dst.Rows, pos+l)
			if a < b {
				if sg.Rows.Valid() {
					m.be.Copy(dst.Slice(a-off, b-off), sg.Rows.Slice(a-pos, b-pos))
				} else {
					copy(sc.idBuf[a-off:b-off], sg.Tokens[a-pos:b-pos])
					toks = append(toks, piece{a - off, b - off})
				}
			}
			pos += l
		}
		if len(toks) == 0 {
			return nil
		}
		if err := m.be.Upload(sc.ids, half.Bytes(sc.idBuf)); err != nil {
			return err
		}
		for _, p := range toks {
			m.be.Embed(dst.Slice(p.a, p.b), m.emb, idCols(sc.ids, p.a, p.b))
		}
		return nil
	})
}

// forwardRows runs n input rows through the model in chunks; load fills
// dst (the chunk's input rows, in sc) with rows [off, off+dst.Rows).
func (m *Model) forwardRows(ctx context.Context, st *State, n int, logits []float32, load func(sc *scratch, dst kernels.Tensor, off int) error) (err error) {
	if err := m.checkSource(); err != nil {
		return err
	}
	defer memfault.CatchFile(m.path, &err)()
	if logits != nil && len(logits) != m.cfg.Vocab {
		return fmt.Errorf("forward: logits buffer has %d entries, vocabulary is %d", len(logits), m.cfg.Vocab)
	}
	if st == nil || st.m != m || !st.buf.Valid() {
		return fmt.Errorf("forward: %w", ErrClosed)
	}
	if n == 0 {
		return nil
	}
	sc, err := m.getScratch(m.prefillChunk(n, false), false, st)
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
		if err := load(sc, sc.acts.XA.Slice(0, k), off); err != nil {
			return err
		}
		out := 0
		if off+k == n && logits != nil {
			out = 1
		}
		m.run(m.be, sc, st, k, out)
		if out == 1 {
			if err := m.be.Download(half.Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
				return err
			}
		}
	}
	return m.be.Sync()
}

// forward runs Forward and ForwardAll. A weights file changed on disk
// fails the call before it starts (checkSource) and a fault while reading
// it fails the call with an error naming the file (memfault): the process
// lives, and st is left undefined.
func (m *Model) forward(ctx context.Context, st *State, tokens []int32, logits []float32, all bool) (err error) {
	if err := m.enter(st, tokens); err != nil {
		return err
	}
	defer memfault.CatchFile(m.path, &err)()
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
	sc, err := m.getScratch(chunk, all, st)
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
		if err := m.be.Upload(sc.ids, half.Bytes(padIDs(sc.idBuf, ids))); err != nil {
			return err
		}
		last := off+n == len(tokens)
		switch {
		case all:
			m.run(m.be, sc, st, n, n)
			if err := m.be.Download(half.Bytes(logits[off*V:(off+n)*V]), sc.logits.Slice(0, n)); err != nil {
				return err
			}
		case last && logits != nil:
			m.run(m.be, sc, st, n, 1)
			if err := m.be.Download(half.Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
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

// idCols returns the view of entries [i, j) of ids, an I32 [1, n] vector,
// as an I32 [1, j−i] vector.
func idCols(ids kernels.Tensor, i, j int) kernels.Tensor {
	return ids.Reshape(ids.Len(), 1).Slice(i, j).Reshape(1, j-i)
}

// padIDs copies ids into buf and zero-fills the rest (so the upload has a
// fixed size).
func padIDs(buf, ids []int32) []int32 {
	n := copy(buf, ids)
	clear(buf[n:])
	return buf
}

// enter checks what a forward call over tokens needs before it starts:
// the weights file unchanged (checkSource), st a live state of m, every
// token in the vocabulary.
func (m *Model) enter(st *State, tokens []int32) error {
	if err := m.checkSource(); err != nil {
		return err
	}
	if st == nil || st.m != m || !st.buf.Valid() {
		return fmt.Errorf("forward: %w", ErrClosed)
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= m.cfg.Vocab {
			return fmt.Errorf("forward: token %d at position %d is outside the vocabulary [0,%d)", id, i, m.cfg.Vocab)
		}
	}
	return nil
}

// step runs one token through a captured graph, capturing it on first use
// with this state. On a backend with CaptureIO (kernels.StepGrapher) the
// token id's upload and the logits' download are part of the graph.
func (m *Model) step(st *State, token int32, logits []float32) error {
	sc, err := m.getScratch(1, false, st)
	if err != nil {
		return err
	}
	defer m.putScratch(sc)
	sc.idBuf[0] = token
	io, isIO := m.be.(kernels.StepGrapher)
	graph, err := sc.step.forState(st, func() (kernels.Graph, error) {
		run := func(rec kernels.Backend) { m.run(rec, sc, st, 1, 1) }
		if isIO {
			return io.CaptureIO(run, sc.ids, sc.logits.Slice(0, 1))
		}
		return m.be.(kernels.Grapher).Capture(run)
	})
	if err != nil {
		return fmt.Errorf("capture decode step: %w", err)
	}
	if g, ok := graph.(kernels.StepGraph); ok && isIO {
		return g.Step(half.Bytes(sc.idBuf), half.Bytes(logits))
	}
	if err := m.be.Upload(sc.ids, half.Bytes(sc.idBuf)); err != nil {
		return err
	}
	if err := graph.Launch(); err != nil {
		return err
	}
	if logits != nil {
		if err := m.be.Download(half.Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
			return err
		}
	}
	return m.be.Sync()
}

// run issues the ops for n tokens whose ids are in sc.ids, and the logits
// of the last `out` rows into sc.logits rows [0, out): the embedding, the
// shared RWKV-7 block (package block) for each layer with the token shift
// and the WKV carried in st, and the head.
func (m *Model) run(be kernels.Backend, sc *scratch, st *State, n, out int) {
	a := sc.acts.Rows(n)
	m.embed(be, sc, a, n)
	mx := lmMixer{st}
	for l := range m.layers {
		block.Forward(be, &m.layers[l], l, a, mx)
	}
	m.logitsOut(be, sc, a, n, out)
}

// lmMixer is the language model's part of a block: the token shift mixes
// each row with the previous one (the first with the state's), and the
// WKV runs causally from the state's, both carried in st.
type lmMixer struct{ st *State }

func (m lmMixer) NormShift(f block.Ops, l int, ffn bool, norm kernels.Tensor, dst []kernels.Tensor, x, w, b kernels.Tensor, mix []kernels.Tensor) {
	state := m.st.att(l)
	if ffn {
		state = m.st.ffn(l)
	}
	f.NormShiftMix(norm, dst, x, w, b, block.LNEps, state, mix)
}

func (m lmMixer) WKV(f block.Ops, l int, w, a, b kernels.Tensor, o kernels.Out7) {
	f.WKV7Out(m.st.wkv(l), w, a, b, o)
}

// embed issues the embedding and ln0 of n tokens into a.X.
// With sc.rows set, a.XA already holds the input rows (ForwardEmbeds) and
// only ln0 runs: VisualRWKV applies ln0 to image rows too.
func (m *Model) embed(be kernels.Ops, sc *scratch, a *block.Acts, n int) {
	if !sc.rows {
		be.Embed(a.XA, m.emb, idCols(sc.ids, 0, n))
	}
	be.LayerNorm(a.X, a.XA, m.ln0w, m.ln0b, block.LNEps)
}

// logitsOut issues the output norm and head of the last `out` rows of a.X.
func (m *Model) logitsOut(be kernels.Ops, sc *scratch, a *block.Acts, n, out int) {
	if out == 0 {
		return
	}
	last := a.X.Slice(n-out, n)
	norm := a.XA.Slice(0, out)
	be.LayerNorm(norm, last, m.lnOutW, m.lnOutB, block.LNEps)
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
	acts   *block.Acts
	logits kernels.Tensor

	owned []kernels.Tensor
	rows  bool       // the input is embedding rows in acts.XA, not ids
	step  stateGraph // the decode step (step)

	// The greedy step (ForwardGreedy): its graph ends in ArgmaxChecked
	// into pick (I32 [1, 2]: the token and the doubt flag).
	greedy  stateGraph
	pick    kernels.Tensor
	pickBuf []int32

	// The sampled step (ForwardSample): its graph ends in Draw, which reads
	// the draw's spec (I32, kernels.EncodeDraws) and uses work (F32,
	// kernels.DrawWork(1, Vocab)); the token and the flag go to pick.
	draw       stateGraph
	spec, work kernels.Tensor
}

// stateGraph is a captured one-token step and the state it was captured
// with: its ops read and write that state's tensors.
type stateGraph struct {
	g  kernels.Graph
	st *State
}

// forState returns the graph for st, capturing it (after freeing one
// captured with another state) when there is none.
func (sg *stateGraph) forState(st *State, capture func() (kernels.Graph, error)) (kernels.Graph, error) {
	if sg.g != nil && sg.st == st {
		return sg.g, nil
	}
	sg.free()
	g, err := capture()
	if err != nil {
		return nil, err
	}
	sg.g, sg.st = g, st
	return g, nil
}

func (sg *stateGraph) free() {
	if sg.g != nil {
		sg.g.Free()
		sg.g, sg.st = nil, nil
	}
}

func (sc *scratch) release(be kernels.Backend) {
	sc.step.free()
	sc.greedy.free()
	sc.draw.free()
	if sc.acts != nil {
		sc.acts.Free(be)
	}
	for _, t := range sc.owned {
		be.Free(t)
	}
}

// getScratch takes a free scratch of capacity T (with T logits rows when
// all is set) or allocates one. Of the free ones it prefers one whose
// captured one-token graphs read and write st, so that a state decoding
// call after call (a session's) keeps its graphs instead of capturing
// them anew.
func (m *Model) getScratch(T int, all bool, st *State) (*scratch, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	pick := -1
	for i, sc := range m.free {
		if sc.T != T || (all && !sc.all) {
			continue
		}
		if pick < 0 {
			pick = i
		}
		if st != nil && sc.holds(st) {
			pick = i
			break
		}
	}
	if pick >= 0 {
		sc := m.free[pick]
		m.free = append(m.free[:pick], m.free[pick+1:]...)
		m.mu.Unlock()
		return sc, nil
	}
	m.mu.Unlock()
	return m.newScratch(T, all)
}

// The free scratch a model keeps: one-token scratch (with its captured
// graphs, about a megabyte each) for as many states as decode at once in
// a busy server, and larger (prefill) scratch up to a size in all. Beyond
// that the oldest is released; allocating and releasing device memory
// waits for the device, which would stall every other session's work.
const (
	maxFreeStepScratch = 256
	maxFreeScratchSize = 512 << 20
)

// putScratch returns sc to the free list, releasing the oldest free
// scratch of its kind beyond the limits above.
func (m *Model) putScratch(sc *scratch) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		sc.release(m.be)
		return
	}
	m.free = append(m.free, sc)
	steps, size := 0, int64(0)
	for i := len(m.free) - 1; i >= 0; i-- { // newest first
		x := m.free[i]
		keep := true
		if x.T == 1 {
			steps++
			keep = steps <= m.freeSteps
		} else {
			size += x.bytes()
			keep = size <= m.freeSize || x == sc
		}
		if !keep {
			x.release(m.be)
			m.free = append(m.free[:i], m.free[i+1:]...)
		}
	}
}

// holds reports whether one of sc's captured graphs runs on st.
func (sc *scratch) holds(st *State) bool {
	return sc.step.st == st || sc.greedy.st == st || sc.draw.st == st
}

// bytes is the size of sc's device tensors.
func (sc *scratch) bytes() int64 {
	var n int64
	if sc.acts != nil {
		n = sc.acts.Bytes()
	}
	for _, t := range sc.owned {
		n += int64(t.Len()) * int64(t.DType.Size())
	}
	return n
}

func (m *Model) newScratch(T int, all bool) (*scratch, error) {
	c := m.cfg
	sc := &scratch{T: T, all: all, idBuf: make([]int32, T)}
	var err error
	if sc.acts, err = block.NewActs(m.be, T, m.dims(), 1); err != nil {
		return nil, err
	}
	if sc.ids, err = m.be.Alloc(kernels.I32, 1, T); err == nil {
		sc.owned = append(sc.owned, sc.ids)
		lr := 1
		if all {
			lr = T
		}
		if sc.logits, err = m.be.Alloc(kernels.F32, lr, c.Vocab); err == nil {
			sc.owned = append(sc.owned, sc.logits)
		}
	}
	if err != nil {
		sc.release(m.be)
		return nil, fmt.Errorf("allocate activations for %d tokens: %w", T, err)
	}
	return sc, nil
}
