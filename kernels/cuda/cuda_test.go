package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// newGPU opens the first GPU or skips the test when there is none (fails
// instead when GOOSE_CUDA_REQUIRED is set, as on a GPU test machine).
func newGPU(tb testing.TB) *Backend {
	tb.Helper()
	g, err := New(Options{})
	var ue *kernels.UnavailableError
	if errors.As(err, &ue) && os.Getenv("GOOSE_CUDA_REQUIRED") == "" {
		tb.Skip("cuda: " + ue.Reason)
	}
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := g.Close(); err != nil {
			tb.Error(err)
		}
	})
	return g
}

// harness runs each op on the GPU and on the CPU backend with the same
// fresh random inputs and compares the results.
type harness struct {
	t   *testing.T
	g   *Backend
	c   *cpu.Backend
	rng *rand.Rand
}

// pair is one tensor on both backends.
type pair struct{ g, c kernels.Tensor }

// on returns the harness reporting to t (a subtest).
func (h *harness) on(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
}

func newHarness(t *testing.T) *harness {
	g := newGPU(t)
	c, err := cpu.New(cpu.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &harness{t: t, g: g, c: c, rng: rand.New(rand.NewPCG(1, 2))}
}

func (h *harness) randn(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(h.rng.NormFloat64() * scale)
	}
	return v
}

func (h *harness) uniform(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*h.rng.Float64())
	}
	return v
}

// upload allocates [rows, cols] F32 on both backends holding v.
func (h *harness) upload(rows, cols int, v []float32) pair {
	h.t.Helper()
	var p pair
	var err error
	if p.g, err = h.g.Alloc(kernels.F32, rows, cols); err != nil {
		h.t.Fatal(err)
	}
	if p.c, err = h.c.Alloc(kernels.F32, rows, cols); err != nil {
		h.t.Fatal(err)
	}
	b := kernelstest.F32Bytes(v)
	if err := h.g.Upload(p.g, b); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Upload(p.c, b); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// shifted returns a random [rows, cols] view that starts one element into
// its buffer (so its device address is not 16-byte aligned).
func (h *harness) shifted(rows, cols int) pair {
	p := h.act(1, rows*cols+1, 1)
	for _, t := range []*kernels.Tensor{&p.g, &p.c} {
		t.Offset, t.Rows, t.Cols = 1, rows, cols
	}
	return p
}

func (h *harness) act(rows, cols int, scale float64) pair {
	return h.upload(rows, cols, h.randn(rows*cols, scale))
}

// out allocates an output and poisons it with NaN, so that an element the
// op does not write fails the comparison.
func (h *harness) out(rows, cols int) pair {
	nan := make([]float32, rows*cols)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	return h.upload(rows, cols, nan)
}

// weight makes a random [rows, cols] weight of dtype dt on both backends
// and returns the values it holds.
func (h *harness) weight(dt kernels.DType, rows, cols int, scale float64) (pair, []float32) {
	h.t.Helper()
	v := h.randn(rows*cols, scale)
	raw := kernelstest.Encode(dt, v)
	var p pair
	var err error
	if p.g, err = h.g.Weight(dt, rows, cols, raw); err != nil {
		h.t.Fatal(err)
	}
	if p.c, err = h.c.Weight(dt, rows, cols, raw); err != nil {
		h.t.Fatal(err)
	}
	return p, v
}

func (h *harness) ids(ids []int32) pair {
	h.t.Helper()
	raw := make([]byte, 4*len(ids))
	for i, id := range ids {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(id))
	}
	var p pair
	var err error
	if p.g, err = h.g.Alloc(kernels.I32, 1, len(ids)); err != nil {
		h.t.Fatal(err)
	}
	if p.c, err = h.c.Alloc(kernels.I32, 1, len(ids)); err != nil {
		h.t.Fatal(err)
	}
	if err := h.g.Upload(p.g, raw); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Upload(p.c, raw); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// get downloads both sides of p.
func (h *harness) get(p pair) (gpu, ref []float32) {
	h.t.Helper()
	if err := h.g.Sync(); err != nil {
		h.t.Fatalf("gpu: %v", err)
	}
	if err := h.c.Sync(); err != nil {
		h.t.Fatalf("cpu: %v", err)
	}
	gb := make([]byte, 4*p.g.Len())
	cb := make([]byte, 4*p.c.Len())
	if err := h.g.Download(gb, p.g); err != nil {
		h.t.Fatal(err)
	}
	if err := h.c.Download(cb, p.c); err != nil {
		h.t.Fatal(err)
	}
	return kernelstest.BytesF32(gb), kernelstest.BytesF32(cb)
}

// check compares p between the backends: relative L2 error within tol and
// every GPU element finite.
func (h *harness) check(name string, p pair, tol float64) {
	h.t.Helper()
	g, c := h.get(p)
	kernelstest.Check(h.t, name, g, kernelstest.Widen(c), tol)
}

// wkvAB uploads WKV inputs for T rows of C channels: a = −κ̂, b = κ̂·α
// with κ̂ unit per head and α uniform in [0, 1), as Prep7 makes them.
func (h *harness) wkvAB(T, C int) (a, b pair) {
	av, bv := make([]float32, T*C), make([]float32, T*C)
	kh := h.randn(T*C, 1)
	for i := 0; i < T*C; i += 64 {
		var n float64
		for j := range 64 {
			n += float64(kh[i+j]) * float64(kh[i+j])
		}
		n = math.Sqrt(n)
		for j := range 64 {
			u := float32(float64(kh[i+j]) / n)
			av[i+j], bv[i+j] = -u, u*float32(h.rng.Float64())
		}
	}
	return h.upload(T, C, av), h.upload(T, C, bv)
}

// checkWKV7 compares WKV7 over T rows of C channels, run from seqs states
// (T/seqs rows each), between the backends with every GPU kernel variant;
// with unalign, r and v are views one element into their buffers (the
// kernel's 4-byte copy path). name prefixes the checks' names.
func (h *harness) checkWKV7(name string, seqs, T, C int, unalign bool) {
	h.t.Helper()
	r, k, v := h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1)
	if unalign {
		r, v = h.shifted(T, C), h.shifted(T, C)
	}
	w := h.upload(T, C, h.uniform(T*C, 0.55, 1))
	a, b := h.wkvAB(T, C)
	type kern struct {
		tpr int
		v   wkvVariant
	}
	kerns := []kern{{4, wkvVariant{}}, {8, wkvVariant{}}, {16, wkvVariant{}}}
	for _, v := range wkvVariants() {
		kerns = append(kerns, kern{4, v})
	}
	for _, kern := range kerns {
		st := h.act(seqs*C, 64, 0.5)
		y := h.out(T, C)
		h.g.wkvTPR, h.g.wkvRows = kern.tpr, kern.v
		h.g.WKV7(y.g, st.g, r.g, w.g, k.g, v.g, a.g, b.g)
		h.c.WKV7(y.c, st.c, r.c, w.c, k.c, v.c, a.c, b.c)
		n := fmt.Sprintf("%s_tpr%d_split%v", name, kern.tpr, kern.v)
		h.check(n+"/y", y, 2e-5)
		h.check(n+"/state", st, 2e-5)
	}
	h.g.wkvTPR, h.g.wkvRows = defaultWKVTPR, defaultWKVRows()
}

