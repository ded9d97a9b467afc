package core

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// composedOnly hides every optional interface of a backend (Fused,
// Grapher, Prober), so a model on it issues each op on its own.
type composedOnly struct{ kernels.Backend }

// runBoth feeds tokens to a fresh state in sequence mode (all at once) and
// then in RNN mode (one at a time) on a model over be, returning every
// logits row of both and the final states.
func runBoth(t *testing.T, src Source, be kernels.Backend, tokens []int32) (seq, rnn, seqState, rnnState []float32) {
	t.Helper()
	m, err := Load(src, LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	V := m.Config().Vocab
	ctx := context.Background()
	seq = make([]float32, len(tokens)*V)
	rnn = make([]float32, len(tokens)*V)
	for _, mode := range []string{"seq", "rnn"} {
		st, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		if mode == "seq" {
			err = m.ForwardAll(ctx, st, tokens, seq)
		} else {
			for i, tok := range tokens {
				if err = m.Forward(ctx, st, []int32{tok}, rnn[i*V:(i+1)*V]); err != nil {
					break
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		f, err := st.Floats()
		if err != nil {
			t.Fatal(err)
		}
		if mode == "seq" {
			seqState = f
		} else {
			rnnState = f
		}
		st.Free()
	}
	return seq, rnn, seqState, rnnState
}

// fusedTestSource is a small random model with every LoRA present.
func fusedTestSource(t *testing.T, dt kernels.DType) Source {
	t.Helper()
	cfg := Config{Layers: 3, Width: 128, Vocab: 300, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 32, DType: dt}
	src, err := RandomSource(cfg, 5)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// testBackend is a backend the core tests run on.
type testBackend struct {
	name string
	open func(testing.TB) kernels.Backend
}

// testBackends are the CPU and CUDA (whose tests skip without a GPU).
func testBackends() []testBackend {
	return []testBackend{{"cpu", newCPU}, {"cuda", cudaBackend}}
}

// fusedTestModel loads fusedTestSource(dt) on be; the model is closed when
// the test ends.
func fusedTestModel(t *testing.T, be kernels.Backend, dt kernels.DType) *Model {
	t.Helper()
	m, err := Load(fusedTestSource(t, dt), LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// fusedTestTokens spans both a multi-token chunk and single steps.
var fusedTestTokens = []int32{1, 17, 299, 42, 42, 7, 150, 3, 88, 201, 0, 64, 9, 250, 31, 5, 120, 77, 12, 260}

// TestFusedMatchesComposed runs the CPU backend through the fused ops
// (which it implements by composition) and through the plain ops, and
// requires identical logits and states, so both paths of Model.run stay
// correct.
func TestFusedMatchesComposed(t *testing.T) {
	cpu := newCPU(t)
	if _, ok := cpu.(kernels.Fused); !ok {
		t.Fatal("the CPU backend does not implement kernels.Fused")
	}
	for _, dt := range []kernels.DType{kernels.F32, kernels.BF16} {
		t.Run(dt.String(), func(t *testing.T) {
			src := fusedTestSource(t, dt)
			fs, fr, fss, frs := runBoth(t, src, cpu, fusedTestTokens)
			cs, cr, css, crs := runBoth(t, src, composedOnly{cpu}, fusedTestTokens)
			for _, c := range []struct {
				name      string
				got, want []float32
			}{{"seq logits", fs, cs}, {"rnn logits", fr, cr}, {"seq state", fss, css}, {"rnn state", frs, crs}} {
				if !slices.Equal(c.got, c.want) {
					d, at := maxDiff(c.got, c.want)
					t.Errorf("%s: fused and composed differ, max |Δ| %.3g at %d", c.name, d, at)
				}
			}
			// The two modes agree (to rounding): the test compares real work.
			if d, _ := maxDiff(fs, fr); d > 1e-3*std(cs) || math.IsNaN(d) {
				t.Errorf("seq and rnn logits differ by %.3g", d)
			}
		})
	}
}

// TestCUDAFusedMatchesComposed compares the GPU's fused ops (one-token
// kernels in RNN mode) with its plain ops and with the CPU.
func TestCUDAFusedMatchesComposed(t *testing.T) {
	gpu := cudaBackend(t)
	for _, dt := range []kernels.DType{kernels.F32, kernels.BF16} {
		t.Run(dt.String(), func(t *testing.T) {
			src := fusedTestSource(t, dt)
			fs, fr, _, frs := runBoth(t, src, gpu, fusedTestTokens)
			cs, cr, _, crs := runBoth(t, src, composedOnly{gpu}, fusedTestTokens)
			ps, pr, _, prs := runBoth(t, src, newCPU(t), fusedTestTokens)
			tol := 1e-4 * std(ps)
			for _, c := range []struct {
				name      string
				got, want []float32
				tol       float64
			}{
				{"fused rnn vs cpu", fr, pr, tol}, {"composed rnn vs cpu", cr, pr, tol},
				{"fused seq vs cpu", fs, ps, tol}, {"composed seq vs cpu", cs, ps, tol},
				{"fused rnn state vs cpu", frs, prs, 1e-4 * max(std(prs), 1e-3)},
				{"composed rnn state vs cpu", crs, prs, 1e-4 * max(std(prs), 1e-3)},
			} {
				d, at := maxDiff(c.got, c.want)
				t.Logf("%s: max |Δ| %.3g (tolerance %.3g)", c.name, d, c.tol)
				if d > c.tol {
					t.Errorf("%s: max |Δ| %.3g at %d > %.3g", c.name, d, at, c.tol)
				}
			}
		})
	}
}
