package core

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// TestForwardSample decodes with ForwardSample and with a host loop of
// Forward and Sampler.Sample under the same settings and seed, for
// several settings (penalties, top-p, top-k, temperature), and requires
// the same tokens, the same sampler state (the occurrence table), and,
// where the device drew, logits left untouched. On a backend that draws
// (CUDA) most tokens must come from the device.
func TestForwardSample(t *testing.T) {
	settings := []sample.Params{
		sample.DefaultChat(),
		{Temperature: 0.8, TopP: 0.9, TopK: 40, PresencePenalty: 0.3, Seed: 5},
		{Temperature: 1.2, TopP: 1, Seed: 9},
		{Temperature: 0.6, TopP: 1, TopK: 3, FrequencyPenalty: 1, PenaltyDecay: 0.99, Seed: 3},
	}
	for _, bk := range testBackends() {
		t.Run(bk.name, func(t *testing.T) {
			m := fusedTestModel(t, bk.open(t), kernels.BF16)
			ctx := context.Background()
			V := m.Config().Vocab
			_, draws := m.Backend().(kernels.Drawer)
			for _, p := range settings {
				ref, st := twinStates(t, m)
				host, dev := sample.New(p, V), sample.New(p, V)
				host.Ban(0)
				dev.Ban(0)
				want, got := make([]float32, V), make([]float32, V)
				const steps = 32
				tok, onDevice := int32(1), 0
				for i := range steps {
					if err := m.Forward(ctx, ref, []int32{tok}, want); err != nil {
						t.Fatal(err)
					}
					next := host.Sample(want)
					for j := range got {
						got[j] = float32(math.NaN())
					}
					id, err := m.ForwardSample(ctx, st, tok, got, dev)
					if err != nil {
						t.Fatal(err)
					}
					if id != next {
						t.Fatalf("%+v, step %d: drew %d, the host loop %d", p, i, id, next)
					}
					if math.IsNaN(float64(got[0])) {
						onDevice++
					} else if !slices.Equal(got, want) {
						d, at := maxDiff(got, want)
						t.Fatalf("%+v, step %d: handed back logits that differ from Forward's by %.3g at %d", p, i, d, at)
					}
					for id := range int32(V) {
						a, ina := host.Occurrence(id)
						b, inb := dev.Occurrence(id)
						if a != b || ina != inb {
							t.Fatalf("%+v, step %d: occurrence of %d: %v %v, host loop %v %v", p, i, id, b, inb, a, ina)
						}
					}
					tok = next
				}
				t.Logf("%+v: %d of %d tokens drawn on the device", p, onDevice, steps)
				switch {
				case draws && onDevice < steps*3/4:
					t.Errorf("%+v: only %d of %d tokens drawn on the device", p, onDevice, steps)
				case !draws && onDevice > 0:
					t.Errorf("%+v: %d tokens drawn on a backend without kernels.Drawer", p, onDevice)
				}
			}
		})
	}
}

// drawingCPU is a backend that draws tokens "on the device" the way the
// kernels.Drawer contract says, in Go (sample.Plan.Pick), so that the
// paths through Batch.StepDraw and the Batcher run without a GPU. It
// flags the rows whose uniform number is above 0.75, so that the host's
// side of a flag runs too. It hides the backend's optional interfaces
// (fused ops, graphs), which the model then composes.
type drawingCPU struct {
	kernels.Backend
	rows, flagged atomic.Int64
	maxAlloc      int // > 0: Alloc refuses tensors of more elements
}

func (d *drawingCPU) Alloc(dt kernels.DType, rows, cols int) (kernels.Tensor, error) {
	if d.maxAlloc > 0 && rows*cols > d.maxAlloc {
		return kernels.Tensor{}, fmt.Errorf("drawingCPU: %d×%d over the test's limit", rows, cols)
	}
	return d.Backend.Alloc(dt, rows, cols)
}

func (d *drawingCPU) Draw(dst, x, spec, work kernels.Tensor) {
	T, V := x.Rows, x.Cols
	raw := make([]byte, spec.Len()*4)
	xs := make([]float32, T*V)
	if d.Download(raw, spec) != nil || d.Download(half.Bytes(xs), x) != nil {
		return
	}
	specs, err := kernels.DecodeDraws(raw)
	if err != nil || len(specs) < T || work.Len() < kernels.DrawWork(T, V) {
		return
	}
	out := make([]int32, 2*T)
	for t := range T {
		s := specs[t]
		p := sample.Plan{U: s.U, InvTemp: s.InvTemp, TopP: s.TopP, TopK: s.TopK}
		for _, sh := range s.Shifts {
			p.Shifts = append(p.Shifts, sample.Shift{ID: sh.ID, Sub: sh.Sub})
		}
		out[2*t] = p.Pick(xs[t*V : (t+1)*V])
		if s.U > 0.75 || out[2*t] < 0 {
			out[2*t+1] = 1
			d.flagged.Add(1)
		}
		d.rows.Add(1)
	}
	d.Upload(dst, half.Bytes(out))
}
