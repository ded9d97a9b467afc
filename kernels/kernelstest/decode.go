package kernelstest

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// decodeCases checks batched decode and quantized weights.
func decodeCases(t *testing.T, h *H) {
	t.Run("LinearI8", func(t *testing.T) { linearI8Cases(t, h.On(t)) })
}

// I8Weight quantizes a random [rows, cols] weight with kernels.QuantizeI8
// and returns the tensor and the values it stands for, q·scale.
func (h *H) I8Weight(rows, cols int, scale float64) (kernels.Tensor, []float32) {
	h.T.Helper()
	v := h.Randn(rows*cols, scale)
	raw, err := kernels.QuantizeI8(F32Bytes(v), kernels.F32, rows, cols)
	if err != nil {
		h.T.Fatal(err)
	}
	for r := range rows {
		s := math.Float32frombits(binary.LittleEndian.Uint32(raw[rows*cols+4*r:]))
		for c := range cols {
			q := int8(raw[r*cols+c])
			v[r*cols+c] = float32(q) * s
		}
	}
	t, err := h.Be.Weight(kernels.I8, rows, cols, raw)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(func() { h.Be.Free(t) })
	return t, v
}

// linearI8Cases runs Linear with int8 weights for one token (decode), a few
// and many (prefill), against x·(q·scale)ᵀ in float64; LinearBatch with I8
// items beside bf16 LoRA items, as a quantized model's decode step issues
// them.
func linearI8Cases(t *testing.T, h *H) {
	for _, s := range []struct{ T, K, N int }{
		{1, 64, 8}, {1, 768, 300}, {1, 100, 37}, {3, 256, 64}, {17, 128, 96}, {40, 320, 200},
	} {
		w, wv := h.I8Weight(s.N, s.K, 0.05)
		x := h.Randn(s.T*s.K, 1)
		xt := h.Upload(s.T, s.K, x)
		dst := h.Out(s.T, s.N)
		h.Be.Linear(dst, xt, w)
		want := make([]float64, s.T*s.N)
		for i := range s.T {
			for n := range s.N {
				var acc float64
				for k := range s.K {
					acc += float64(x[i*s.K+k]) * float64(wv[n*s.K+k])
				}
				want[i*s.N+n] = acc
			}
		}
		h.Check(fmt.Sprintf("T%d_K%d_N%d", s.T, s.K, s.N), h.Get(dst), want, 1e-5)
	}
	f, ok := h.Be.(kernels.Fused)
	if !ok {
		return
	}
	const K = 256
	x := h.Randn(K, 1)
	xt := h.Upload(1, K, x)
	wq, wqv := h.I8Weight(192, K, 0.05)
	wl, wlv := h.Weight(kernels.BF16, K, 32, 0.05)
	d0, d1 := h.Out(1, 192), h.Upload(1, 32, h.Randn(32, 1))
	acc0 := h.Get(d1)
	f.LinearBatch([]kernels.LinearItem{
		{Dst: d0, X: xt, W: wq, Activate: true, Act: kernels.ReLUSquared},
		{Dst: d1, X: xt, W: wl, NN: true, Accumulate: true},
	})
	want0, want1 := make([]float64, 192), make([]float64, 32)
	for n := range 192 {
		var a float64
		for k := range K {
			a += float64(x[k]) * float64(wqv[n*K+k])
		}
		want0[n] = math.Pow(max(a, 0), 2)
	}
	for n := range 32 {
		a := float64(acc0[n])
		for k := range K {
			a += float64(x[k]) * float64(wlv[k*32+n])
		}
		want1[n] = a
	}
	h.Check("LinearBatch/i8_relu2", h.Get(d0), want0, 1e-5)
	h.Check("LinearBatch/bf16_lora_acc", h.Get(d1), want1, 1e-5)

	// One accumulating int8 item alone (the output projection's x += o·Woᵀ).
	d2 := h.Upload(1, 192, h.Randn(192, 1))
	acc2 := h.Get(d2)
	f.LinearBatch([]kernels.LinearItem{{Dst: d2, X: xt, W: wq, Accumulate: true}})
	want2 := make([]float64, 192)
	for n := range 192 {
		a := float64(acc2[n])
		for k := range K {
			a += float64(x[k]) * float64(wqv[n*K+k])
		}
		want2[n] = a
	}
	h.Check("LinearBatch/i8_acc", h.Get(d2), want2, 1e-5)
}
