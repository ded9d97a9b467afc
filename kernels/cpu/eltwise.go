package cpu

import "math"

// The element-wise kernels of the RWKV-7 block, per row; a kernelSet
// carries a portable and, where the CPU has them, SIMD versions.

// prep7Chan are Prep7's per-channel parameters (each [C]) and head size.
type prep7Chan struct {
	w0, a0, kk, ka, v0 []float32
	n                  int // head size
}

// prep7Generic computes the WKV inputs of one row of C channels in place
// (see kernels.Prep7): per head, k̂ = k ⊙ k_k / ‖k ⊙ k_k‖ (the norm in
// float64, at least 1e-12), α = σ(a0 + a), then a = −k̂, b = k̂ ⊙ α,
// k ⊙= 1 + (α − 1) ⊙ k_a, w = exp(−e^{−1/2}·σ(w0 + w)), and v += (v_first
// − v) ⊙ σ(v0 + zv) when zv is not nil, else v_first = v.
func prep7Generic(k, v, vf, w, a, b, zv []float32, p *prep7Chan) {
	N := p.n
	var buf [64]float32
	khat := buf[:]
	if N > len(buf) {
		khat = make([]float32, N)
	}
	khat = khat[:N]
	w0, a0, kk, ka, v0 := p.w0, p.a0, p.kk, p.ka, p.v0
	for h := 0; h < len(k); h += N {
		var norm float64
		for j := range N {
			khat[j] = k[h+j] * kk[h+j]
			norm += float64(khat[j]) * float64(khat[j])
		}
		inv := float32(1 / math.Max(math.Sqrt(norm), 1e-12))
		for j := range N {
			i := h + j
			kh := khat[j] * inv
			alpha := sigmoid(a0[i] + a[i])
			a[i] = -kh
			b[i] = kh * alpha
			k[i] *= 1 + (alpha-1)*ka[i]
			w[i] = expf(-decayScale * sigmoid(w0[i]+w[i]))
			if zv != nil {
				v[i] += (vf[i] - v[i]) * sigmoid(v0[i]+zv[i])
			} else {
				vf[i] = v[i]
			}
		}
	}
}

// sigmoidGeneric sets d[i] = σ(x[i]).
func sigmoidGeneric(d, x []float32) {
	x = x[:len(d)]
	for i, v := range x {
		d[i] = sigmoid(v)
	}
}

// reluSquaredGeneric sets d[i] = max(x[i], 0)².
func reluSquaredGeneric(d, x []float32) {
	x = x[:len(d)]
	for i, v := range x {
		v = max(v, 0)
		d[i] = v * v
	}
}

// lerpGeneric sets dst[i] = x[i] + d[i]·m[i].
func lerpGeneric(dst, x, d, m []float32) {
	n := len(dst)
	x, d, m = x[:n], d[:n], m[:n]
	for i := range dst {
		dst[i] = x[i] + d[i]*m[i]
	}
}

// dwTaps is the number of taps of a 3×3 kernel.
const dwTaps = 9

// dwKernels lays out C channels' 3×3 kernels k [C, 9] for dwconv: groups
// of 8 channels, each tap's 8 values together, [⌈C/8⌉][9][8] (zero past
// C).
func dwKernels(k []float32, C int) []float32 {
	kt := make([]float32, (C+7)/8*8*dwTaps)
	for c := range C {
		for t := range dwTaps {
			kt[dwIndex(c, t)] = k[c*dwTaps+t]
		}
	}
	return kt
}

// dwIndex is the index of channel c's tap t in dwKernels's layout.
func dwIndex(c, t int) int { return c/8*8*dwTaps + t*8 + c%8 }

// dwconvGeneric sets out[c] = Σ_t kt[tap t of channel c]·src[t][c] for
// c < len(out), the taps in order (a zero row stands for a tap outside the
// image).
func dwconvGeneric(out []float32, src *[9][]float32, kt []float32) {
	for c := range out {
		var acc float32
		for t, s := range src {
			acc += kt[dwIndex(c, t)] * s[c]
		}
		out[c] = acc
	}
}

// addGeneric sets dst[i] = x[i] + y[i].
func addGeneric(dst, x, y []float32) {
	n := len(dst)
	x, y = x[:n], y[:n]
	for i := range dst {
		dst[i] = x[i] + y[i]
	}
}

// tanhGeneric sets d[i] = tanh(x[i]).
func tanhGeneric(d, x []float32) {
	x = x[:len(d)]
	for i, v := range x {
		d[i] = float32(math.Tanh(float64(v)))
	}
}

// out7Generic finishes one head of Out7 whose group norm is in d: the
// bonus Σ r⊙k⊙rk, then d = (d + bonus·v) ⊙ g.
func out7Generic(d, r, k, v, g, rk []float32) {
	n := len(d)
	r, k, v, g, rk = r[:n], k[:n], v[:n], g[:n], rk[:n]
	var bonus float32
	for j := range n {
		bonus += r[j] * k[j] * rk[j]
	}
	for j := range n {
		d[j] = (d[j] + bonus*v[j]) * g[j]
	}
}

// gateMixGeneric sets d[i] = g·a[i] + (1 − g)·b[i].
func gateMixGeneric(d, a, b []float32, g float32) {
	n := len(d)
	a, b = a[:n], b[:n]
	for i := range d {
		d[i] = g*a[i] + (1-g)*b[i]
	}
}