// productRef is dst = x·wᵀ (linear) or x·w in float64.
func productRef(x, w []float32, T, K, N int, linear bool) []float64 {
	out := make([]float64, T*N)
	for t := range T {
		for n := range N {
			var s float64
			for k := range K {
				wv := w[k*N+n]
				if linear {
					wv = w[n*K+k]
				}
				s += float64(x[t*K+k]) * float64(wv)
			}
			out[t*N+n] = s
		}
	}
	return out
}

func roundTo(dt kernels.DType, v []float32) []float32 {
	o := make([]float32, len(v))
	for i, x := range v {
		switch dt {
		case kernels.F16:
			o[i] = half.F16ToF32(half.F32ToF16(x))
		case kernels.BF16:
			o[i] = half.BF16ToF32(half.F32ToBF16(x))
		default:
			o[i] = x
		}
	}
	return o
}

func TestConformance(t *testing.T) {
	h0 := newHarness(t)
	dts := []kernels.DType{kernels.F32, kernels.F16, kernels.BF16}

	t.Run("Product", func(t *testing.T) {
		h := h0.on(t)
		for _, linear := range []bool{true, false} {
			for _, dt := range dts {
				for _, s := range []struct{ T, K, N, pad int }{
					{1, 768, 96, 0}, {1, 2048, 96, 0}, {1, 96, 2048, 0}, {1, 8, 1, 0},
					{2, 64, 200, 0}, {3, 100, 33, 1}, {4, 256, 64, 0}, {7, 256, 72, 1},
					{16, 128, 40, 0}, {1, 1000, 130, 1}, {33, 512, 300, 0}, {64, 96, 2048, 1},
				} {
					name := fmt.Sprintf("linear=%v/%v/T%d_K%d_N%d_pad%d", linear, dt, s.T, s.K, s.N, s.pad)
					xv := h.randn((s.T+s.pad)*s.K, 1)
					x := h.upload(s.T+s.pad, s.K, xv)
					xs := pair{x.g.Slice(s.pad, s.pad+s.T), x.c.Slice(s.pad, s.pad+s.T)}
					var w pair
					var wv []float32
					if linear {
						w, wv = h.weight(dt, s.N, s.K, 0.05)
					} else {
						w, wv = h.weight(dt, s.K, s.N, 0.05)
					}
					d := h.out(s.T, s.N)
					if linear {
						h.g.Linear(d.g, xs.g, w.g)
						h.c.Linear(d.c, xs.c, w.c)
					} else {
						h.g.MatMul(d.g, xs.g, w.g)
						h.c.MatMul(d.c, xs.c, w.c)
					}
					g, c := h.get(d)
					xin := xv[s.pad*s.K:]
					// cuBLAS (T > 16) takes x as two halves of the weight
					// dtype, as exact as fp32 activations.
					kernelstest.Check(h.t, name+"/vs-cpu", g, kernelstest.Widen(c), 1e-5)
					kernelstest.Check(h.t, name+"/vs-f64", g, productRef(xin, wv, s.T, s.K, s.N, linear), 1e-5)
					if s.T > smallT && dt != kernels.F32 {
						// Rounding x to the dtype instead would be far off.
						if e, _ := kernelstest.RelErr(g, productRef(roundTo(dt, xin), wv, s.T, s.K, s.N, linear)); e < 1e-4 {
							t.Errorf("%s: product looks rounded to %v (relative error %.3g vs rounded x)", name, dt, e)
						}
					}
				}
			}
		}
	})

	t.Run("Embed", func(t *testing.T) {
		h := h0.on(t)
		for _, dt := range dts {
			tab, _ := h.weight(dt, 50, 200, 1)
			ids := h.ids([]int32{3, 49, 0, -1, 50, 7, 3})
			d := h.out(7, 200)
			h.g.Embed(d.g, tab.g, ids.g)
			h.c.Embed(d.c, tab.c, ids.c)
			h.check("Embed/"+dt.String(), d, 0)
		}
	})

	t.Run("LayerNorm", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ T, C int }{{1, 768}, {3, 2048}, {5, 100}} {
			v := h.randn(s.T*s.C, 2)
			for i := range v {
				v[i] += 3 // a mean far from 0 tests the variance's numerics
			}
			x := h.upload(s.T, s.C, v)
			w, b := h.act(1, s.C, 1), h.act(1, s.C, 1)
			d := h.out(s.T, s.C)
			h.g.LayerNorm(d.g, x.g, w.g, b.g, 1e-5)
			h.c.LayerNorm(d.c, x.c, w.c, b.c, 1e-5)
			h.check(fmt.Sprintf("LayerNorm/T%d_C%d", s.T, s.C), d, 2e-6)
		}
	})

	t.Run("ShiftMix", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ T, C, mixes int }{{1, 256, 6}, {5, 96, 6}, {3, 64, 1}, {2, 40, 8}} {
			x := h.act(s.T, s.C, 1)
			st := h.act(1, s.C, 1)
			var dst, mix []pair
			var dg, dc, mg, mc []kernels.Tensor
			for range s.mixes {
				d, m := h.out(s.T, s.C), h.upload(1, s.C, h.uniform(s.C, 0, 1))
				dst, mix = append(dst, d), append(mix, m)
				dg, dc, mg, mc = append(dg, d.g), append(dc, d.c), append(mg, m.g), append(mc, m.c)
			}
			h.g.ShiftMix(dg, x.g, st.g, mg)
			h.c.ShiftMix(dc, x.c, st.c, mc)
			name := fmt.Sprintf("ShiftMix/T%d_C%d_m%d", s.T, s.C, s.mixes)
			for i, d := range dst {
				h.check(fmt.Sprintf("%s/dst%d", name, i), d, 1e-6)
			}
			h.check(name+"/state", st, 0)
		}
	})

	t.Run("Act", func(t *testing.T) {
		h := h0.on(t)
		for _, f := range []kernels.Activation{kernels.Tanh, kernels.Sigmoid, kernels.ReLUSquared} {
			x := h.act(3, 333, 3)
			d := h.out(3, 333)
			h.g.Act(d.g, x.g, f)
			h.c.Act(d.c, x.c, f)
			h.check(fmt.Sprintf("Act/%d", f), d, 1e-6)
		}
	})

	t.Run("AddMul", func(t *testing.T) {
		h := h0.on(t)
		for _, bcast := range []bool{false, true} {
			a := h.act(4, 300, 1)
			br := 4
			if bcast {
				br = 1
			}
			b := h.act(br, 300, 1)
			d1, d2 := h.out(4, 300), h.out(4, 300)
			h.g.Add(d1.g, a.g, b.g)
			h.c.Add(d1.c, a.c, b.c)
			h.check(fmt.Sprintf("Add/bcast=%v", bcast), d1, 0)
			if !bcast { // Mul is element-wise only
				h.g.Mul(d2.g, a.g, b.g)
				h.c.Mul(d2.c, a.c, b.c)
				h.check("Mul", d2, 0)
			}
		}
	})

	t.Run("Copy", func(t *testing.T) {
		h := h0.on(t)
		src := h.act(6, 70, 1)
		d := h.out(7, 70)
		h.g.Copy(d.g.Slice(1, 7), src.g)
		h.c.Copy(d.c.Slice(1, 7), src.c)
		g, c := h.get(d)
		kernelstest.Check(h.t, "Copy", g[70:], kernelstest.Widen(c[70:]), 0)
		if !math.IsNaN(float64(g[0])) {
			t.Errorf("Copy wrote outside its destination view: %v", g[0])
		}
	})

	t.Run("Prep7", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct {
			T, C, hs int
			zv       bool
		}{{1, 128, 64, false}, {3, 192, 64, true}, {2, 128, 32, true}, {1, 2048, 64, true}} {
			T, C := s.T, s.C
			k, v, vf := h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1)
			if !s.zv {
				vf = h.out(T, C)
			}
			w, a, b := h.act(T, C, 1), h.act(T, C, 1), h.out(T, C)
			zv := h.act(T, C, 1)
			w0, a0, v0 := h.act(1, C, 1), h.act(1, C, 1), h.act(1, C, 1)
			kk, ka := h.act(1, C, 1), h.upload(1, C, h.uniform(C, 0, 1))
			pg := kernels.Prep7{K: k.g, V: v.g, VFirst: vf.g, W: w.g, A: a.g, B: b.g,
				W0: w0.g, A0: a0.g, KK: kk.g, KA: ka.g, HeadSize: s.hs}
			pc := kernels.Prep7{K: k.c, V: v.c, VFirst: vf.c, W: w.c, A: a.c, B: b.c,
				W0: w0.c, A0: a0.c, KK: kk.c, KA: ka.c, HeadSize: s.hs}
			if s.zv {
				pg.ZV, pg.V0 = zv.g, v0.g
				pc.ZV, pc.V0 = zv.c, v0.c
			}
			h.g.Prep7(pg)
			h.c.Prep7(pc)
			name := fmt.Sprintf("Prep7/T%d_C%d_hs%d_zv%v", T, C, s.hs, s.zv)
			for _, o := range []struct {
				n string
				p pair
			}{{"k", k}, {"v", v}, {"vfirst", vf}, {"w", w}, {"a", a}, {"b", b}} {
				h.check(name+"/"+o.n, o.p, 2e-6)
			}
		}
	})

	t.Run("Out7", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ T, C, hs int }{{1, 128, 64}, {3, 192, 64}, {2, 2048, 64}, {2, 96, 32}} {
			T, C := s.T, s.C
			y := h.upload(T, C, h.randn(T*C, 5))
			r, k, v, g := h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1)
			rk, lw, lb := h.act(1, C, 1), h.act(1, C, 1), h.act(1, C, 1)
			d := h.out(T, C)
			h.g.Out7(kernels.Out7{Dst: d.g, Y: y.g, R: r.g, K: k.g, V: v.g, G: g.g, RK: rk.g, LnW: lw.g, LnB: lb.g, HeadSize: s.hs, Eps: 64e-5})
			h.c.Out7(kernels.Out7{Dst: d.c, Y: y.c, R: r.c, K: k.c, V: v.c, G: g.c, RK: rk.c, LnW: lw.c, LnB: lb.c, HeadSize: s.hs, Eps: 64e-5})
			h.check(fmt.Sprintf("Out7/T%d_C%d_hs%d", T, C, s.hs), d, 2e-6)
		}
	})

	t.Run("WKV7", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct {
			T, C    int
			unalign bool
		}{{1, 128, false}, {37, 192, false}, {300, 64, false}, {19, 128, true}} {
			h.checkWKV7(fmt.Sprintf("WKV7/T%d_C%d_unaligned%v", s.T, s.C, s.unalign), 1, s.T, s.C, s.unalign)
		}
	})

	t.Run("Vision", func(t *testing.T) { visionConformance(t, h0.on(t)) })

	t.Run("Graph", func(t *testing.T) {
		h := h0.on(t)
		const K, N = 256, 128
		x := h.act(1, K, 1)
		w, _ := h.weight(kernels.BF16, N, K, 0.05)
		bias := h.act(1, N, 1)
		y, z := h.out(1, N), h.out(1, N)
		step := func(b kernels.Backend, x, w, bias, y, z kernels.Tensor) {
			b.Linear(y, x, w)
			b.Add(y, y, bias)
			b.Act(z, y, kernels.Tanh)
		}
		gr, err := h.g.Capture(func(rec kernels.Backend) { step(rec, x.g, w.g, bias.g, y.g, z.g) })
		if err != nil {
			t.Fatal(err)
		}
		defer gr.Free()
		for i := range 3 {
			xb := kernelstest.F32Bytes(h.randn(K, 1))
			if err := h.g.Upload(x.g, xb); err != nil {
				t.Fatal(err)
			}
			if err := h.c.Upload(x.c, xb); err != nil {
				t.Fatal(err)
			}
			if err := gr.Launch(); err != nil {
				t.Fatal(err)
			}
			step(h.c, x.c, w.c, bias.c, y.c, z.c)
			h.check(fmt.Sprintf("Graph/launch%d", i), z, 2e-6)
		}
	})
}

