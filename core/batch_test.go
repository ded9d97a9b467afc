package core

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/kernels"
)

// TestBatchMatchesAlone decodes several sessions in one Batch, with
// members leaving and joining between steps, and requires each session's
// logits and greedy tokens at every step, and its state after leaving, to
// be those of the same session decoded alone (within 1e-4·std: the batch's
// products sum in another order), on the CPU and, when there is one, the GPU.
func TestBatchMatchesAlone(t *testing.T) {
	for _, bk := range testBackends() {
		for _, dt := range []kernels.DType{kernels.F32, kernels.BF16} {
			t.Run(fmt.Sprintf("%s/%v", bk.name, dt), func(t *testing.T) {
				testBatch(t, fusedTestModel(t, bk.open(t), dt))
			})
		}
	}
}

func testBatch(t *testing.T, m *Model) {
	const sessions, steps = 7, 12
	V := m.Config().Vocab
	ctx := context.Background()
	prompts := make([][]int32, sessions)
	for i := range prompts {
		for j := range 2 + 3*i {
			prompts[i] = append(prompts[i], int32((i*53+j*17+1)%V))
		}
	}
	// Session i is in the batch for steps [from[i], to[i]).
	from := []int{0, 0, 0, 0, 3, 5, 5}
	to := []int{steps, 4, steps, 7, steps, 9, steps}

	// Alone: the logits and greedy tokens after each step's token; the
	// token fed at step s is the previous step's greedy choice.
	type run struct {
		logits [][]float32
		tokens []int32
		state  []float32
	}
	alone := make([]run, sessions)
	for i, p := range prompts {
		st, _ := m.NewState()
		logits := make([]float32, V)
		if err := m.Forward(ctx, st, p, logits); err != nil {
			t.Fatal(err)
		}
		tok := sample.Greedy(logits)
		for s := from[i]; s < to[i]; s++ {
			if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
				t.Fatal(err)
			}
			alone[i].logits = append(alone[i].logits, append([]float32(nil), logits...))
			tok = sample.Greedy(logits)
			alone[i].tokens = append(alone[i].tokens, tok)
		}
		alone[i].state, _ = st.Floats()
		st.Free()
	}

	b, err := m.NewBatch(6, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	states := make([]*State, sessions)
	next := make([]int32, sessions) // the token each session feeds next
	member := make([]*Member, sessions)
	for i, p := range prompts {
		states[i], _ = m.NewState()
		defer states[i].Free()
		logits := make([]float32, V)
		if err := m.Forward(ctx, states[i], p, logits); err != nil {
			t.Fatal(err)
		}
		next[i] = sample.Greedy(logits)
	}
	for s := range steps {
		for i := range sessions {
			if to[i] == s && member[i] != nil {
				if err := member[i].Leave(); err != nil {
					t.Fatal(err)
				}
				member[i] = nil
			}
			if from[i] == s {
				if member[i], err = b.Join(states[i]); err != nil {
					t.Fatal(err)
				}
			}
		}
		ms := b.Members()
		tokens := make([]int32, len(ms))
		who := make([]int, len(ms))
		for slot, mb := range ms {
			for i := range sessions {
				if member[i] == mb {
					who[slot], tokens[slot] = i, next[i]
				}
			}
		}
		logits := make([]float32, len(ms)*V)
		ids := make([]int32, len(ms))
		if err := b.Step(ctx, tokens, logits, ids); err != nil {
			t.Fatal(err)
		}
		for slot, i := range who {
			k := s - from[i]
			want := alone[i].logits[k]
			got := logits[slot*V : (slot+1)*V]
			sd := std(want)
			for j := range want {
				if d := math.Abs(float64(got[j] - want[j])); !(d <= 1e-4*sd) {
					t.Fatalf("step %d, session %d (slot %d of %d): logit %d = %g, alone %g", s, i, slot, len(ms), j, got[j], want[j])
				}
			}
			if ids[slot] != alone[i].tokens[k] || ids[slot] != sample.Greedy(got) {
				t.Fatalf("step %d, session %d: greedy token %d (of its logits %d), alone %d", s, i, ids[slot], sample.Greedy(got), alone[i].tokens[k])
			}
			next[i] = ids[slot]
		}
	}
	for i := range sessions {
		if member[i] != nil {
			if err := member[i].Leave(); err != nil {
				t.Fatal(err)
			}
		}
		got, _ := states[i].Floats()
		want := alone[i].state
		sd := std(want)
		for j := range want {
			if d := math.Abs(float64(got[j] - want[j])); !(d <= 1e-4*sd) {
				t.Fatalf("session %d state after leaving: element %d = %g, alone %g", i, j, got[j], want[j])
			}
		}
	}
	if b.Len() != 0 {
		t.Fatalf("%d members left in the batch", b.Len())
	}
}

