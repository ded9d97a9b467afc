package kernelstest

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// decodeCases checks batched decode and quantized weights.
func decodeCases(t *testing.T, h *H) {
	t.Run("LinearI8", func(t *testing.T) { linearI8Cases(t, h.On(t)) })
	t.Run("Argmax", func(t *testing.T) { argmaxCases(t, h.On(t)) })
	t.Run("NormShiftRows", func(t *testing.T) { normShiftRowsCases(t, h.On(t)) })
	t.Run("Draw", func(t *testing.T) { drawCases(t, h.On(t)) })
}

// normShiftRowsCases checks kernels.RowShift against the composition it
// replaces on the same backend (LayerNorm, then d = state − norm, the
// mixes norm + d ⊙ mix[i], and state = norm), which must agree to the bit,
// for six mixes and for one, on a width that is not a multiple of the
// GPU's 256 threads and on two rows of 1024 (which a GPU may split into
// channel slices).
func normShiftRowsCases(t *testing.T, h *H) {
	rs, ok := h.Be.(kernels.RowShift)
	if !ok {
		t.Skip("no kernels.RowShift")
	}
	for _, c := range []struct{ T, C, nmix int }{{5, 300, 6}, {5, 300, 1}, {2, 1024, 6}, {2, 1024, 1}} {
		T, C, nmix := c.T, c.C, c.nmix
		x, w, b, s := h.Randn(T*C, 2), h.Randn(C, 1), h.Randn(C, 0.5), h.Randn(T*C, 1)
		mixes := make([]kernels.Tensor, nmix)
		for i := range mixes {
			mixes[i] = h.Upload(1, C, h.Uniform(C, 0, 1))
		}
		xt, wt, bt := h.Upload(T, C, x), h.Upload(1, C, w), h.Upload(1, C, b)
		// The composition.
		st, norm, d := h.Upload(T, C, s), h.Out(T, C), h.Out(T, C)
		minus := h.Upload(1, C, slices.Repeat([]float32{-1}, C))
		want := make([]kernels.Tensor, nmix)
		for i := range want {
			want[i] = h.Out(T, C)
		}
		h.Be.LayerNorm(norm, xt, wt, bt, 1e-5)
		h.Be.Lerp([]kernels.Tensor{d}, st, norm, []kernels.Tensor{minus})
		h.Be.Lerp(want, norm, d, mixes)
		h.Be.Copy(st, norm)
		// The op.
		st2, norm2 := h.Upload(T, C, s), h.Out(T, C)
		got := make([]kernels.Tensor, nmix)
		for i := range got {
			got[i] = h.Out(T, C)
		}
		rs.NormShiftRows(norm2, got, xt, wt, bt, 1e-5, st2, mixes)
		same := func(name string, a, b kernels.Tensor) {
			av, bv := h.Get(a), h.Get(b)
			for j := range av {
				if math.Float32bits(av[j]) != math.Float32bits(bv[j]) {
					t.Fatalf("%d mixes: %s[%d] = %g, composed %g", nmix, name, j, bv[j], av[j])
				}
			}
		}
		same("norm", norm, norm2)
		same("state", st, st2)
		for i := range got {
			same(fmt.Sprintf("dst[%d]", i), want[i], got[i])
		}
	}
}

// argmaxCases checks kernels.Greedy on rows of random logits with a
// planted tie (the lower index wins), NaNs (ignored), an all-NaN row (−1)
// and a row of −Inf (index 0).
func argmaxCases(t *testing.T, h *H) {
	g, ok := h.Be.(kernels.Greedy)
	if !ok {
		t.Skip("no kernels.Greedy")
	}
	const T, V = 6, 70000
	x := h.Randn(T*V, 3)
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	x[0*V+5], x[0*V+60000] = 100, 100 // tie: 5
	x[1*V+3], x[1*V+69999] = nan, 200 // NaN ignored: 69999
	for i := range V {
		x[2*V+i] = nan // none: -1
		x[3*V+i] = inf // all −Inf: 0
	}
	x[4*V+0] = nan
	x[4*V+777] = 50 // 777
	want := make([]int32, T)
	for r := range T {
		want[r] = -1
		m := inf
		for i, v := range x[r*V : (r+1)*V] {
			if v > m || want[r] < 0 && v == m {
				m, want[r] = v, int32(i)
			}
		}
	}
	xt := h.Upload(T, V, x)
	ids, err := h.Be.Alloc(kernels.I32, 1, T)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Be.Free(ids)
	g.Argmax(ids, xt)
	got := h.GetI32(ids)
	for r := range T {
		if got[r] != want[r] {
			t.Errorf("row %d: argmax %d, want %d", r, got[r], want[r])
		}
	}

	// ArgmaxChecked: the same indices, and a doubt flag for the rows with
	// a tie (0), a NaN (1, 4), no finite value (2, 3), or a runner-up
	// within the margin (row 5 at margin 0.5, not at 0.25); row 5 is
	// otherwise clear.
	x[5*V+100], x[5*V+200] = 1000, 999.6
	want[5] = 100
	xt = h.Upload(T, V, x)
	chk, err := h.Be.Alloc(kernels.I32, 1, 2*T)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Be.Free(chk)
	for _, c := range []struct {
		margin float32
		doubt  [T]int32
	}{{0.25, [T]int32{1, 1, 1, 1, 1, 0}}, {0.5, [T]int32{1, 1, 1, 1, 1, 1}}} {
		g.ArgmaxChecked(chk, xt, c.margin)
		got := h.GetI32(chk)
		for r := range T {
			id, doubt := got[2*r], got[2*r+1]
			if id != want[r] || doubt != c.doubt[r] {
				t.Errorf("ArgmaxChecked margin %v, row %d: index %d doubt %d, want %d and %d", c.margin, r, id, doubt, want[r], c.doubt[r])
			}
		}
	}
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

	// Rows of a length that is a multiple of 8 but not of 16, and a row
	// count that is not a multiple of the rows per warp.
	for _, s := range []struct{ K, N int }{{200, 37}, {2048, 333}} {
		x := h.Randn(s.K, 1)
		xt := h.Upload(1, s.K, x)
		w, wv := h.I8Weight(s.N, s.K, 0.05)
		d := h.Out(1, s.N)
		f.LinearBatch([]kernels.LinearItem{{Dst: d, X: xt, W: w, Activate: true, Act: kernels.Tanh}})
		want := make([]float64, s.N)
		for n := range s.N {
			var a float64
			for k := range s.K {
				a += float64(x[k]) * float64(wv[n*s.K+k])
			}
			want[n] = math.Tanh(a)
		}
		h.Check(fmt.Sprintf("LinearBatch/i8_K%d_N%d", s.K, s.N), h.Get(d), want, 1e-5)
	}
}
