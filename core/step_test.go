package core

import (
	"context"
	"slices"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// plainGraphs is a GPU backend without CaptureIO: a model on it runs a
// decode step as Upload, graph Launch, Download and Sync.
type plainGraphs struct {
	kernels.Backend
	kernels.Grapher
	kernels.Fused
}

// TestCUDAStepIO decodes the same tokens through CaptureIO graphs (the id
// upload and logits download inside the graph) and through plain graphs,
// with two states interleaved (each switch recaptures the step's graph), a
// prompt in between and some steps without logits, and requires identical
// logits and states. The steps reuse one logits buffer, so the GPU run
// also covers copying the logits straight into it.
func TestCUDAStepIO(t *testing.T) {
	gpu := cudaBackend(t)
	if _, ok := gpu.(kernels.StepGrapher); !ok {
		t.Fatalf("%T has no CaptureIO", gpu)
	}
	plain := plainGraphs{gpu, gpu.(kernels.Grapher), gpu.(kernels.Fused)}
	src := fusedTestSource(t, kernels.BF16)
	run := func(be kernels.Backend) (logits, states []float32) {
		m, err := Load(src, LoadOptions{Backend: be})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		V := m.Config().Vocab
		ctx := context.Background()
		var sts [2]*State
		for i := range sts {
			if sts[i], err = m.NewState(); err != nil {
				t.Fatal(err)
			}
			defer sts[i].Free()
		}
		buf := make([]float32, V)
		for i, tok := range fusedTestTokens {
			st := sts[min(i%3, 1)]
			if i == 10 { // a prompt on the second state between steps
				out := make([]float32, V)
				if err := m.Forward(ctx, sts[1], fusedTestTokens[:5], out); err != nil {
					t.Fatal(err)
				}
				logits = append(logits, out...)
			}
			var out []float32
			if i%4 != 1 {
				out = buf // one buffer, as a decode loop has
			}
			if err := m.Forward(ctx, st, []int32{tok}, out); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			logits = append(logits, out...)
		}
		for _, st := range sts {
			f, err := st.Floats()
			if err != nil {
				t.Fatal(err)
			}
			states = append(states, f...)
		}
		return logits, states
	}
	gl, gs := run(gpu)
	pl, ps := run(plain)
	if len(gl) != len(pl) || len(gl) == 0 {
		t.Fatalf("%d and %d logits", len(gl), len(pl))
	}
	if std(pl) == 0 || std(ps) == 0 {
		t.Fatal("plain graphs gave constant logits or states: nothing compared")
	}
	if !slices.Equal(gl, pl) {
		d, at := maxDiff(gl, pl)
		t.Errorf("logits differ: max |Δ| %.3g at %d", d, at)
	}
	if !slices.Equal(gs, ps) {
		d, at := maxDiff(gs, ps)
		t.Errorf("states differ: max |Δ| %.3g at %d", d, at)
	}
}