// TestBatcherMatchesAlone generates replies for several sessions at once
// through one Batcher (continuous batching: they enter and leave at
// different times, and one client is slow, so that steps run without it and
// it is parked and rejoins) and requires each reply and final state to be
// what the session gives alone.
// On a backend that draws tokens itself (drawingCPU, and CUDA's Draw when
// there is a GPU) the batched steps draw them there (Batch.StepDraw), with the host
// deciding the flagged rows, and the replies must still be those of each
// session alone.
func TestBatcherMatchesAlone(t *testing.T) {
	t.Run("cpu", func(t *testing.T) { testBatcher(t, randomModel(t)) })
	t.Run("cuda", func(t *testing.T) { testBatcher(t, randomModelOn(t, cudaBackend(t))) })
	t.Run("drawing", func(t *testing.T) {
		d := &drawingCPU{Backend: newCPU(t)}
		testBatcher(t, randomModelOn(t, d))
		t.Logf("%d rows drawn by the backend, %d flagged for the host", d.rows.Load(), d.flagged.Load())
		if d.rows.Load() == 0 || d.flagged.Load() == 0 || d.flagged.Load() == d.rows.Load() {
			t.Errorf("%d rows drawn by the backend, %d flagged: want both paths taken", d.rows.Load(), d.flagged.Load())
		}
	})
	// Without room for the draw's scratch beyond two members, larger steps
	// bring every row back and sample on the host.
	t.Run("drawing-short-of-memory", func(t *testing.T) {
		d := &drawingCPU{Backend: newCPU(t), maxAlloc: kernels.DrawWork(2, 65536)}
		testBatcher(t, randomModelOn(t, d))
		t.Logf("%d rows drawn by the backend", d.rows.Load())
	})
}

func testBatcher(t *testing.T, m *Model) {
	prompts := []string{"User: hi\n\nAssistant:", "The quick brown fox", "1, 2, 3,", "Goose", "Once upon a time", "Q: why?\nA:"}
	opts := func(i int) GenerateOptions {
		return GenerateOptions{MaxTokens: 6 + 5*i, Sample: sample.Params{Temperature: 1, TopP: 0.5, PresencePenalty: 0.3, FrequencyPenalty: 0.3, PenaltyDecay: 0.99, Seed: uint64(i)}}
	}
	want := make([]string, len(prompts))
	wantState := make([][]float32, len(prompts))
	for i, p := range prompts {
		s := newSession(t, m)
		want[i], _ = generate(t, s, context.Background(), p, opts(i))
		wantState[i], _ = s.st.Floats()
	}
	bt, err := m.NewBatcher(4, 0, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer bt.Close()
	got := make([]string, len(prompts))
	gotState := make([][]float32, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		s := newSession(t, m)
		s.SetBatcher(bt)
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 3 * time.Millisecond)
			var b strings.Builder
			_, errs[i] = s.Generate(context.Background(), p, opts(i), func(pc Piece) bool {
				b.WriteString(pc.Text)
				if i == 2 {
					time.Sleep(8 * time.Millisecond) // a slow client
				}
				return true
			})
			got[i] = b.String()
			gotState[i], _ = s.st.Floats()
		})
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil {
			t.Fatalf("session %d: %v", i, errs[i])
		}
		if got[i] != want[i] {
			t.Errorf("session %d through the batcher: %q, alone %q", i, got[i], want[i])
		}
		sd := std(wantState[i])
		for j := range wantState[i] {
			if d := math.Abs(float64(gotState[i][j] - wantState[i][j])); !(d <= 1e-4*sd) {
				t.Fatalf("session %d final state element %d: %g, alone %g", i, j, gotState[i][j], wantState[i][j])
			}
		}
	}
}

