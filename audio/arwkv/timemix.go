package arwkv

import "math"

// wkvInputs are the per-token inputs of the RWKV-7 WKV recurrence, each
// [T, C] with heads of 64 consecutive channels.
type wkvInputs struct {
	r, decay, k, v, a, b []float32
}

// timeMix is the A-RWKV attention block: ConvShift lerps, the RWKV-7 x070
// projections and LoRAs, a Bi-WKV (forward and time-reversed scans mixed
// by a per-token, per-head gate), GroupNorm, the bonus term and the gated
// output projection. vFirst holds layer 0's values for the value residual.
func (t *Tagger) timeMix(ly *layer, x []float32, vFirst *[]float32, first bool) []float32 {
	T, C, H := t.gridT*t.gridF, t.width, t.heads
	xx := t.convShift(x, ly.attShift)
	xr, xw, xk := lerp(x, xx, ly.xr, C), lerp(x, xx, ly.xw, C), lerp(x, xx, ly.xk, C)
	xv, xa, xg := lerp(x, xx, ly.xv, C), lerp(x, xx, ly.xa, C), lerp(x, xx, ly.xg, C)

	r, k, v := make([]float32, T*C), make([]float32, T*C), make([]float32, T*C)
	linear(r, xr, ly.receptance, nil, T, C, C)
	linear(k, xk, ly.key, nil, T, C, C)
	linear(v, xv, ly.value, nil, T, C, C)

	decay := decayLoRA(ly, xw, T, C)
	if first {
		*vFirst = v
	} else {
		v = valueResidual(ly, xv, v, *vFirst, T, C)
	}
	alpha := loraSigmoid(xa, ly.a1, ly.a2, ly.a0, T, C, ly.da)
	g := gateLoRA(ly, xg, T, C)

	kHat, kTilde := keys(ly, k, alpha, C)
	a, b := make([]float32, T*C), make([]float32, T*C)
	for i := range a {
		a[i] = -kHat[i]
		b[i] = kHat[i] * alpha[i]
	}
	in := wkvInputs{r: r, decay: decay, k: kTilde, v: v, a: a, b: b}
	y := biWKV(in, headGate(ly, xx, T, H), T, H)

	for tok := range T {
		for h := range H {
			o := tok*C + h*headSize
			normRow(y[o:o+headSize], y[o:o+headSize], ly.lnxW[h*headSize:], ly.lnxB[h*headSize:], 64e-5)
		}
	}
	addBonus(y, r, kTilde, v, ly.rk, T, C)
	for i := range y {
		y[i] *= g[i]
	}
	out := make([]float32, T*C)
	linear(out, y, ly.outW, nil, T, C, C)
	return out
}

// decayLoRA returns the per-channel decay exp(−e^{−½}·σ(w0 + tanh(xw·w1)·w2)).
func decayLoRA(ly *layer, xw []float32, T, C int) []float32 {
	mid := make([]float32, T*ly.dw)
	matmul(mid, xw, ly.w1, T, C, ly.dw)
	for i, v := range mid {
		mid[i] = float32(math.Tanh(float64(v)))
	}
	z := make([]float32, T*C)
	matmul(z, mid, ly.w2, T, ly.dw, C)
	for i, v := range z {
		s := 1 / (1 + math.Exp(-float64(v+ly.w0[i%C])))
		z[i] = float32(math.Exp(-0.6065306597126334 * s))
	}
	return z
}

// loraSigmoid returns σ(bias + (x·m1)·m2) with a linear bottleneck of rank d.
func loraSigmoid(x, m1, m2, bias []float32, T, C, d int) []float32 {
	mid := make([]float32, T*d)
	matmul(mid, x, m1, T, C, d)
	out := make([]float32, T*C)
	matmul(out, mid, m2, T, d, C)
	for i, v := range out {
		out[i] = sigmoid(v + bias[i%C])
	}
	return out
}

// valueResidual mixes layer 0's values into v: v + (vFirst − v)·σ(v0 + (xv·v1)·v2).
func valueResidual(ly *layer, xv, v, vFirst []float32, T, C int) []float32 {
	mix := loraSigmoid(xv, ly.v1, ly.v2, ly.v0, T, C, ly.dv)
	out := make([]float32, len(v))
	for i := range v {
		out[i] = v[i] + (vFirst[i]-v[i])*mix[i]
	}
	return out
}

