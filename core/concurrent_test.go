package core

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// concurrentRun is what one session of TestConcurrentSessions produces: the
// greedy tokens and the logits after every step.
type concurrentRun struct {
	tokens []int32
	logits [][]float32
}

// decodeAlone prefills prompt on a new state of m and decodes n greedy
// tokens one at a time (on a GPU backend, each step is a captured graph,
// recaptured whenever another state used the scratch in between).
func decodeAlone(m *Model, prompt []int32, n int) (concurrentRun, error) {
	var r concurrentRun
	st, err := m.NewState()
	if err != nil {
		return r, err
	}
	defer st.Free()
	V := m.Config().Vocab
	ctx := context.Background()
	logits := make([]float32, V)
	if err := m.Forward(ctx, st, prompt, logits); err != nil {
		return r, err
	}
	for range n {
		tok := sample.Greedy(logits)
		r.tokens = append(r.tokens, tok)
		if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
			return r, err
		}
		r.logits = append(r.logits, append([]float32(nil), logits...))
	}
	return r, nil
}

// TestConcurrentSessions runs several sessions of one model at once, each in
// its own goroutine (as `serve --parallel` does), and requires each to give
// what it gives when the sessions run one after another. On CUDA every
// session's first step captures a graph while the others prefill and replay
// theirs: a capture that recorded another session's kernels, or let them
// run in between, would change that session's tokens or logits.
func TestConcurrentSessions(t *testing.T) {
	for _, bk := range testBackends() {
		t.Run(bk.name, func(t *testing.T) {
			m := fusedTestModel(t, bk.open(t), kernels.BF16)
			const sessions, steps = 6, 24
			prompts := make([][]int32, sessions)
			for i := range prompts {
				for j := range 3 + 5*i { // prompts of different lengths: different scratch sizes
					prompts[i] = append(prompts[i], int32((i*37+j*11)%m.Config().Vocab))
				}
			}
			want := make([]concurrentRun, sessions)
			for i, p := range prompts {
				var err error
				if want[i], err = decodeAlone(m, p, steps); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 3 {
				got := make([]concurrentRun, sessions)
				errs := make([]error, sessions)
				var wg sync.WaitGroup
				for i, p := range prompts {
					wg.Go(func() { got[i], errs[i] = decodeAlone(m, p, steps) })
				}
				wg.Wait()
				for i := range sessions {
					if errs[i] != nil {
						t.Fatalf("round %d, session %d: %v", round, i, errs[i])
					}
					if err := sameRun(got[i], want[i]); err != nil {
						t.Fatalf("round %d, session %d, run concurrently: %v", round, i, err)
					}
				}
			}
		})
	}
}

// sameRun compares two runs: the same tokens, and logits equal within
// 1e-5·std (on one backend the same kernels run on the same inputs, so
// they are equal unless another session's work got mixed in).
func sameRun(got, want concurrentRun) error {
	for s := range want.tokens {
		if got.tokens[s] != want.tokens[s] {
			return fmt.Errorf("step %d: token %d, alone %d", s, got.tokens[s], want.tokens[s])
		}
		sd := std(want.logits[s])
		for j, w := range want.logits[s] {
			if d := math.Abs(float64(got.logits[s][j] - w)); !(d <= 1e-5*sd) {
				return fmt.Errorf("step %d: logit %d = %g, alone %g", s, j, got.logits[s][j], w)
			}
		}
	}
	return nil
}
