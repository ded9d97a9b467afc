package cuda

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// TestConformanceRefAttention runs the shared float64-reference suite with
// each fp32-grade attention kernel other than the default
// (TestConformanceRef runs that one; attn_f16, of fp16 precision, is
// checked in TestConformance with its own tolerance).
func TestConformanceRefAttention(t *testing.T) {
	for _, v := range []attnVariant{attnMMA2, attnSIMT} {
		t.Run(v.String(), func(t *testing.T) {
			g := newGPU(t)
			g.k.vision.variant = v
			kernelstest.Run(t, g)
		})
	}
}

// visionConformance compares the image towers' ops between the GPU and
// the CPU backend on the same random inputs (part of TestConformance).
func visionConformance(t *testing.T, h0 *harness) {
	t.Run("BiasAct", func(t *testing.T) {
		h := h0.on(t)
		for _, f := range []kernels.Activation{kernels.GELU, kernels.GELUTanh, kernels.Tanh, kernels.Sigmoid, kernels.ReLUSquared} {
			x, bias := h.act(5, 301, 3), h.act(1, 301, 1)
			d := h.out(5, 301)
			h.g.BiasAct(d.g, x.g, bias.g, f)
			h.c.BiasAct(d.c, x.c, bias.c, f)
			h.check(fmt.Sprintf("BiasAct/%d", f), d, 2e-6)
			d2 := h.out(5, 301)
			h.g.Act(d2.g, x.g, f)
			h.c.Act(d2.c, x.c, f)
			h.check(fmt.Sprintf("Act/%d", f), d2, 2e-6)
		}
	})
	t.Run("LayerNormNoAffine", func(t *testing.T) {
		h := h0.on(t)
		x := h.act(7, 1024, 2)
		d := h.out(7, 1024)
		h.g.LayerNorm(d.g, x.g, kernels.Tensor{}, kernels.Tensor{}, 1e-6)
		h.c.LayerNorm(d.c, x.c, kernels.Tensor{}, kernels.Tensor{}, 1e-6)
		h.check("LayerNorm", d, 1e-5)
	})
	t.Run("Residual", func(t *testing.T) {
		h := h0.on(t)
		x, y, bias, gamma := h.act(9, 130, 1), h.act(9, 130, 1), h.act(1, 130, 1), h.act(1, 130, 0.1)
		d := h.out(9, 130)
		h.g.Residual(d.g, x.g, y.g, bias.g, gamma.g)
		h.c.Residual(d.c, x.c, y.c, bias.c, gamma.c)
		h.check("Residual", d, 1e-6)
	})
	t.Run("Im2Col", func(t *testing.T) {
		h := h0.on(t)
		for _, c := range []kernels.Conv{
			{Channels: 3, Height: 56, Width: 56, Kernel: 14, Stride: 14},
			{Channels: 7, Height: 8, Width: 9, Kernel: 3, Stride: 1, Pad: 1, ChannelsLast: true},
		} {
			src := h.act(1, c.Channels*c.Height*c.Width, 1)
			d := h.out(c.OutHeight()*c.OutWidth(), c.Channels*c.Kernel*c.Kernel)
			h.g.Im2Col(d.g, src.g, c)
			h.c.Im2Col(d.c, src.c, c)
			h.check(fmt.Sprintf("Im2Col/%+v", c), d, 0)
		}
	})
	t.Run("Window", func(t *testing.T) {
		h := h0.on(t)
		w := kernels.Window{Height: 10, Width: 10, Size: 4}
		m := h.act(100, 6, 1)
		win := h.out(w.Tokens(), 6)
		h.g.WindowPartition(win.g, m.g, w)
		h.c.WindowPartition(win.c, m.c, w)
		h.check("WindowPartition", win, 0)
		h.g.WindowMerge(m.g, win.g, w)
		h.c.WindowMerge(m.c, win.c, w)
		h.check("WindowMerge", m, 0)
	})
	t.Run("SpaceToDepthCopyCols", func(t *testing.T) {
		h := h0.on(t)
		src := h.act(64, 5, 1)
		d := h.out(16, 20)
		h.g.SpaceToDepth(d.g, src.g, 8, 8, 2)
		h.c.SpaceToDepth(d.c, src.c, 8, 8, 2)
		h.check("SpaceToDepth", d, 0)
		cat := h.out(16, 27)
		other := h.act(16, 7, 1)
		h.g.CopyCols(cat.g, d.g, 0)
		h.c.CopyCols(cat.c, d.c, 0)
		h.g.CopyCols(cat.g, other.g, 20)
		h.c.CopyCols(cat.c, other.c, 20)
		h.check("CopyCols", cat, 0)
	})
	t.Run("Attention", func(t *testing.T) {
		h := h0.on(t)
		for _, c := range []struct {
			T, heads, hd, groups, span int
		}{
			{1029, 2, 64, 1, 0}, {300, 2, 72, 1, 0}, {4 * 196, 2, 64, 4, 14}, {1024, 1, 64, 1, 32}, {50, 3, 48, 2, 5},
			{4096, 1, 64, 1, 64}, // SAM's global blocks: tiles within one key-grid row
		} {
			D := c.heads * c.hd
			qkv := h.act(c.T, 3*D, 1.5)
			a := func(dst, qkv, rh, rw kernels.Tensor) kernels.Attention {
				return kernels.Attention{Dst: dst, QKV: qkv, Heads: c.heads, Scale: 0.125, Groups: c.groups,
					RelH: rh, RelW: rw, Span: c.span}
			}
			var rh, rw pair
			if c.span > 0 {
				rh, rw = h.act(2*c.span-1, c.hd, 0.3), h.act(2*c.span-1, c.hd, 0.3)
			}
			for _, v := range attnVariants() {
				d := h.out(c.T, D)
				h.g.k.vision.variant = v
				h.g.Attention(a(d.g, qkv.g, rh.g, rw.g))
				h.c.Attention(a(d.c, qkv.c, rh.c, rw.c))
				tol := 2e-5
				if v == attnF16 {
					tol = 3e-3 // fp16 operands (2⁻¹¹ relative rounding)
				}
				h.check(fmt.Sprintf("Attention/%+v/%v", c, v), d, tol)
			}
			h.g.k.vision.variant = attnMMA3
		}
	})
}

