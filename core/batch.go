package core

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/goose-rwkv/goose/core/block"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
)

// Batch advances several sessions' one-token steps as one: every product
// runs over one row per session (a matrix product instead of one
// matrix-vector product each, so each weight is read once per step for all
// of them), the WKV over their states side by side, and the head gives one
// row of logits each, or just each row's greedy token when the backend
// picks it on the device (kernels.Greedy).
//
// Sessions join with their State (copied into the batch's slot, where the
// steps advance it) and leave with it (copied back). Their states are kept
// per layer in contiguous slots 0..Len()−1: a session leaving moves the last
// slot into its place. Each session's results are those of running it
// alone (up to rounding: the products sum in another order), unless
// BatchOptions.RoundProducts trades that for speed.
//
// A Batch is not safe for concurrent use; the model may serve other calls
// meanwhile.
type Batch struct {
	m       *Model
	cap     int
	members []*Member // by slot

	att, ffn []kernels.Tensor // per layer, [cap, C]: the token-shift rows
	wkv      []kernels.Tensor // per layer, [cap·H·64, 64]
	minus    kernels.Tensor   // [1, C] of −1
	d        kernels.Tensor   // [cap, C] scratch: shift state − row
	ids      kernels.Tensor   // I32 [1, cap]: greedy tokens
	sc       *scratch         // activations for cap rows, logits [cap, V]
	owned    []kernels.Tensor
	// The draw's spec, scratch and [token, flag] pairs (StepDraw), grown
	// as needed.
	spec, work, picks kernels.Tensor
	closed            bool
	round             bool // BatchOptions.RoundProducts
	// graphs are the recorded steps (kernels.Grapher), by member count
	// and whether the greedy tokens are picked.
	graphs map[[2]int]kernels.Graph
}

// Member is a session's place in a Batch.
type Member struct {
	b    *Batch
	slot int
	st   *State
}

// Slot is the member's row in the batch's steps (it changes when another
// member leaves).
func (mb *Member) Slot() int { return mb.slot }

// State is the state the member joined with.
func (mb *Member) State() *State { return mb.st }

// BatchOptions configure a Batch.
type BatchOptions struct {
	// RoundProducts lets the large products of a step (r, k, v, the
	// output projection and the channel mix: 87% of a 1.5B step's
	// multiply-adds; the head and the LoRAs stay exact) round their inputs
	// to the weights' dtype, bf16 or f16, as the reference
	// implementations' bf16 inference does (kernels.LinearItem.Round).
	// On CUDA, steps of more than 16 members then run one tensor-core pass
	// a product instead of the two that keep fp32 activations exact; a
	// member's logits then differ from running it alone by about 2⁻⁹
	// relative a product term. Off (the default), results are those of
	// running alone up to summation order.
	RoundProducts bool
}

// NewBatch returns a Batch for up to capacity sessions.
func (m *Model) NewBatch(capacity int, opts BatchOptions) (_ *Batch, err error) {
	if capacity < 1 {
		return nil, fmt.Errorf("batch: capacity %d", capacity)
	}
	c := m.cfg
	b := &Batch{m: m, cap: capacity, round: opts.RoundProducts}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	alloc := func(dt kernels.DType, rows, cols int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var t kernels.Tensor
		if t, err = m.be.Alloc(dt, rows, cols); err == nil {
			b.owned = append(b.owned, t)
		}
		return t
	}
	for range c.Layers {
		b.att = append(b.att, alloc(kernels.F32, capacity, c.Width))
		b.ffn = append(b.ffn, alloc(kernels.F32, capacity, c.Width))
		b.wkv = append(b.wkv, alloc(kernels.F32, capacity*c.Heads*c.HeadSize, c.HeadSize))
	}
	b.minus = alloc(kernels.F32, 1, c.Width)
	b.d = alloc(kernels.F32, capacity, c.Width)
	b.ids = alloc(kernels.I32, 1, capacity)
	if err != nil {
		return nil, fmt.Errorf("batch of %d: %w", capacity, err)
	}
	if err = m.be.Upload(b.minus, half.Bytes(slices.Repeat([]float32{-1}, c.Width))); err != nil {
		return nil, err
	}
	if b.sc, err = m.newScratch(capacity, true); err != nil {
		return nil, fmt.Errorf("batch of %d: %w", capacity, err)
	}
	return b, m.be.Sync()
}

// Len is the number of members.
func (b *Batch) Len() int { return len(b.members) }

