package cuda

import (
	"fmt"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// fused returns both backends' kernels.Fused.
func (h *harness) fused() (g, c kernels.Fused) {
	c, ok := any(h.c).(kernels.Fused)
	if !ok {
		h.t.Fatal("the CPU backend does not implement kernels.Fused")
	}
	return h.g, c
}

// itemSpec describes one LinearBatch item.
type itemSpec struct {
	K, N     int
	nn       bool
	act      int // -1: none
	acc      bool
	unalignX bool
}

// linearItems builds the items on both backends and returns them with
// their outputs.
func (h *harness) linearItems(dt kernels.DType, T int, specs []itemSpec) (g, c []kernels.LinearItem, outs []pair) {
	for _, s := range specs {
		x := h.act(T, s.K, 1)
		if s.unalignX {
			x = h.shifted(T, s.K)
		}
		var w pair
		if s.nn {
			w, _ = h.weight(dt, s.K, s.N, 0.05)
		} else {
			w, _ = h.weight(dt, s.N, s.K, 0.05)
		}
		d := h.out(T, s.N)
		if s.acc {
			d = h.act(T, s.N, 1)
		}
		mk := func(d, x, w kernels.Tensor) kernels.LinearItem {
			it := kernels.LinearItem{Dst: d, X: x, W: w, NN: s.nn, Accumulate: s.acc}
			if s.act >= 0 {
				it.Activate, it.Act = true, kernels.Activation(s.act)
			}
			return it
		}
		g = append(g, mk(d.g, x.g, w.g))
		c = append(c, mk(d.c, x.c, w.c))
		outs = append(outs, d)
	}
	return g, c, outs
}

func TestFused(t *testing.T) {
	h0 := newHarness(t)
	dts := []kernels.DType{kernels.F32, kernels.F16, kernels.BF16}

	t.Run("LinearBatch", func(t *testing.T) {
		h := h0.on(t)
		gf, cf := h.fused()
		// The decode step's batches: r, k, v with the LoRA downs (split
		// K); wo and ffn value accumulating; ffn key with relu².
		step := []itemSpec{
			{K: 256, N: 256, act: -1}, {K: 256, N: 256, act: -1}, {K: 256, N: 256, act: -1},
			{K: 768, N: 96, nn: true, act: 0}, {K: 768, N: 64, nn: true, act: -1},
			{K: 768, N: 136, nn: true, act: 1}, {K: 96, N: 512, nn: true, act: -1},
			{K: 1024, N: 40, act: 2},
		}
		for _, dt := range dts {
			for _, c := range []struct {
				name  string
				T     int
				specs []itemSpec
			}{
				{"step", 1, step},
				{"acc", 1, []itemSpec{{K: 2048, N: 128, act: -1, acc: true}, {K: 4096, N: 64, act: -1, acc: true}, {K: 512, N: 64, nn: true, act: -1, acc: true}}},
				// Several rows a warp (rpw 4), rows of 1–3 rounds of 2048
				// with a short last one, odd round counts, a last warp with
				// fewer rows.
				{"rows", 1, []itemSpec{{K: 4104, N: 2999, act: -1}, {K: 520, N: 2500, act: 2}, {K: 2048, N: 1001, act: -1, acc: true}}},
				{"unaligned", 1, []itemSpec{{K: 256, N: 64, act: 2, unalignX: true}, {K: 100, N: 8, act: -1}}},
				{"T3", 3, []itemSpec{{K: 256, N: 128, act: 2}, {K: 256, N: 96, nn: true, act: 0}, {K: 128, N: 64, act: -1, acc: true}}},
				{"T40", 40, []itemSpec{{K: 256, N: 128, act: 1}, {K: 256, N: 96, nn: true, act: -1, acc: true}}},
			} {
				gi, ci, outs := h.linearItems(dt, c.T, c.specs)
				// Twice: the split products' counters must reset themselves.
				for rep := range 2 {
					if rep == 1 {
						for i := range outs {
							if !c.specs[i].acc {
								continue
							}
							v := h.randn(outs[i].g.Len(), 1)
							h.g.Upload(outs[i].g, kernelstest.F32Bytes(v))
							h.c.Upload(outs[i].c, kernelstest.F32Bytes(v))
						}
					}
					gf.LinearBatch(gi)
					cf.LinearBatch(ci)
					for i, o := range outs {
						h.check(fmt.Sprintf("LinearBatch/%v/%s/rep%d/item%d", dt, c.name, rep, i), o, 2e-5)
					}
				}
			}
		}
	})

	t.Run("NormShiftMix", func(t *testing.T) {
		h := h0.on(t)
		gf, cf := h.fused()
		for _, s := range []struct{ T, C, mixes int }{{1, 2048, 6}, {1, 96, 1}, {1, 2560, 6}, {3, 128, 6}} {
			v := h.randn(s.T*s.C, 2)
			for i := range v {
				v[i] += 3
			}
			x := h.upload(s.T, s.C, v)
			w, b := h.act(1, s.C, 1), h.act(1, s.C, 1)
			st := h.act(1, s.C, 1)
			norm := h.out(s.T, s.C)
			var dst []pair
			var dg, dc, mg, mc []kernels.Tensor
			for range s.mixes {
				d, m := h.out(s.T, s.C), h.upload(1, s.C, h.uniform(s.C, 0, 1))
				dst = append(dst, d)
				dg, dc, mg, mc = append(dg, d.g), append(dc, d.c), append(mg, m.g), append(mc, m.c)
			}
			gf.NormShiftMix(norm.g, dg, x.g, w.g, b.g, 1e-5, st.g, mg)
			cf.NormShiftMix(norm.c, dc, x.c, w.c, b.c, 1e-5, st.c, mc)
			name := fmt.Sprintf("NormShiftMix/T%d_C%d_m%d", s.T, s.C, s.mixes)
			h.check(name+"/norm", norm, 2e-6)
			h.check(name+"/state", st, 2e-6)
			for i, d := range dst {
				h.check(fmt.Sprintf("%s/dst%d", name, i), d, 2e-6)
			}
		}
	})

	t.Run("Prep7Up", func(t *testing.T) {
		h := h0.on(t)
		gf, cf := h.fused()
		for _, dt := range dts {
			for _, s := range []struct {
				T, C, dw, da, dv, dg int
				zv                   bool
			}{{1, 2048, 96, 96, 64, 256, true}, {1, 768, 64, 64, 32, 128, false}, {1, 128, 16, 16, 8, 32, true}, {2, 128, 16, 16, 8, 32, true}} {
				T, C := s.T, s.C
				k, v, vf := h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1)
				if !s.zv {
					vf = h.out(T, C)
				}
				w, a, b, zv, g := h.out(T, C), h.out(T, C), h.out(T, C), h.out(T, C), h.out(T, C)
				w0, a0, v0 := h.act(1, C, 1), h.act(1, C, 1), h.act(1, C, 1)
				kk, ka := h.act(1, C, 1), h.upload(1, C, h.uniform(C, 0, 1))
				hw, ha, hv, hg := h.act(T, s.dw, 1), h.act(T, s.da, 1), h.act(T, s.dv, 1), h.upload(T, s.dg, h.uniform(T*s.dg, 0, 1))
				w2, _ := h.weight(dt, s.dw, C, 0.1)
				a2, _ := h.weight(dt, s.da, C, 0.1)
				v2, _ := h.weight(dt, s.dv, C, 0.1)
				g2, _ := h.weight(dt, s.dg, C, 0.1)
				pg := kernels.Prep7{K: k.g, V: v.g, VFirst: vf.g, W: w.g, A: a.g, B: b.g, W0: w0.g, A0: a0.g, KK: kk.g, KA: ka.g, HeadSize: 64}
				pc := kernels.Prep7{K: k.c, V: v.c, VFirst: vf.c, W: w.c, A: a.c, B: b.c, W0: w0.c, A0: a0.c, KK: kk.c, KA: ka.c, HeadSize: 64}
				if s.zv {
					pg.ZV, pg.V0 = zv.g, v0.g
					pc.ZV, pc.V0 = zv.c, v0.c
				}
				gf.Prep7Up(pg, kernels.Up7{HW: hw.g, W2: w2.g, HA: ha.g, A2: a2.g, HV: hv.g, V2: v2.g, HG: hg.g, G2: g2.g, G: g.g})
				cf.Prep7Up(pc, kernels.Up7{HW: hw.c, W2: w2.c, HA: ha.c, A2: a2.c, HV: hv.c, V2: v2.c, HG: hg.c, G2: g2.c, G: g.c})
				name := fmt.Sprintf("Prep7Up/%v/T%d_C%d_zv%v", dt, T, C, s.zv)
				outs := []struct {
					n string
					p pair
				}{{"k", k}, {"v", v}, {"vfirst", vf}, {"w", w}, {"a", a}, {"b", b}, {"g", g}}
				if s.zv {
					outs = append(outs, struct {
						n string
						p pair
					}{"zv", zv})
				}
				for _, o := range outs {
					h.check(name+"/"+o.n, o.p, 2e-5)
				}
			}
		}
	})

	t.Run("WKV7Out", func(t *testing.T) {
		h := h0.on(t)
		gf, cf := h.fused()
		for _, s := range []struct{ T, C int }{{1, 2048}, {1, 128}, {5, 128}} {
			T, C := s.T, s.C
			r, k, v, g := h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1), h.act(T, C, 1)
			w := h.upload(T, C, h.uniform(T*C, 0.55, 1))
			a, b := h.wkvAB(T, C)
			rk, lw, lb := h.act(1, C, 1), h.act(1, C, 1), h.act(1, C, 1)
			st := h.act(C, 64, 0.5)
			y, d := h.out(T, C), h.out(T, C)
			gf.WKV7Out(st.g, w.g, a.g, b.g, kernels.Out7{Dst: d.g, Y: y.g, R: r.g, K: k.g, V: v.g, G: g.g, RK: rk.g, LnW: lw.g, LnB: lb.g, HeadSize: 64, Eps: 64e-5})
			cf.WKV7Out(st.c, w.c, a.c, b.c, kernels.Out7{Dst: d.c, Y: y.c, R: r.c, K: k.c, V: v.c, G: g.c, RK: rk.c, LnW: lw.c, LnB: lb.c, HeadSize: 64, Eps: 64e-5})
			name := fmt.Sprintf("WKV7Out/T%d_C%d", T, C)
			h.check(name+"/y", y, 2e-5)
			h.check(name+"/state", st, 2e-5)
			h.check(name+"/dst", d, 2e-5)
		}
	})

	// A chain of fused ops captured in a graph (with programmatic
	// dependent launch between them on Hopper) and replayed: each kernel
	// reads the previous one's output.
	t.Run("Graph", func(t *testing.T) {
		h := h0.on(t)
		_, cf := h.fused()
		const C, F = 512, 1024
		x := h.act(1, C, 1)
		lw, lb := h.act(1, C, 1), h.act(1, C, 0.1)
		st := h.act(1, C, 1)
		mix := h.upload(1, C, h.uniform(C, 0, 1))
		norm, xm, hid := h.out(1, C), h.out(1, C), h.out(1, F)
		wk, _ := h.weight(kernels.BF16, F, C, 0.05)
		wv, _ := h.weight(kernels.BF16, C, F, 0.05)
		w1, _ := h.weight(kernels.BF16, C, 64, 0.05)
		lo := h.out(1, 64)
		step := func(f kernels.Fused, x, lw, lb, st, mix, norm, xm, hid, wk, wv, w1, lo kernels.Tensor) {
			f.NormShiftMix(norm, []kernels.Tensor{xm}, x, lw, lb, 1e-5, st, []kernels.Tensor{mix})
			f.LinearBatch([]kernels.LinearItem{
				{Dst: hid, X: xm, W: wk, Activate: true, Act: kernels.ReLUSquared},
				{Dst: lo, X: xm, W: w1, NN: true, Activate: true, Act: kernels.Tanh},
			})
			f.LinearBatch([]kernels.LinearItem{{Dst: x, X: hid, W: wv, Accumulate: true}})
		}
		gr, err := h.g.Capture(func(rec kernels.Backend) {
			step(rec.(kernels.Fused), x.g, lw.g, lb.g, st.g, mix.g, norm.g, xm.g, hid.g, wk.g, wv.g, w1.g, lo.g)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer gr.Free()
		for i := range 4 {
			if err := gr.Launch(); err != nil {
				t.Fatal(err)
			}
			step(cf, x.c, lw.c, lb.c, st.c, mix.c, norm.c, xm.c, hid.c, wk.c, wv.c, w1.c, lo.c)
			h.check(fmt.Sprintf("Graph/launch%d/x", i), x, 2e-5)
			h.check(fmt.Sprintf("Graph/launch%d/lora", i), lo, 2e-5)
			h.check(fmt.Sprintf("Graph/launch%d/state", i), st, 2e-5)
		}
	})
}

func TestProber(t *testing.T) {
	g := newGPU(t)
	bw, err := g.CopyBandwidth(256 << 20)
	if err != nil {
		t.Fatal(err)
	}
	rate, err := g.MatMulRate(1024, 2048, 8192, kernels.BF16)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("copy %.3g B/s (bytes read), bf16 matmul 1024×2048×8192 %.3g FLOP/s", bw, rate)
	if bw < 1e10 || bw > 1e13 || rate < 1e12 || rate > 1e16 {
		t.Errorf("implausible ceilings: copy %.3g B/s, matmul %.3g FLOP/s", bw, rate)
	}
}