// TestBatchRoundProducts steps 20 sessions (more than the 16 rows the GPU's
// one-token kernels take, so the products go to GEMMs) with exact and with
// rounded products and compares each row's logits with the session run
// alone: exact within 1e-4 of the logits' spread, as TestBatchMatchesAlone;
// rounded within 5e-2 (bf16 inputs: ~2⁻⁹ a term; 0.019 measured on an
// H200), and on CUDA not equal to the exact step's (the option reaches the
// GEMMs), on the CPU equal (its products always take fp32 activations).
func TestBatchRoundProducts(t *testing.T) {
	for _, bk := range testBackends() {
		name := bk.name
		t.Run(name, func(t *testing.T) {
			m := fusedTestModel(t, bk.open(t), kernels.BF16)
			const n, steps = 20, 3
			V := m.Config().Vocab
			ctx := context.Background()
			prompt := func(i int) []int32 { return []int32{int32(1 + i%V), int32(7 + 3*i%V)} }
			token := func(i, s int) int32 { return int32((i*31 + s*7 + 2) % V) }
			// alone[s][i]: session i's logits after step s, run alone.
			alone := make([][][]float32, steps)
			for s := range alone {
				alone[s] = make([][]float32, n)
			}
			for i := range n {
				st, _ := m.NewState()
				logits := make([]float32, V)
				if err := m.Forward(ctx, st, prompt(i), logits); err != nil {
					t.Fatal(err)
				}
				for s := range steps {
					if err := m.Forward(ctx, st, []int32{token(i, s)}, logits); err != nil {
						t.Fatal(err)
					}
					alone[s][i] = append([]float32(nil), logits...)
				}
				st.Free()
			}
			batched := func(opts BatchOptions) (logits [][]float32, worst float64) {
				b, err := m.NewBatch(n, opts)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				for i := range n {
					st, _ := m.NewState()
					defer st.Free()
					if err := m.Forward(ctx, st, prompt(i), make([]float32, V)); err != nil {
						t.Fatal(err)
					}
					if _, err := b.Join(st); err != nil {
						t.Fatal(err)
					}
				}
				out := make([]float32, n*V)
				tokens := make([]int32, n)
				for s := range steps {
					for i := range tokens {
						tokens[i] = token(i, s)
					}
					if err := b.Step(ctx, tokens, out, nil); err != nil {
						t.Fatal(err)
					}
					for i := range n {
						want, got := alone[s][i], out[i*V:(i+1)*V]
						sd := std(want)
						for j := range want {
							worst = max(worst, math.Abs(float64(got[j]-want[j]))/sd)
						}
					}
				}
				return [][]float32{out}, worst
			}
			exact, exactErr := batched(BatchOptions{})
			rounded, roundErr := batched(BatchOptions{RoundProducts: true})
			t.Logf("largest logit error over the spread: exact %.2g, rounded %.2g", exactErr, roundErr)
			if !(exactErr <= 1e-4) {
				t.Errorf("exact products: logits off by %.3g of their spread from running alone", exactErr)
			}
			if !(roundErr <= 5e-2) {
				t.Errorf("rounded products: logits off by %.3g of their spread from running alone", roundErr)
			}
			same := slices.Equal(exact[0], rounded[0])
			if name == "cuda" && same {
				t.Error("rounded products gave the exact step's logits: the option did not reach the GEMMs")
			}
			if name == "cpu" && !same {
				t.Error("rounded products changed the CPU's logits (its products always take fp32 activations)")
			}
		})
	}
}