// Cap is the most members the batch takes.
func (b *Batch) Cap() int { return b.cap }

// Members returns the members in slot order: tokens[i] of Step is for
// Members()[i].
func (b *Batch) Members() []*Member { return b.members }

// slotWKV is slot i's WKV state in layer l.
func (b *Batch) slotWKV(l, i int) kernels.Tensor {
	n := b.m.cfg.Heads * b.m.cfg.HeadSize
	return b.wkv[l].Slice(i*n, (i+1)*n)
}

// Join adds st (a state of the batch's model) as the last member: its
// values are copied into the batch, where steps advance them.
func (b *Batch) Join(st *State) (*Member, error) {
	switch {
	case b.closed:
		return nil, ErrClosed
	case st == nil || st.m != b.m || !st.buf.Valid():
		return nil, fmt.Errorf("batch: join: %w", ErrClosed)
	case len(b.members) == b.cap:
		return nil, fmt.Errorf("batch: join: all %d slots taken", b.cap)
	}
	for _, mb := range b.members {
		if mb.st == st {
			return nil, errors.New("batch: join: state already in the batch")
		}
	}
	mb := &Member{b: b, slot: len(b.members), st: st}
	var dst, src []kernels.Tensor
	for l := range b.att {
		dst = append(dst, b.att[l].Row(mb.slot), b.ffn[l].Row(mb.slot), b.slotWKV(l, mb.slot))
		src = append(src, st.att(l), st.ffn(l), st.wkv(l))
	}
	kernels.CopyList(b.m.be, dst, src)
	// No wait for the copies: the backend runs its work in order, so the
	// next step sees them, and a failure shows at its Sync or Download.
	// (A wait here would hold a Batcher's members back while the device
	// finishes other sessions' prefills.)
	b.members = append(b.members, mb)
	return mb, nil
}

// Save copies the member's current values into its State (which the batch
// otherwise leaves as it was at Join).
func (mb *Member) Save() error {
	b := mb.b
	if b.closed || mb.slot < 0 {
		return ErrClosed
	}
	dst, src := mb.saveList()
	kernels.CopyList(b.m.be, dst, src)
	return b.m.be.Sync()
}

// saveList returns the copies of Save: destinations and sources.
func (mb *Member) saveList() (dst, src []kernels.Tensor) {
	b := mb.b
	for l := range b.att {
		dst = append(dst, mb.st.att(l), mb.st.ffn(l), mb.st.wkv(l))
		src = append(src, b.att[l].Row(mb.slot), b.ffn[l].Row(mb.slot), b.slotWKV(l, mb.slot))
	}
	return dst, src
}

// Leave saves the member's values into its State and removes it; the last
// member takes its slot. Like Join it issues copies without waiting for
// them: work issued after it (a step, a Download of the State) sees them.
func (mb *Member) Leave() error {
	b := mb.b
	if b.closed || mb.slot < 0 {
		return ErrClosed
	}
	dst, src := mb.saveList()
	last := len(b.members) - 1
	if mb.slot != last { // then the last member moves into the slot
		for l := range b.att {
			dst = append(dst, b.att[l].Row(mb.slot), b.ffn[l].Row(mb.slot), b.slotWKV(l, mb.slot))
			src = append(src, b.att[l].Row(last), b.ffn[l].Row(last), b.slotWKV(l, last))
		}
	}
	kernels.CopyList(b.m.be, dst, src)
	if mb.slot != last {
		b.members[mb.slot] = b.members[last]
		b.members[mb.slot].slot = mb.slot
	}
	b.members = b.members[:last]
	mb.slot = -1
	return nil
}

// Step feeds tokens[i] to member i (in Members order) and advances every
// member by one token. If logits is not nil it receives Len() rows of
// vocabulary logits, row i for member i; if ids is not nil it receives
// each row's greedy token (sample.Greedy's choice), picked on the device,
// so that the logits need not come back at all (ids need a backend with
// kernels.Greedy; elsewhere pass logits and pick on the host). Like
// Forward, a weights file that changes or faults during the step fails it
// with an error naming the file.
func (b *Batch) Step(ctx context.Context, tokens []int32, logits []float32, ids []int32) (err error) {
	n, V := len(b.members), b.m.cfg.Vocab
	switch {
	case logits != nil && len(logits) != n*V:
		return fmt.Errorf("batch: step: logits buffer has %d entries, want %d members × %d", len(logits), n, V)
	case ids != nil && len(ids) != n:
		return fmt.Errorf("batch: step: %d ids for %d members", len(ids), n)
	}
	_, onDevice := b.m.be.(kernels.Greedy)
	if ids != nil && !onDevice {
		return errors.New("batch: step: greedy ids need logits on a backend without kernels.Greedy")
	}
	defer memfault.CatchFile(b.m.path, &err)()
	if done, err := b.launch(ctx, tokens, ids != nil); done || err != nil {
		return err
	}
	be, sc := b.m.be, b.sc
	if logits != nil {
		if err := be.Download(half.Bytes(logits), sc.logits.Slice(0, n)); err != nil {
			return err
		}
	}
	if ids != nil {
		if err := be.Download(half.Bytes(ids), idCols(b.ids, 0, n)); err != nil {
			return err
		}
	}
	return be.Sync()
}