func TestShapeErrorIsSticky(t *testing.T) {
	g := newGPU(t)
	a, err := g.Alloc(kernels.F32, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := g.Alloc(kernels.F32, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	g.Add(a, a, b) // [2,3] + [1,4]: no broadcast fits
	g.Act(a, a, kernels.Tanh)
	var se *kernels.ShapeError
	if err := g.Sync(); !errors.As(err, &se) || se.Op != "Add" {
		t.Fatalf("Sync = %v, want a ShapeError from Add", err)
	}
	if err := g.Sync(); !errors.As(err, &se) {
		t.Fatalf("second Sync = %v, want the same error", err)
	}
}

func TestForeignTensor(t *testing.T) {
	g := newGPU(t)
	c, _ := cpu.New(cpu.Options{Threads: 1})
	defer c.Close()
	x, _ := c.Alloc(kernels.F32, 1, 4)
	y, err := g.Alloc(kernels.F32, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	g.Act(y, x, kernels.Tanh)
	if err := g.Sync(); err == nil {
		t.Fatal("op on a CPU tensor succeeded")
	}
}

func TestDevices(t *testing.T) {
	ds, err := Devices()
	var ue *kernels.UnavailableError
	if errors.As(err, &ue) {
		t.Skip("cuda: " + ue.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) == 0 {
		t.Fatal("Devices returned none and no error")
	}
	for i, d := range ds {
		if d.Name == "" || d.TotalMemory <= 0 || d.Compute == "" || d.Driver == "" {
			t.Errorf("device %d: incomplete %+v", i, d)
		}
		t.Logf("device %d: %+v", i, d)
	}
}

// TestCopyList copies a list of tensors (rows of one buffer into rows of
// another, in an order where a later copy reads what an earlier one
// wrote) and checks every element, and that a list of unequal lengths
// fails the backend.
func TestCopyList(t *testing.T) {
	g := newGPU(t)
	src, err := g.Alloc(kernels.F32, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := g.Alloc(kernels.F32, 4, 8)
	if err != nil {
		t.Fatal(err)
	}
	in := make([]float32, 32)
	for i := range in {
		in[i] = float32(i)
	}
	if err := g.Upload(src, half.Bytes(in)); err != nil {
		t.Fatal(err)
	}
	// dst row 0 ← src row 3, dst row 1 ← src row 0, then dst row 2 ← dst
	// row 0 (written by the first copy), dst row 3 untouched (zero).
	g.CopyList([]kernels.Tensor{dst.Row(0), dst.Row(1), dst.Row(2)}, []kernels.Tensor{src.Row(3), src.Row(0), dst.Row(0)})
	out := make([]float32, 32)
	if err := g.Download(half.Bytes(out), dst); err != nil {
		t.Fatal(err)
	}
	for j := range 8 {
		want := []float32{in[24+j], in[j], in[24+j], 0}
		for r, w := range want {
			if out[r*8+j] != w {
				t.Fatalf("dst[%d][%d] = %v, want %v", r, j, out[r*8+j], w)
			}
		}
	}
	g.CopyList([]kernels.Tensor{dst.Row(0)}, nil)
	if err := g.Sync(); err == nil {
		t.Error("CopyList with 1 destination and 0 sources: no error")
	}
}
