package core

import (
	"context"
	"fmt"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
)

// GreedyMargin is how close (in logits) another token may come to the
// largest before ForwardGreedy leaves the choice to the host: the
// sampler ranks tokens by float32 probabilities, in which logits that
// close can round to a tie.
const GreedyMargin = 1e-3

// ForwardGreedy runs one token like Forward and returns the greedy next
// token (sample.Greedy's choice, and the sampler's at temperature 0 without
// penalties) when the device can tell it: on a backend that picks tokens
// itself (kernels.Greedy) and replays a captured step (kernels.StepGrapher),
// the step's graph ends in ArgmaxChecked and only the token and a check
// come back, not the 65,536 logits. Otherwise, or when the check says the
// logits need the host — a NaN or infinity, another token within
// GreedyMargin of the largest logit, or a token accept refuses (a banned
// one) — it fills logits (which must hold Vocab entries) and returns −1;
// the caller then samples from them. After a token is returned, logits
// are left as they were.
func (m *Model) ForwardGreedy(ctx context.Context, st *State, token int32, logits []float32, accept func(int32) bool) (next int32, err error) {
	if len(logits) != m.cfg.Vocab {
		return -1, fmt.Errorf("forward: logits buffer has %d entries, vocabulary is %d", len(logits), m.cfg.Vocab)
	}
	_, greedy := m.be.(kernels.Greedy)
	io, isIO := m.be.(kernels.StepGrapher)
	if !greedy || !isIO || !m.graphsSupported {
		return -1, m.Forward(ctx, st, []int32{token}, logits)
	}
	if err := m.enter(st, []int32{token}); err != nil {
		return -1, err
	}
	defer memfault.CatchFile(m.path, &err)()
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	sc, err := m.getScratch(1, false)
	if err != nil {
		return -1, err
	}
	defer m.putScratch(sc)
	if err := sc.pickScratch(m.be); err != nil {
		return -1, fmt.Errorf("forward: %w", err)
	}
	graph, err := sc.greedy.forState(st, func() (kernels.Graph, error) {
		run := func(rec kernels.Backend) {
			m.run(rec, sc, st, 1, 1)
			rec.(kernels.Greedy).ArgmaxChecked(sc.pick, sc.logits.Slice(0, 1), GreedyMargin)
		}
		return io.CaptureIO(run, sc.ids, sc.pick)
	})
	if err != nil {
		return -1, fmt.Errorf("capture greedy decode step: %w", err)
	}
	g, ok := graph.(kernels.StepGraph)
	if !ok {
		return -1, fmt.Errorf("capture greedy decode step: %T is not a kernels.StepGraph", graph)
	}
	sc.idBuf[0] = token
	if err := g.Step(half.Bytes(sc.idBuf), half.Bytes(sc.pickBuf)); err != nil {
		return -1, err
	}
	if id := sc.pickBuf[0]; sc.pickBuf[1] == 0 && id >= 0 && (accept == nil || accept(id)) {
		return id, nil
	}
	// The step's logits are still in the scratch: bring them to the host.
	if err := m.be.Download(half.Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
		return -1, err
	}
	return -1, nil
}