// StepDraw is Step with each member's next token drawn where the logits
// are (kernels.Drawer), member i's under plans[i] (from its sampler's
// Plan; Record the drawn token, or SampleU a flagged row): picks[2i] and
// picks[2i+1] receive its token and the doubt flag, and only a flagged
// member's row of logits comes back, into logits[i·Vocab:(i+1)·Vocab]
// (logits holds Len() rows; the others are left as they were). The draw's
// scratch grows with the most members a step has drawn for (about 0.5 MB a
// member at a vocabulary of 65,536); when it cannot, every member is
// flagged and all rows come back.
func (b *Batch) StepDraw(ctx context.Context, tokens []int32, plans []sample.Plan, picks []int32, logits []float32) (err error) {
	m := b.m
	n, V := len(b.members), m.cfg.Vocab
	d, ok := m.be.(kernels.Drawer)
	switch {
	case !ok:
		return errors.New("batch: step: drawing tokens needs a backend with kernels.Drawer")
	case len(plans) != n || len(picks) != 2*n || len(logits) != n*V:
		return fmt.Errorf("batch: step: %d plans, %d picks, %d logits for %d members (want n, 2n, n × %d)", len(plans), len(picks), len(logits), n, V)
	}
	specs := make([]kernels.DrawSpec, n)
	for i, p := range plans {
		specs[i] = drawSpec(p)
	}
	words, err := kernels.EncodeDraws(specs)
	if err != nil {
		return fmt.Errorf("batch: step: %w", err)
	}
	if b.growDraw(len(words)/4, kernels.DrawWork(n, V), 2*n) != nil {
		// No room for the draw's scratch: every row goes to the host.
		for i := range n {
			picks[2*i], picks[2*i+1] = -1, 1
		}
		return b.Step(ctx, tokens, logits, nil)
	}
	defer memfault.CatchFile(m.path, &err)()
	if done, err := b.launch(ctx, tokens, false); done || err != nil {
		return err
	}
	be, sc := m.be, b.sc
	if err := be.Upload(idCols(b.spec, 0, len(words)/4), words); err != nil {
		return err
	}
	out := idCols(b.picks, 0, 2*n)
	d.Draw(out, sc.logits.Slice(0, n), b.spec, b.work)
	if err := be.Download(half.Bytes(picks), out); err != nil {
		return err
	}
	for i := range n {
		if picks[2*i+1] != 0 {
			if err := be.Download(half.Bytes(logits[i*V:(i+1)*V]), sc.logits.Slice(i, i+1)); err != nil {
				return err
			}
		}
	}
	return be.Sync()
}

// growDraw makes the draw's tensors hold at least spec words, work
// elements and picks entries, replacing smaller ones (they are used
// outside the recorded steps, so their addresses may change).
func (b *Batch) growDraw(spec, work, picks int) error {
	be := b.m.be
	for _, g := range []struct {
		t  *kernels.Tensor
		dt kernels.DType
		n  int
	}{{&b.spec, kernels.I32, spec}, {&b.work, kernels.F32, work}, {&b.picks, kernels.I32, picks}} {
		if g.t.Valid() && g.t.Len() >= g.n {
			continue
		}
		if g.t.Valid() {
			be.Free(*g.t)
			*g.t = kernels.Tensor{}
		}
		t, err := be.Alloc(g.dt, 1, g.n)
		if err != nil {
			return err
		}
		*g.t = t
	}
	return nil
}

