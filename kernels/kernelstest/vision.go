package kernelstest

import (
	"fmt"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// visionCases checks the ops the image towers use: LayerNorm without
// affine, GELU (erf and tanh), BiasAct, patch gathering (Im2Col), SAM's
// windows, residual branches, SpaceToDepth, CopyCols and attention (plain,
// grouped, with decomposed relative positions).
func visionCases(t *testing.T, h *H) {
	t.Run("LayerNorm", func(t *testing.T) { layerNormCases(t, h.On(t)) })
	t.Run("GELU", func(t *testing.T) { geluCases(t, h.On(t)) })
	t.Run("Im2Col", func(t *testing.T) { im2colCases(t, h.On(t)) })
	t.Run("Window", func(t *testing.T) { windowCases(t, h.On(t)) })
	t.Run("Residual", func(t *testing.T) { residualCases(t, h.On(t)) })
	t.Run("SpaceToDepth", func(t *testing.T) { spaceToDepthCases(t, h.On(t)) })
	t.Run("CopyCols", func(t *testing.T) { copyColsCases(t, h.On(t)) })
	t.Run("Attention", func(t *testing.T) { attentionCases(t, h.On(t)) })
}

func layerNormCases(t *testing.T, h *H) {
	for _, affine := range []bool{false, true} {
		for _, sh := range [][2]int{{5, 64}, {3, 1152}, {2, 77}} {
			T, C := sh[0], sh[1]
			x := h.Randn(T*C, 2)
			for i := range x {
				x[i] += 3 // a mean far from zero
			}
			var w, b []float32
			var wt, bt kernels.Tensor
			if affine {
				w, b = h.Randn(C, 1), h.Randn(C, 1)
				wt, bt = h.Upload(1, C, w), h.Upload(1, C, b)
			}
			d := h.Out(T, C)
			const eps = 1e-6
			h.Be.LayerNorm(d, h.Upload(T, C, x), wt, bt, eps)
			want := make([]float64, T*C)
			for r := range T {
				row := x[r*C : (r+1)*C]
				var s, q float64
				for _, v := range row {
					s += float64(v)
				}
				mean := s / float64(C)
				for _, v := range row {
					q += (float64(v) - mean) * (float64(v) - mean)
				}
				inv := 1 / math.Sqrt(q/float64(C)+eps)
				for c, v := range row {
					y := (float64(v) - mean) * inv
					if affine {
						y = y*float64(w[c]) + float64(b[c])
					}
					want[r*C+c] = y
				}
			}
			h.Check(fmt.Sprintf("affine=%v/%dx%d", affine, T, C), h.Get(d), want, 1e-5)
		}
	}
}

// geluRef is GELU in float64 (exact or tanh form).
func geluRef(x float64, f kernels.Activation) float64 {
	if f == kernels.GELUTanh {
		return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
	}
	return 0.5 * x * (1 + math.Erf(x/math.Sqrt2))
}

func geluCases(t *testing.T, h *H) {
	for _, f := range []kernels.Activation{kernels.GELU, kernels.GELUTanh} {
		T, C := 7, 301
		x := h.Randn(T*C, 3)
		x[0], x[1], x[2], x[3] = 0, -12, 12, -0.001 // tails and the origin
		bias := h.Randn(C, 1)
		xt := h.Upload(T, C, x)
		d := h.Out(T, C)
		h.Be.Act(d, xt, f)
		want := make([]float64, T*C)
		for i, v := range x {
			want[i] = geluRef(float64(v), f)
		}
		h.Check(fmt.Sprintf("Act/%d", f), h.Get(d), want, 1e-6)

		d2 := h.Out(T, C)
		h.Be.BiasAct(d2, xt, h.Upload(1, C, bias), f)
		for i, v := range x {
			want[i] = geluRef(float64(v)+float64(bias[i%C]), f)
		}
		h.Check(fmt.Sprintf("BiasAct/%d", f), h.Get(d2), want, 1e-6)

		// In place, without bias.
		y := h.Upload(T, C, x)
		h.Be.BiasAct(y, y, kernels.Tensor{}, f)
		for i, v := range x {
			want[i] = geluRef(float64(v), f)
		}
		h.Check(fmt.Sprintf("BiasAct/%d/in-place", f), h.Get(y), want, 1e-6)
	}
	// The other activations through BiasAct.
	T, C := 3, 50
	x, bias := h.Randn(T*C, 2), h.Randn(C, 1)
	for _, f := range []kernels.Activation{kernels.Tanh, kernels.Sigmoid, kernels.ReLUSquared} {
		d := h.Out(T, C)
		h.Be.BiasAct(d, h.Upload(T, C, x), h.Upload(1, C, bias), f)
		want := make([]float64, T*C)
		for i, v := range x {
			u := float64(v) + float64(bias[i%C])
			switch f {
			case kernels.Tanh:
				want[i] = math.Tanh(u)
			case kernels.Sigmoid:
				want[i] = 1 / (1 + math.Exp(-u))
			default:
				u = max(u, 0)
				want[i] = u * u
			}
		}
		h.Check(fmt.Sprintf("BiasAct/%d", f), h.Get(d), want, 1e-6)
	}
}

func im2colCases(t *testing.T, h *H) {
	cases := []kernels.Conv{
		{Channels: 3, Height: 28, Width: 42, Kernel: 14, Stride: 14},                         // ViT patches
		{Channels: 3, Height: 32, Width: 32, Kernel: 16, Stride: 16},                         // SAM patches
		{Channels: 5, Height: 6, Width: 7, Kernel: 3, Stride: 1, Pad: 1, ChannelsLast: true}, // SAM neck
		{Channels: 2, Height: 5, Width: 5, Kernel: 3, Stride: 2, Pad: 1},
	}
	for _, c := range cases {
		src := h.Randn(c.Channels*c.Height*c.Width, 1)
		OH, OW, K := c.OutHeight(), c.OutWidth(), c.Kernel
		cols := c.Channels * K * K
		d := h.Out(OH*OW, cols)
		rows := c.Channels
		if c.ChannelsLast {
			rows = c.Height * c.Width
		}
		h.Be.Im2Col(d, h.Upload(rows, len(src)/rows, src), c)
		want := make([]float64, OH*OW*cols)
		for oy := range OH {
			for ox := range OW {
				for ch := range c.Channels {
					for ky := range K {
						for kx := range K {
							y, x := oy*c.Stride-c.Pad+ky, ox*c.Stride-c.Pad+kx
							if y < 0 || y >= c.Height || x < 0 || x >= c.Width {
								continue
							}
							var v float32
							if c.ChannelsLast {
								v = src[(y*c.Width+x)*c.Channels+ch]
							} else {
								v = src[(ch*c.Height+y)*c.Width+x]
							}
							want[(oy*OW+ox)*cols+(ch*K+ky)*K+kx] = float64(v)
						}
					}
				}
			}
		}
		h.Check(fmt.Sprintf("%+v", c), h.Get(d), want, 0)
	}
}

func windowCases(t *testing.T, h *H) {
	for _, w := range []kernels.Window{{Height: 7, Width: 8, Size: 3}, {Height: 6, Width: 6, Size: 3}, {Height: 5, Width: 9, Size: 14}} {
		C := 5
		src := h.Randn(w.Height*w.Width*C, 1)
		win := h.Out(w.Tokens(), C)
		h.Be.WindowPartition(win, h.Upload(w.Height*w.Width, C, src), w)
		want := make([]float64, w.Tokens()*C)
		S := w.Size
		nw := (w.Width + S - 1) / S
		for y := range w.Height {
			for x := range w.Width {
				r := ((y/S)*nw+x/S)*S*S + (y%S)*S + x%S
				for c := range C {
					want[r*C+c] = float64(src[(y*w.Width+x)*C+c])
				}
			}
		}
		h.Check(fmt.Sprintf("Partition/%+v", w), h.Get(win), want, 0)

		// Merge adds the window rows (padding dropped) into a map.
		base := h.Randn(w.Height*w.Width*C, 1)
		winVals := h.Randn(w.Tokens()*C, 1)
		m := h.Upload(w.Height*w.Width, C, base)
		h.Be.WindowMerge(m, h.Upload(w.Tokens(), C, winVals), w)
		want2 := Widen(base)
		for y := range w.Height {
			for x := range w.Width {
				r := ((y/S)*nw+x/S)*S*S + (y%S)*S + x%S
				for c := range C {
					want2[(y*w.Width+x)*C+c] += float64(winVals[r*C+c])
				}
			}
		}
		h.Check(fmt.Sprintf("Merge/%+v", w), h.Get(m), want2, 1e-7)
	}
}

func residualCases(t *testing.T, h *H) {
	T, C := 9, 130
	x, y := h.Randn(T*C, 1), h.Randn(T*C, 1)
	bias, gamma := h.Randn(C, 1), h.Randn(C, 0.1)
	for _, c := range []struct{ bias, gamma bool }{{false, false}, {true, false}, {false, true}, {true, true}} {
		var bt, gt kernels.Tensor
		if c.bias {
			bt = h.Upload(1, C, bias)
		}
		if c.gamma {
			gt = h.Upload(1, C, gamma)
		}
		want := make([]float64, T*C)
		for i := range want {
			v := float64(y[i])
			if c.bias {
				v += float64(bias[i%C])
			}
			if c.gamma {
				v *= float64(gamma[i%C])
			}
			want[i] = float64(x[i]) + v
		}
		d := h.Out(T, C)
		h.Be.Residual(d, h.Upload(T, C, x), h.Upload(T, C, y), bt, gt)
		h.Check(fmt.Sprintf("bias=%v,gamma=%v", c.bias, c.gamma), h.Get(d), want, 1e-6)
		// In place on x, as the towers use it.
		xt := h.Upload(T, C, x)
		h.Be.Residual(xt, xt, h.Upload(T, C, y), bt, gt)
		h.Check(fmt.Sprintf("bias=%v,gamma=%v/in-place", c.bias, c.gamma), h.Get(xt), want, 1e-6)
	}
}

func spaceToDepthCases(t *testing.T, h *H) {
	for _, c := range []struct{ hh, w, f, C int }{{4, 6, 2, 3}, {6, 6, 3, 2}, {8, 8, 2, 32}} {
		src := h.Randn(c.hh*c.w*c.C, 1)
		oh, ow := c.hh/c.f, c.w/c.f
		CC := c.C * c.f * c.f
		d := h.Out(oh*ow, CC)
		h.Be.SpaceToDepth(d, h.Upload(c.hh*c.w, c.C, src), c.hh, c.w, c.f)
		want := make([]float64, oh*ow*CC)
		for ty := range oh {
			for tx := range ow {
				for dy := range c.f {
					for dx := range c.f {
						for ch := range c.C {
							want[(ty*ow+tx)*CC+ch*c.f*c.f+dy*c.f+dx] = float64(src[((ty*c.f+dy)*c.w+tx*c.f+dx)*c.C+ch])
						}
					}
				}
			}
		}
		h.Check(fmt.Sprintf("%+v", c), h.Get(d), want, 0)
	}
}

func copyColsCases(t *testing.T, h *H) {
	R := 6
	parts := []int{5, 17, 3}
	total := 25
	d := h.Out(R, total)
	want := make([]float64, R*total)
	col := 0
	for _, n := range parts {
		src := h.Randn(R*n, 1)
		h.Be.CopyCols(d, h.Upload(R, n, src), col)
		for r := range R {
			for j := range n {
				want[r*total+col+j] = float64(src[r*n+j])
			}
		}
		col += n
	}
	h.Check("concat", h.Get(d), want, 0)
}

// attentionRef computes kernels.Attention in float64.
func attentionRef(qkv []float32, T, heads, hd, groups int, scale float64, relH, relW []float32, span int) []float64 {
	D := heads * hd
	n := T / groups
	out := make([]float64, T*D)
	sc := make([]float64, n)
	for g := range groups {
		for h := range heads {
			for i := range n {
				qi := (g*n + i) * 3 * D
				m := math.Inf(-1)
				for j := range n {
					kj := (g*n+j)*3*D + D
					var s float64
					for d := range hd {
						s += float64(qkv[qi+h*hd+d]) * float64(qkv[kj+h*hd+d])
					}
					s *= scale
					if relH != nil {
						qy, qx, ky, kx := i/span, i%span, j/span, j%span
						for d := range hd {
							q := float64(qkv[qi+h*hd+d])
							s += q*float64(relH[(qy-ky+span-1)*hd+d]) + q*float64(relW[(qx-kx+span-1)*hd+d])
						}
					}
					sc[j] = s
					m = max(m, s)
				}
				var sum float64
				for j := range sc {
					sc[j] = math.Exp(sc[j] - m)
					sum += sc[j]
				}
				o := out[(g*n+i)*D+h*hd:]
				for j := range n {
					vj := (g*n+j)*3*D + 2*D + h*hd
					p := sc[j] / sum
					for d := range hd {
						o[d] += p * float64(qkv[vj+d])
					}
				}
			}
		}
	}
	return out
}

func attentionCases(t *testing.T, h *H) {
	cases := []struct {
		name          string
		T, heads, hd  int
		groups, span  int
		rel           bool
		scale, spread float64
		tol           float64 // 0: 2e-5
	}{
		{name: "small", T: 37, heads: 2, hd: 24, groups: 1, scale: 0.2, spread: 1},
		{name: "two-blocks", T: 130, heads: 3, hd: 64, groups: 1, scale: 0.125, spread: 2},
		{name: "siglip-head", T: 70, heads: 2, hd: 72, groups: 1, scale: 1 / math.Sqrt(72), spread: 3},
		{name: "wide-head", T: 65, heads: 1, hd: 128, groups: 1, scale: 1 / math.Sqrt(128), spread: 2},
		// Scores of magnitude ~50: a GPU's split-bf16 products (≈2⁻¹⁷
		// relative) leave ~1e-4 in the softmax weights; fp32 ~1e-6.
		{name: "peaked", T: 100, heads: 2, hd: 32, groups: 1, scale: 1, spread: 3, tol: 1e-4},
		{name: "windows", T: 4 * 9, heads: 2, hd: 16, groups: 4, span: 3, rel: true, scale: 0.25, spread: 1},
		{name: "windows-14", T: 2 * 196, heads: 2, hd: 64, groups: 2, span: 14, rel: true, scale: 0.125, spread: 1},
		{name: "global-rel", T: 81, heads: 3, hd: 32, groups: 1, span: 9, rel: true, scale: 1 / math.Sqrt(32), spread: 1},
		{name: "global-rel-64", T: 256, heads: 2, hd: 64, groups: 1, span: 16, rel: true, scale: 0.125, spread: 1},
		// A span of 64 (SAM's global blocks): a GPU's 64-key tiles each lie
		// in one row of the key grid.
		{name: "global-rel-span64", T: 4096, heads: 1, hd: 16, groups: 1, span: 64, rel: true, scale: 0.25, spread: 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := h.On(t)
			D := c.heads * c.hd
			qkv := h.Randn(c.T*3*D, c.spread)
			a := kernels.Attention{
				Dst: h.Out(c.T, D), QKV: h.Upload(c.T, 3*D, qkv), Heads: c.heads,
				Scale: float32(c.scale), Groups: c.groups,
			}
			var relH, relW []float32
			if c.rel {
				relH, relW = h.Randn((2*c.span-1)*c.hd, 0.3), h.Randn((2*c.span-1)*c.hd, 0.3)
				a.RelH, a.RelW, a.Span = h.Upload(2*c.span-1, c.hd, relH), h.Upload(2*c.span-1, c.hd, relW), c.span
			}
			h.Be.Attention(a)
			want := attentionRef(qkv, c.T, c.heads, c.hd, c.groups, float64(float32(c.scale)), relH, relW, c.span)
			tol := c.tol
			if tol == 0 {
				tol = 2e-5
			}
			h.Check("out", h.Get(a.Dst), want, tol)
		})
	}
}