// BenchmarkAttention times the fused attention at the released towers'
// shapes, each kernel (GPU time: the launches are queued back to back and
// waited for once).
func BenchmarkAttention(b *testing.B) {
	g := newGPU(b)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		name                       string
		T, heads, hd, groups, span int
	}{
		{"dinov2", 1029, 16, 64, 1, 0}, {"siglip", 1024, 16, 72, 1, 0},
		{"sam-windows", 25 * 196, 12, 64, 25, 14}, {"sam-global", 4096, 12, 64, 1, 64},
	} {
		D := c.heads * c.hd
		up := func(rows, cols int, scale float64) kernels.Tensor {
			t, err := g.Alloc(kernels.F32, rows, cols)
			if err != nil {
				b.Fatal(err)
			}
			v := make([]float32, rows*cols)
			for i := range v {
				v[i] = float32(rng.NormFloat64() * scale)
			}
			if err := g.Upload(t, kernelstest.F32Bytes(v)); err != nil {
				b.Fatal(err)
			}
			return t
		}
		a := kernels.Attention{Dst: up(c.T, D, 0), QKV: up(c.T, 3*D, 1), Heads: c.heads, Scale: 0.125, Groups: c.groups}
		if c.span > 0 {
			a.RelH, a.RelW, a.Span = up(2*c.span-1, c.hd, 0.1), up(2*c.span-1, c.hd, 0.1), c.span
		}
		n := float64(c.T / c.groups)
		flops := 4 * float64(c.groups) * n * n * float64(D)
		for _, v := range attnVariants() {
			b.Run(fmt.Sprintf("%s/%v", c.name, v), func(b *testing.B) {
				g.k.vision.variant = v
				g.Attention(a)
				if err := g.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					g.Attention(a)
				}
				if err := g.Sync(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(flops*float64(b.N)/time.Since(start).Seconds()/1e12, "TFLOP/s")
			})
		}
		g.k.vision.variant = attnMMA3
		for _, t := range []kernels.Tensor{a.Dst, a.QKV, a.RelH, a.RelW} {
			if t.Valid() {
				g.Free(t)
			}
		}
	}
}
