package core

import (
	"context"
	"fmt"
	"math"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// maxDrawShifts is the most penalized and banned tokens a draw on the
// device takes (the spec tensor's room); a longer occurrence table
// samples on the host.
const maxDrawShifts = 8192

// ForwardSample runs one token like Forward and returns the next token
// drawn by smp from the step's logits, recorded in smp's occurrence
// table: the token smp.Sample would return, leaving smp as Sample would.
// On a backend that draws where the logits are (kernels.Drawer) and
// replays a captured step (kernels.StepGrapher), the step's graph ends in
// Draw under smp's Plan and only the token and a check come back, not
// the 65,536 logits; logits (which must hold Vocab entries) are then left
// as they were. Otherwise, or when the check leaves the choice to the
// host, logits receive the step's row and smp samples it with the plan's
// uniform number. It returns −1 when no token can be drawn (every one
// banned, or the logits are not finite); logits then hold the row.
func (m *Model) ForwardSample(ctx context.Context, st *State, token int32, logits []float32, smp *sample.Sampler) (next int32, err error) {
	if len(logits) != m.cfg.Vocab {
		return -1, fmt.Errorf("forward: logits buffer has %d entries, vocabulary is %d", len(logits), m.cfg.Vocab)
	}
	plan := smp.Plan()
	host := func() (int32, error) {
		if err := m.Forward(ctx, st, []int32{token}, logits); err != nil {
			return -1, err
		}
		return smp.SampleU(logits, plan.U), nil
	}
	_, draws := m.be.(kernels.Drawer)
	_, isIO := m.be.(kernels.StepGrapher)
	if !draws || !isIO || !m.graphsSupported || len(plan.Shifts) > maxDrawShifts {
		return host()
	}
	words, err := kernels.EncodeDraws([]kernels.DrawSpec{drawSpec(plan)})
	if err != nil {
		return host() // settings the device cannot take: the host samples them
	}
	id, err := m.pickStep(ctx, st, token, logits, pickStep{
		name:  "sampled",
		graph: func(sc *scratch) *stateGraph { return &sc.draw },
		setup: func(sc *scratch) error {
			if err := m.drawScratch(sc); err != nil {
				return err
			}
			// The spec goes ahead of the step on the same queue.
			return m.be.Upload(idCols(sc.spec, 0, len(words)/4), words)
		},
		pick: func(rec kernels.Backend, sc *scratch) {
			rec.(kernels.Drawer).Draw(sc.pick, sc.logits.Slice(0, 1), sc.spec, sc.work)
		},
	})
	switch {
	case err != nil:
		return -1, err
	case id >= 0:
		smp.Record(id)
		return id, nil
	}
	// The logits came back: the host decides.
	return smp.SampleU(logits, plan.U), nil
}

// drawSpec is plan as a kernels.Drawer takes it.
func drawSpec(plan sample.Plan) kernels.DrawSpec {
	// A top-k beyond any vocabulary is off either way.
	spec := kernels.DrawSpec{U: plan.U, InvTemp: plan.InvTemp, TopP: plan.TopP, TopK: min(plan.TopK, math.MaxInt32),
		Shifts: make([]kernels.LogitShift, len(plan.Shifts))}
	for i, s := range plan.Shifts {
		spec.Shifts[i] = kernels.LogitShift{ID: s.ID, Sub: s.Sub}
	}
	return spec
}

// drawScratch allocates the tensors of a sampled step in sc once: the
// token and flag, the spec and the draw's work row.
func (m *Model) drawScratch(sc *scratch) error {
	if err := sc.pickScratch(m.be); err != nil {
		return err
	}
	if err := sc.alloc(m.be, &sc.spec, kernels.I32, kernels.DrawWords(1, maxDrawShifts)); err != nil {
		return err
	}
	return sc.alloc(m.be, &sc.work, kernels.F32, kernels.DrawWork(1, m.cfg.Vocab))
}

// pickScratch allocates the token-and-flag output of the greedy and
// sampled steps once.
func (sc *scratch) pickScratch(be kernels.Backend) error {
	if sc.pickBuf == nil {
		sc.pickBuf = make([]int32, 2)
	}
	return sc.alloc(be, &sc.pick, kernels.I32, 2)
}

// alloc sets *t to a new [1, n] tensor of dtype dt owned by sc, unless it
// already holds one.
func (sc *scratch) alloc(be kernels.Backend, t *kernels.Tensor, dt kernels.DType, n int) error {
	if t.Valid() {
		return nil
	}
	var err error
	if *t, err = be.Alloc(dt, 1, n); err == nil {
		sc.owned = append(sc.owned, *t)
	}
	return err
}
