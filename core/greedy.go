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
	if _, isIO := m.be.(kernels.StepGrapher); !greedy || !isIO || !m.graphsSupported {
		return -1, m.Forward(ctx, st, []int32{token}, logits)
	}
	return m.pickStep(ctx, st, token, logits, pickStep{
		name:  "greedy",
		graph: func(sc *scratch) *stateGraph { return &sc.greedy },
		setup: func(sc *scratch) error { return sc.pickScratch(m.be) },
		pick: func(rec kernels.Backend, sc *scratch) {
			rec.(kernels.Greedy).ArgmaxChecked(sc.pick, sc.logits.Slice(0, 1), GreedyMargin)
		},
		accept: accept,
	})
}

// pickStep is a one-token step whose captured graph ends in an op that
// picks the next token where the logits are (Model.pickStep).
type pickStep struct {
	name  string                          // for errors: "capture <name> decode step"
	graph func(*scratch) *stateGraph      // the scratch's graph for this kind of step
	setup func(*scratch) error            // allocations and uploads ahead of the step
	pick  func(kernels.Backend, *scratch) // writes [token, flag] to the scratch's pick
	// accept may refuse a token picked without a flag (nil: all taken).
	accept func(int32) bool
}

// pickStep runs token through st in the step ps describes (captured on
// first use for st, then replayed with one call and one wait) and returns
// the picked token. When the flag is set or accept refuses the token, it
// copies the step's logits into logits and returns −1.
func (m *Model) pickStep(ctx context.Context, st *State, token int32, logits []float32, ps pickStep) (next int32, err error) {
	io := m.be.(kernels.StepGrapher)
	if err := m.enter(st, []int32{token}); err != nil {
		return -1, err
	}
	defer memfault.CatchFile(m.path, &err)()
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	sc, err := m.getScratch(1, false, st)
	if err != nil {
		return -1, err
	}
	defer m.putScratch(sc)
	if err := ps.setup(sc); err != nil {
		return -1, fmt.Errorf("forward: %w", err)
	}
	graph, err := ps.graph(sc).forState(st, func() (kernels.Graph, error) {
		run := func(rec kernels.Backend) {
			m.run(rec, sc, st, 1, 1)
			ps.pick(rec, sc)
		}
		return io.CaptureIO(run, sc.ids, sc.pick)
	})
	if err != nil {
		return -1, fmt.Errorf("capture %s decode step: %w", ps.name, err)
	}
	g, ok := graph.(kernels.StepGraph)
	if !ok {
		return -1, fmt.Errorf("capture %s decode step: %T is not a kernels.StepGraph", ps.name, graph)
	}
	sc.idBuf[0] = token
	if err := g.Step(half.Bytes(sc.idBuf), half.Bytes(sc.pickBuf)); err != nil {
		return -1, err
	}
	if id := sc.pickBuf[0]; sc.pickBuf[1] == 0 && id >= 0 && (ps.accept == nil || ps.accept(id)) {
		return id, nil
	}
	// The step's logits are still in the scratch: bring them to the host.
	if err := m.be.Download(half.Bytes(logits), sc.logits.Slice(0, 1)); err != nil {
		return -1, err
	}
	return -1, nil
}