// launch checks a step's tokens, uploads them and issues the step (its
// recorded graph where the backend records); done reports a step of no
// members, which has nothing to issue.
func (b *Batch) launch(ctx context.Context, tokens []int32, pick bool) (done bool, err error) {
	m := b.m
	n, V := len(b.members), m.cfg.Vocab
	switch {
	case b.closed:
		return true, ErrClosed
	case len(tokens) != n:
		return true, fmt.Errorf("batch: step: %d tokens for %d members", len(tokens), n)
	case n == 0:
		return true, nil
	}
	for i, id := range tokens {
		if id < 0 || int(id) >= V {
			return true, fmt.Errorf("batch: step: token %d of member %d is outside the vocabulary [0,%d)", id, i, V)
		}
	}
	if err := ctx.Err(); err != nil {
		return true, err
	}
	if err := m.checkSource(); err != nil {
		return true, err
	}
	be, sc := m.be, b.sc
	if err := be.Upload(idCols(sc.ids, 0, n), half.Bytes(tokens)); err != nil {
		return true, err
	}
	gr, ok := be.(kernels.Grapher)
	if !ok {
		b.run(be, n, pick)
		return false, nil
	}
	// One recorded step per member count: the batch's tensors keep their
	// addresses, only their contents change.
	key := [2]int{n, boolToInt(pick)}
	g := b.graphs[key]
	if g == nil {
		if g, err = gr.Capture(func(rec kernels.Backend) { b.run(rec, n, pick) }); err != nil {
			return true, fmt.Errorf("batch: capture step of %d: %w", n, err)
		}
		if b.graphs == nil {
			b.graphs = map[[2]int]kernels.Graph{}
		}
		b.graphs[key] = g
	}
	return false, g.Launch()
}

// run issues one step of the first n slots on be (the backend or a
// capture's recorder): their tokens are in the scratch's ids; the logits
// go to its first n rows, and with pick the greedy tokens to b.ids.
func (b *Batch) run(be kernels.Backend, n int, pick bool) {
	m, sc := b.m, b.sc
	a := sc.acts.Rows(n)
	a.Round = b.round
	m.embed(be, sc, a, n)
	mx := batchMixer{b: b, n: n}
	for l := range m.layers {
		block.Forward(be, &m.layers[l], l, a, mx)
	}
	m.logitsOut(be, sc, a, n, n)
	if pick {
		be.(kernels.Greedy).Argmax(idCols(b.ids, 0, n), sc.logits.Slice(0, n))
	}
}

func boolToInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// Close frees the batch's memory; members' States keep the values they
// had at Join or their last Save.
func (b *Batch) Close() {
	if b.closed {
		return
	}
	b.closed = true
	for _, g := range b.graphs {
		g.Free()
	}
	b.graphs = nil
	if b.sc != nil {
		b.sc.release(b.m.be)
	}
	for _, t := range append(b.owned, b.spec, b.work, b.picks) {
		if t.Valid() {
			b.m.be.Free(t)
		}
	}
	b.owned = nil
	for _, mb := range b.members {
		mb.slot = -1
	}
	b.members = nil
}

// batchMixer is the language model's token shift and WKV for a batch: row
// i of every activation is member i's one token, its shift rows and WKV
// state in slot i.
type batchMixer struct {
	b *Batch
	n int
}

// NormShift: norm = LayerNorm(x); with s the slots' shift rows,
// d = s − norm (a Lerp of s by norm with weight −1), dst[i] = norm + d ⊙
// mix[i], then s = norm, the previous token of the next step.
func (m batchMixer) NormShift(f block.Ops, l int, ffn bool, norm kernels.Tensor, dst []kernels.Tensor, x, w, b kernels.Tensor, mix []kernels.Tensor) {
	s := m.b.att[l]
	if ffn {
		s = m.b.ffn[l]
	}
	s = s.Slice(0, m.n)
	if rs, ok := f.(kernels.RowShift); ok {
		rs.NormShiftRows(norm, dst, x, w, b, block.LNEps, s, mix)
		return
	}
	d := m.b.d.Slice(0, m.n)
	f.LayerNorm(norm, x, w, b, block.LNEps)
	f.Lerp([]kernels.Tensor{d}, s, norm, []kernels.Tensor{m.b.minus})
	f.Lerp(dst, norm, d, mix)
	f.Copy(s, norm)
}

// WKV runs the n slots' WKV states side by side, one row each (WKV7 with
// n states), then Out7.
func (m batchMixer) WKV(f block.Ops, l int, w, a, b kernels.Tensor, o kernels.Out7) {
	c := m.b.m.cfg
	f.WKV7(o.Y, m.b.wkv[l].Slice(0, m.n*c.Heads*c.HeadSize), o.R, w, o.K, o.V, a, b)
	f.Out7(o)
}
