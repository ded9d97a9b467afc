package core

import (
	"context"
	"slices"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// TestForwardGreedy steps two states with the same tokens: one through
// Forward and sample.Greedy on the host, one through ForwardGreedy. Every
// token ForwardGreedy picks must be the host's, every step it hands back
// must fill the same logits, and the states must end equal. One step's
// accept refuses the host's pick, so the hand-back path runs too. On the
// CPU (no captured steps) every step is handed back; on a GPU most steps
// must be picked on the device.
func TestForwardGreedy(t *testing.T) {
	for _, bk := range testBackends() {
		t.Run(bk.name, func(t *testing.T) {
			m := fusedTestModel(t, bk.open(t), kernels.BF16)
			ctx := context.Background()
			ref, st := twinStates(t, m)
			V := m.Config().Vocab
			want, got := make([]float32, V), make([]float32, V)
			tok, onDevice, handedBack := int32(1), 0, 0
			const steps, refuseAt = 24, 5
			for i := range steps {
				if err := m.Forward(ctx, ref, []int32{tok}, want); err != nil {
					t.Fatal(err)
				}
				next := sample.Greedy(want)
				accept := func(id int32) bool { return i != refuseAt || id != next }
				clear(got)
				id, err := m.ForwardGreedy(ctx, st, tok, got, accept)
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case id >= 0 && i == refuseAt:
					t.Fatalf("step %d: picked %d although accept refused it", i, id)
				case id >= 0 && id != next:
					t.Fatalf("step %d: picked %d on the device, the host's greedy token is %d", i, id, next)
				case id >= 0:
					onDevice++
				case !slices.Equal(got, want):
					d, at := maxDiff(got, want)
					t.Fatalf("step %d: handed back logits that differ from Forward's by %.3g at %d", i, d, at)
				default:
					handedBack++
				}
				tok = next
			}
			a, err := ref.Floats()
			if err != nil {
				t.Fatal(err)
			}
			b, err := st.Floats()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a, b) {
				d, at := maxDiff(a, b)
				t.Errorf("states differ after %d steps: max |Δ| %.3g at %d", steps, d, at)
			}
			_, io := m.Backend().(kernels.StepGrapher)
			t.Logf("%d of %d tokens picked on the device, %d handed back", onDevice, steps, handedBack)
			if io && onDevice < steps/2 {
				t.Errorf("only %d of %d tokens picked on the device", onDevice, steps)
			}
			if !io && onDevice > 0 {
				t.Errorf("%d tokens picked on a backend without captured steps", onDevice)
			}
		})
	}
}

// TestGenerateGreedyOnDevice generates at temperature 0 on the GPU, where
// the session lets the device pick the tokens, and requires the reply a
// host loop of Forward and sample.Greedy (with the session's bans) gives.
func TestGenerateGreedyOnDevice(t *testing.T) {
	m := fusedTestModel(t, cudaBackend(t), kernels.BF16)
	s := newSession(t, m)
	ctx := context.Background()
	prompt := []int32{1, 17, 299, 42}
	opts := GenerateOptions{MaxTokens: 32, Sample: sample.Params{Temperature: 0}}
	_, fed, err := s.GenerateTokens(ctx, prompt, opts, func(Piece) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Free()
	logits := make([]float32, m.Config().Vocab)
	if err := m.Forward(ctx, st, prompt, logits); err != nil {
		t.Fatal(err)
	}
	smp := sample.New(opts.Sample, m.Config().Vocab)
	smp.Ban(s.noText...)
	var want []int32
	for len(want) < len(fed) {
		tok := smp.Sample(logits)
		if tok <= 0 {
			break
		}
		want = append(want, tok)
		if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(fed, want) {
		t.Errorf("reply on the device %v, host loop %v", fed, want)
	}
}

// twinStates returns two fresh states of m, freed when the test ends: one
// to run the reference way, one the way under test.
func twinStates(t *testing.T, m *Model) (ref, st *State) {
	t.Helper()
	ref, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ref.Free)
	if st, err = ref.Clone(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Free)
	return ref, st
}
