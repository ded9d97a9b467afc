package kernelstest

import (
	"fmt"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// audioCases checks the ops A-RWKV uses: the depthwise 3×3 convolution of
// its 2-D token shift, Lerp, the row flip, the per-head gate mix and the
// batched WKV7 of its bidirectional recurrence, and the mean over rows of
// its pooling. Shapes include the real model's 62×8 grid, batches of
// several images, widths that are not multiples of the GPU's block sizes,
// and views at nonzero offsets.
func audioCases(t *testing.T, h *H) {
	t.Run("DepthwiseConv3", func(t *testing.T) { convCases(t, h.On(t)) })
	t.Run("Lerp", func(t *testing.T) { lerpCases(t, h.On(t)) })
	t.Run("FlipRows", func(t *testing.T) { flipCases(t, h.On(t)) })
	t.Run("GateMix", func(t *testing.T) { gateCases(t, h.On(t)) })
	t.Run("MeanRows", func(t *testing.T) { meanCases(t, h.On(t)) })
	t.Run("WKV7Batched", func(t *testing.T) { wkvBatchCases(t, h.On(t)) })
	t.Run("WKV7Bi", func(t *testing.T) { wkvBiCases(t, h.On(t)) })
}

// offsetUpload allocates [rows+1, cols], fills it and returns the view of
// rows [1, rows+1) holding v (a tensor at a nonzero offset).
func (h *H) offsetUpload(rows, cols int, v []float32) kernels.Tensor {
	h.T.Helper()
	pad := append(h.Randn(cols, 1), v...)
	return h.Upload(rows+1, cols, pad).Slice(1, rows+1)
}

func convCases(t *testing.T, h *H) {
	for _, c := range []struct{ n, hh, w, C int }{{1, 62, 8, 192}, {3, 8, 4, 128}, {2, 5, 3, 72}, {1, 1, 1, 16}, {2, 1, 7, 33}} {
		name := fmt.Sprintf("%dx%dx%d_C%d", c.n, c.hh, c.w, c.C)
		rows := c.n * c.hh * c.w
		xv := h.Randn(rows*c.C, 1)
		kv := h.Randn(c.C*9, 0.5)
		x := h.offsetUpload(rows, c.C, xv)
		k := h.Upload(c.C, 9, kv)
		dst := h.Out(rows, c.C)
		h.Be.DepthwiseConv3(dst, x, k, c.hh, c.w)
		want := make([]float64, rows*c.C)
		for p := range rows {
			img, pix := p/(c.hh*c.w), p%(c.hh*c.w)
			i, j := pix/c.w, pix%c.w
			for ch := range c.C {
				var s float64
				for di := -1; di <= 1; di++ {
					for dj := -1; dj <= 1; dj++ {
						ii, jj := i+di, j+dj
						if ii < 0 || ii >= c.hh || jj < 0 || jj >= c.w {
							continue
						}
						q := img*c.hh*c.w + ii*c.w + jj
						s += float64(kv[ch*9+(di+1)*3+dj+1]) * float64(xv[q*c.C+ch])
					}
				}
				want[p*c.C+ch] = s
			}
		}
		h.Check(name, h.Get(dst), want, 1e-6)
	}
}

func lerpCases(t *testing.T, h *H) {
	for _, c := range []struct{ T, C, n int }{{496, 192, 6}, {7, 100, 1}, {1, 64, 3}} {
		xv, dv := h.Randn(c.T*c.C, 1), h.Randn(c.T*c.C, 1)
		x, d := h.offsetUpload(c.T, c.C, xv), h.Upload(c.T, c.C, dv)
		var dst, mix []kernels.Tensor
		var mv [][]float32
		for range c.n {
			m := h.Uniform(c.C, -1, 1)
			mv = append(mv, m)
			mix = append(mix, h.Upload(1, c.C, m))
			dst = append(dst, h.Out(c.T, c.C))
		}
		h.Be.Lerp(dst, x, d, mix)
		for i := range c.n {
			want := make([]float64, c.T*c.C)
			for e := range want {
				want[e] = float64(xv[e]) + float64(dv[e])*float64(mv[i][e%c.C])
			}
			h.Check(fmt.Sprintf("T%d_C%d_mix%d", c.T, c.C, i), h.Get(dst[i]), want, 1e-6)
		}
	}
}

func flipCases(t *testing.T, h *H) {
	for _, c := range []struct{ rows, C, n int }{{992, 192, 496}, {12, 70, 3}, {5, 64, 5}, {4, 8, 1}} {
		xv := h.Randn(c.rows*c.C, 1)
		x := h.offsetUpload(c.rows, c.C, xv)
		dst := h.Out(c.rows, c.C)
		h.Be.FlipRows(dst, x, c.n)
		want := make([]float64, c.rows*c.C)
		for t := range c.rows {
			g := t / c.n * c.n
			src := g + c.n - 1 - (t - g)
			for ch := range c.C {
				want[t*c.C+ch] = float64(xv[src*c.C+ch])
			}
		}
		h.Check(fmt.Sprintf("%dx%d_groups%d", c.rows, c.C, c.n), h.Get(dst), want, 0)
	}
}

func gateCases(t *testing.T, h *H) {
	for _, c := range []struct{ T, C, H int }{{496, 384, 6}, {9, 128, 2}, {3, 96, 3}} {
		av, bv, gv := h.Randn(c.T*c.C, 1), h.Randn(c.T*c.C, 1), h.Uniform(c.T*c.H, 0, 1)
		a, b, g := h.offsetUpload(c.T, c.C, av), h.Upload(c.T, c.C, bv), h.Upload(c.T, c.H, gv)
		dst := h.Out(c.T, c.C)
		h.Be.GateMix(dst, a, b, g)
		N := c.C / c.H
		want := make([]float64, c.T*c.C)
		for e := range want {
			t, ch := e/c.C, e%c.C
			gg := float64(gv[t*c.H+ch/N])
			want[e] = gg*float64(av[e]) + (1-gg)*float64(bv[e])
		}
		h.Check(fmt.Sprintf("T%d_C%d_H%d", c.T, c.C, c.H), h.Get(dst), want, 1e-6)
	}
}

func meanCases(t *testing.T, h *H) {
	for _, c := range []struct{ m, n, C int }{{1, 496, 192}, {4, 32, 128}, {3, 1, 50}, {2, 1000, 768}} {
		xv := h.Randn(c.m*c.n*c.C, 1)
		for i := range xv {
			xv[i] += 3 // a mean far from zero, so cancellation would show
		}
		x := h.offsetUpload(c.m*c.n, c.C, xv)
		dst := h.Out(c.m, c.C)
		h.Be.MeanRows(dst, x)
		want := make([]float64, c.m*c.C)
		for i := range c.m {
			for ch := range c.C {
				var s float64
				for t := i * c.n; t < (i+1)*c.n; t++ {
					s += float64(xv[t*c.C+ch])
				}
				want[i*c.C+ch] = s / float64(c.n)
			}
		}
		h.Check(fmt.Sprintf("%dx%d_C%d", c.m, c.n, c.C), h.Get(dst), want, 1e-6)
	}
}

// wkvInputs returns random WKV inputs for T rows of C channels: r, w, k,
// v, a, b with a = −k̂ and b = 0.7·k̂ for a unit k̂ per head, as Prep7 makes
// them.
func (h *H) wkvInputs(T, C int) (r, w, k, v, a, b []float32) {
	r, k, v = h.Randn(T*C, 0.5), h.Randn(T*C, 0.5), h.Randn(T*C, 0.5)
	w = h.Uniform(T*C, 0.5, 1)
	kh := h.Randn(T*C, 1)
	a, b = make([]float32, T*C), make([]float32, T*C)
	for t := range T {
		for hd := range C / 64 {
			o := t*C + hd*64
			var n float64
			for j := range 64 {
				n += float64(kh[o+j]) * float64(kh[o+j])
			}
			inv := float32(1 / math.Sqrt(n))
			for j := range 64 {
				kk := kh[o+j] * inv
				a[o+j], b[o+j] = -kk, kk*0.7
			}
		}
	}
	return r, w, k, v, a, b
}

// WKVRef advances the float64 head state S (64×64, [value row][key
// column]) by the token whose head values start at o, writing y[o:o+64]:
// S ← S·diag(w) + (S·a)·bᵀ + v·kᵀ, y = S·r.
func WKVRef(S []float64, y []float64, r, w, k, v, a, b []float32, o int) {
	for i := range 64 {
		row := S[i*64 : (i+1)*64]
		var sa float64
		for j := range 64 {
			sa += float64(a[o+j]) * row[j]
		}
		var yy float64
		for j := range 64 {
			row[j] = row[j]*float64(w[o+j]) + float64(k[o+j])*float64(v[o+i]) + sa*float64(b[o+j])
			yy += row[j] * float64(r[o+j])
		}
		y[o+i] = yy
	}
}

// wkvBiCases runs the optional kernels.BiWKV against float64 recurrences
// over each group of rows forward and backward.
func wkvBiCases(t *testing.T, h *H) {
	bi, ok := h.Be.(kernels.BiWKV)
	if !ok {
		t.Skip("backend has no WKV7Bi")
	}
	for _, c := range []struct{ seqs, n, C int }{{2, 40, 128}, {1, 496, 192}, {3, 5, 64}} {
		T, C, H := c.seqs*c.n, c.C, c.C/64
		r, w, k, v, a, b := h.wkvInputs(T, C)
		s0 := h.Randn(2*c.seqs*H*64*64, 0.2)
		yf, yb := h.Out(T, C), h.Out(T, C)
		st := h.Upload(2*c.seqs*H*64, 64, s0)
		bi.WKV7Bi(yf, yb, st, h.offsetUpload(T, C, r), h.Upload(T, C, w), h.Upload(T, C, k), h.Upload(T, C, v), h.Upload(T, C, a), h.Upload(T, C, b), c.n)
		wantF, wantB := make([]float64, T*C), make([]float64, T*C)
		wantS := Widen(s0)
		for dir, y := range [][]float64{wantF, wantB} {
			for q := range c.seqs {
				for hd := range H {
					job := (dir*c.seqs+q)*H + hd
					S := wantS[job*4096 : (job+1)*4096]
					for i := range c.n {
						t := q*c.n + i
						if dir == 1 {
							t = q*c.n + c.n - 1 - i
						}
						WKVRef(S, y, r, w, k, v, a, b, t*C+hd*64)
					}
				}
			}
		}
		name := fmt.Sprintf("seqs%d_n%d_C%d", c.seqs, c.n, c.C)
		h.Check(name+"/forward", h.Get(yf), wantF, 1e-5)
		h.Check(name+"/backward", h.Get(yb), wantB, 1e-5)
		h.Check(name+"/state", h.Get(st), wantS, 1e-5)
	}
}

// wkvBatchCases runs WKV7 over several sequences at once, each from its
// own state, against a float64 recurrence run sequence by sequence.
func wkvBatchCases(t *testing.T, h *H) {
	for _, c := range []struct{ seqs, L, C int }{{2, 40, 128}, {4, 17, 64}, {1, 33, 192}, {6, 1, 128}} {
		T, C, H := c.seqs*c.L, c.C, c.C/64
		r, w, k, v, a, b := h.wkvInputs(T, C)
		s0 := h.Randn(c.seqs*H*64*64, 0.2)
		y := h.Out(T, C)
		st := h.Upload(c.seqs*H*64, 64, s0)
		h.Be.WKV7(y, st, h.Upload(T, C, r), h.Upload(T, C, w), h.Upload(T, C, k), h.Upload(T, C, v), h.Upload(T, C, a), h.Upload(T, C, b))
		wantY := make([]float64, T*C)
		wantS := Widen(s0)
		for q := range c.seqs {
			for hd := range H {
				S := wantS[(q*H+hd)*4096 : (q*H+hd+1)*4096]
				for t := q * c.L; t < (q+1)*c.L; t++ {
					WKVRef(S, wantY, r, w, k, v, a, b, t*C+hd*64)
				}
			}
		}
		name := fmt.Sprintf("seqs%d_L%d_C%d", c.seqs, c.L, c.C)
		h.Check(name+"/y", h.Get(y), wantY, 1e-5)
		h.Check(name+"/state", h.Get(st), wantS, 1e-5)
	}
}