// gateLoRA returns the output gate σ(xg·g1)·g2.
func gateLoRA(ly *layer, xg []float32, T, C int) []float32 {
	mid := make([]float32, T*ly.dg)
	matmul(mid, xg, ly.g1, T, C, ly.dg)
	for i, v := range mid {
		mid[i] = sigmoid(v)
	}
	out := make([]float32, T*C)
	matmul(out, mid, ly.g2, T, ly.dg, C)
	return out
}

// keys returns κ̂ (k·k_k, L2-normalised per head, eps 1e-12) and
// k̃ = k·(1 + (α − 1)·k_a).
func keys(ly *layer, k, alpha []float32, C int) (kHat, kTilde []float32) {
	kHat, kTilde = make([]float32, len(k)), make([]float32, len(k))
	for o := 0; o < len(k); o += headSize {
		var ss float64
		for n := range headSize {
			c := (o + n) % C
			kk := k[o+n] * ly.kk[c]
			kHat[o+n] = kk
			ss += float64(kk) * float64(kk)
		}
		inv := float32(1 / max(math.Sqrt(ss), 1e-12))
		for n := range headSize {
			kHat[o+n] *= inv
		}
	}
	for i, kv := range k {
		kTilde[i] = kv * (1 + (alpha[i]-1)*ly.ka[i%C])
	}
	return kHat, kTilde
}

// headGate returns the Bi-WKV mixing gate σ(Σ_n gate[h,n]·xx[t, h·64+n]),
// [T, H]: a grouped 1×1 convolution of the ConvShift residual.
func headGate(ly *layer, xx []float32, T, H int) []float32 {
	C := H * headSize
	out := make([]float32, T*H)
	for tok := range T {
		for h := range H {
			var s float32
			for n := range headSize {
				s += ly.gate[h*headSize+n] * xx[tok*C+h*headSize+n]
			}
			out[tok*H+h] = sigmoid(s)
		}
	}
	return out
}

// biWKV runs the WKV recurrence forward from a zero state and again over
// the time-reversed sequence, returning gate·y_f + (1 − gate)·y_b per
// token and head ([T, C]). Heads and directions run in parallel.
func biWKV(in wkvInputs, gate []float32, T, H int) []float32 {
	C := H * headSize
	yf, yb := make([]float32, T*C), make([]float32, T*C)
	parallelFor(2*H, func(lo, hi int) {
		for job := lo; job < hi; job++ {
			h := job / 2
			if job%2 == 0 {
				wkvScan(in, yf, h, C, T, false)
			} else {
				wkvScan(in, yb, h, C, T, true)
			}
		}
	})
	y := make([]float32, T*C)
	for tok := range T {
		for h := range H {
			gt := gate[tok*H+h]
			o := tok*C + h*headSize
			for n := range headSize {
				y[o+n] = gt*yf[o+n] + (1-gt)*yb[o+n]
			}
		}
	}
	return y
}

// wkvScan runs one head's RWKV-7 recurrence over all tokens (in reverse
// order when backward) from a zero state S (rows = value index, columns =
// key index):
//
//	S ← S·diag(decay) + (S·a)·bᵀ + v·k̃ᵀ,   y = S·r
//
// writing y at each token's own index.
func wkvScan(in wkvInputs, y []float32, h, C, T int, backward bool) {
	const N = headSize
	var s [N * N]float32
	for step := range T {
		tok := step
		if backward {
			tok = T - 1 - step
		}
		o := tok*C + h*N
		r, w, k := in.r[o:o+N], in.decay[o:o+N], in.k[o:o+N]
		v, a, b := in.v[o:o+N], in.a[o:o+N], in.b[o:o+N]
		out := y[o : o+N]
		for i := range N {
			row := s[i*N : (i+1)*N]
			var sa float32
			for j, av := range a {
				sa += av * row[j]
			}
			vi := v[i]
			var acc float32
			for j := range row {
				nv := row[j]*w[j] + k[j]*vi + sa*b[j]
				row[j] = nv
				acc += nv * r[j]
			}
			out[i] = acc
		}
	}
}

// addBonus adds (Σ_n r·k̃·r_k)·v per head to y.
func addBonus(y, r, kTilde, v, rk []float32, T, C int) {
	for tok := range T {
		for h := 0; h < C/headSize; h++ {
			o := tok*C + h*headSize
			var s float32
			for n := range headSize {
				s += r[o+n] * kTilde[o+n] * rk[h*headSize+n]
			}
			for n := range headSize {
				y[o+n] += s * v[o+n]
			}
		}
	}
}
