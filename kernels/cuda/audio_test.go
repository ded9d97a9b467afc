package cuda

import (
	"fmt"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// TestConformanceAudio compares the GPU's A-RWKV ops with the CPU
// backend's on the same inputs: the 2-D shift (DepthwiseConv3, Lerp), the
// bidirectional WKV (FlipRows, batched WKV7 on every kernel variant,
// GateMix) and the pooling (MeanRows), with unaligned views where the
// kernels read through them.
func TestConformanceAudio(t *testing.T) {
	h0 := newHarness(t)

	t.Run("DepthwiseConv3", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ n, hh, w, C int }{{2, 62, 8, 384}, {1, 8, 4, 128}, {3, 5, 3, 72}, {1, 1, 1, 16}} {
			rows := s.n * s.hh * s.w
			x, k := h.shifted(rows, s.C), h.act(s.C, 9, 0.5)
			d := h.out(rows, s.C)
			h.g.DepthwiseConv3(d.g, x.g, k.g, s.hh, s.w)
			h.c.DepthwiseConv3(d.c, x.c, k.c, s.hh, s.w)
			h.check(fmt.Sprintf("DepthwiseConv3/%dx%dx%d_C%d", s.n, s.hh, s.w, s.C), d, 1e-6)
		}
	})

	t.Run("Lerp", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ T, C, n int }{{992, 192, 6}, {5, 100, 1}} {
			x, d := h.shifted(s.T, s.C), h.act(s.T, s.C, 1)
			var dg, dc, mg, mc []kernels.Tensor
			var outs []pair
			for range s.n {
				m := h.upload(1, s.C, h.uniform(s.C, -1, 1))
				o := h.out(s.T, s.C)
				outs = append(outs, o)
				dg, dc, mg, mc = append(dg, o.g), append(dc, o.c), append(mg, m.g), append(mc, m.c)
			}
			h.g.Lerp(dg, x.g, d.g, mg)
			h.c.Lerp(dc, x.c, d.c, mc)
			for i, o := range outs {
				h.check(fmt.Sprintf("Lerp/T%d_C%d_%d", s.T, s.C, i), o, 1e-6)
			}
		}
	})

	t.Run("FlipRows", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ rows, C, n int }{{1984, 384, 496}, {12, 70, 3}, {4, 8, 1}} {
			x, d := h.shifted(s.rows, s.C), h.out(s.rows, s.C)
			h.g.FlipRows(d.g, x.g, s.n)
			h.c.FlipRows(d.c, x.c, s.n)
			h.check(fmt.Sprintf("FlipRows/%dx%d_%d", s.rows, s.C, s.n), d, 0)
		}
	})

	t.Run("GateMix", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ T, C, H int }{{992, 384, 6}, {7, 128, 2}} {
			a, b := h.shifted(s.T, s.C), h.act(s.T, s.C, 1)
			g := h.upload(s.T, s.H, h.uniform(s.T*s.H, 0, 1))
			d := h.out(s.T, s.C)
			h.g.GateMix(d.g, a.g, b.g, g.g)
			h.c.GateMix(d.c, a.c, b.c, g.c)
			h.check(fmt.Sprintf("GateMix/T%d_C%d_H%d", s.T, s.C, s.H), d, 1e-6)
		}
	})

	t.Run("MeanRows", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct{ m, n, C int }{{4, 496, 768}, {1, 32, 128}, {3, 1, 50}} {
			x, d := h.shifted(s.m*s.n, s.C), h.out(s.m, s.C)
			h.g.MeanRows(d.g, x.g)
			h.c.MeanRows(d.c, x.c)
			h.check(fmt.Sprintf("MeanRows/%dx%d_C%d", s.m, s.n, s.C), d, 1e-6)
		}
	})

	t.Run("WKV7Batched", func(t *testing.T) {
		h := h0.on(t)
		for _, s := range []struct {
			seqs, L, C int
			unalign    bool
		}{{4, 62, 384, false}, {2, 37, 192, true}, {8, 1, 128, false}} {
			name := fmt.Sprintf("WKV7/seqs%d_L%d_C%d_unaligned%v", s.seqs, s.L, s.C, s.unalign)
			h.checkWKV7(name, s.seqs, s.seqs*s.L, s.C, s.unalign)
		}
	})
}
