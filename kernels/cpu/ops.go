package cpu

import (
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// decayScale is e^{-1/2}: decay = exp(−e^{−1/2}·σ(z)).
const decayScale = 0.6065306597126334

func sigmoid(x float32) float32 { return 1 / (1 + expf(-x)) }

func isF32(ts ...kernels.Tensor) bool {
	for _, t := range ts {
		if t.DType != kernels.F32 || t.Buf == nil {
			return false
		}
		if buf, ok := t.Buf.(*buffer); !ok || buf.f32 == nil {
			return false
		}
	}
	return true
}

// Embed gathers rows of table.
func (b *Backend) Embed(dst, table, ids kernels.Tensor) {
	if !(isF32(dst) && ids.DType == kernels.I32 && dst.Rows == ids.Len() && dst.Cols == table.Cols && table.DType != kernels.I8) {
		b.fail("Embed", "dst %v, table %v, ids %v", dst, table, ids)
		return
	}
	idb := ids.Buf.(*buffer).i32[ids.Offset : ids.Offset+ids.Len()]
	raw, dt := weightBytes(table)
	d := b.f32(dst)
	C := table.Cols
	for t, id := range idb {
		row := d[t*C : t*C+C]
		if id < 0 || int(id) >= table.Rows {
			clear(row)
			continue
		}
		decodeRow(row, raw, dt, int(id)*C)
	}
}

// Linear sets dst = x·wᵀ.
func (b *Backend) Linear(dst, x, w kernels.Tensor) {
	if !(isF32(dst, x) && x.Cols == w.Cols && dst.Rows == x.Rows && dst.Cols == w.Rows) {
		b.fail("Linear", "dst %v, x %v, w %v", dst, x, w)
		return
	}
	b.product("Linear", b.f32(dst), x, w, false)
}

// MatMul sets dst = x·w.
func (b *Backend) MatMul(dst, x, w kernels.Tensor) {
	if !(isF32(dst, x) && x.Cols == w.Rows && dst.Rows == x.Rows && dst.Cols == w.Cols && w.DType != kernels.I8) {
		b.fail("MatMul", "dst %v, x %v, w %v", dst, x, w)
		return
	}
	b.product("MatMul", b.f32(dst), x, w, true)
}

// product sets d = x·wᵀ, or x·w with nn, for operands whose shapes fit,
// and reports whether it could. An I8 weight runs only whole and
// transposed (Linear): a view of one, or one under nn, fails op.
func (b *Backend) product(op string, d []float32, x, w kernels.Tensor, nn bool) bool {
	raw, dt := weightBytes(w)
	switch {
	case dt == kernels.I8 && (nn || w.Offset != 0):
		b.fail(op, "w %v: i8 weights run only whole, in Linear", w)
		return false
	case dt == kernels.I8:
		buf := w.Buf.(*buffer)
		linearI8(b.pool, d, b.f32(x), x.Rows, x.Cols, raw, buf.scale, &buf.sums, w.Rows)
	case nn:
		matmul(b.pool, d, b.f32(x), x.Rows, x.Cols, raw, dt, w.Cols)
	default:
		linear(b.pool, d, b.f32(x), x.Rows, x.Cols, raw, dt, w.Rows)
	}
	return true
}

// LayerNorm normalises rows.
func (b *Backend) LayerNorm(dst, x, w, bias kernels.Tensor, eps float32) {
	affine := w.Valid() || bias.Valid()
	if !(isF32(dst, x) && dst.Rows == x.Rows && dst.Cols == x.Cols) ||
		affine && !(isF32(w, bias) && w.Len() == x.Cols && bias.Len() == x.Cols) {
		b.fail("LayerNorm", "dst %v, x %v, w %v, b %v", dst, x, w, bias)
		return
	}
	d, xs := b.f32(dst), b.f32(x)
	var ws, bs []float32
	if affine {
		ws, bs = b.f32(w), b.f32(bias)
	}
	C := x.Cols
	ln := b.pool.ks.layerNorm
	b.pool.For(x.Rows, 8, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			ln(d[t*C:t*C+C], xs[t*C:t*C+C], ws, bs, eps)
		}
	})
}

// layerNormGeneric sets dst = (x − mean)/√(var + eps) ⊙ w + b (without w
// and b when w is nil), the mean and variance summed in float64.
func layerNormGeneric(dst, x, w, b []float32, eps float32) {
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var sq float64
	for _, v := range x {
		d := float64(v) - mean
		sq += d * d
	}
	inv := 1 / math.Sqrt(sq/float64(len(x))+float64(eps))
	m, s := float32(mean), float32(inv)
	if w == nil {
		for i, v := range x {
			dst[i] = (v - m) * s
		}
		return
	}
	for i, v := range x {
		dst[i] = (v-m)*s*w[i] + b[i]
	}
}

// ShiftMix forms token-shifted mixes and advances state.
func (b *Backend) ShiftMix(dst []kernels.Tensor, x, state kernels.Tensor, mix []kernels.Tensor) {
	ok := isF32(x, state) && len(dst) == len(mix) && state.Len() == x.Cols
	for i := range dst {
		ok = ok && isF32(dst[i], mix[i]) && dst[i].Rows == x.Rows && dst[i].Cols == x.Cols && mix[i].Len() == x.Cols
	}
	if !(ok) {
		b.fail("ShiftMix", "x %v, state %v, %d dst, %d mix", x, state, len(dst), len(mix))
		return
	}
	C := x.Cols
	xs, st := b.f32(x), b.f32(state)
	for i := range dst {
		d, m := b.f32(dst[i]), b.f32(mix[i])
		for t := range x.Rows {
			prev := st
			if t > 0 {
				prev = xs[(t-1)*C : t*C]
			}
			cur := xs[t*C : t*C+C]
			out := d[t*C : t*C+C]
			for c, v := range cur {
				out[c] = v + (prev[c]-v)*m[c]
			}
		}
	}
	if x.Rows > 0 {
		copy(st, xs[(x.Rows-1)*C:])
	}
}

// Act applies f element-wise.
func (b *Backend) Act(dst, x kernels.Tensor, f kernels.Activation) {
	if !(isF32(dst, x) && dst.Len() == x.Len() && knownAct(f)) {
		b.fail("Act", "dst %v, x %v, function %d", dst, x, f)
		return
	}
	d, xs, ks := b.f32(dst), b.f32(x), b.pool.ks
	b.pool.For(len(d), 16384, func(lo, hi int) {
		ks.act(d[lo:hi], xs[lo:hi], f)
	})
}

// act sets d[i] = f(x[i]) for i < len(d), f one of knownAct's functions.
func (ks *kernelSet) act(d, x []float32, f kernels.Activation) {
	switch f {
	case kernels.Tanh:
		ks.tanh(d, x)
	case kernels.Sigmoid:
		ks.sigmoid(d, x)
	case kernels.ReLUSquared:
		ks.reluSquared(d, x)
	default:
		geluRange(d, x, f)
	}
}

// Add sets dst = a + b, broadcasting a one-row b.
func (b *Backend) Add(dst, x, y kernels.Tensor) {
	if !(isF32(dst, x, y) && dst.Len() == x.Len() && (y.Len() == x.Len() || (y.Rows == 1 && y.Cols == x.Cols))) {
		b.fail("Add", "dst %v, a %v, b %v", dst, x, y)
		return
	}
	d, xs, ys := b.f32(dst), b.f32(x), b.f32(y)
	add := b.pool.ks.add
	if len(ys) == len(xs) {
		b.pool.For(len(d), 16384, func(lo, hi int) {
			add(d[lo:hi], xs[lo:hi], ys[lo:hi])
		})
		return
	}
	C := y.Cols
	b.pool.For(x.Rows, max(1, 16384/max(C, 1)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			add(d[t*C:(t+1)*C], xs[t*C:(t+1)*C], ys)
		}
	})
}

// Mul sets dst = a ⊙ b.
func (b *Backend) Mul(dst, x, y kernels.Tensor) {
	if !(isF32(dst, x, y) && dst.Len() == x.Len() && y.Len() == x.Len()) {
		b.fail("Mul", "dst %v, a %v, b %v", dst, x, y)
		return
	}
	d, xs, ys := b.f32(dst), b.f32(x), b.f32(y)
	b.pool.For(len(d), 16384, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			d[i] = xs[i] * ys[i]
		}
	})
}

// Copy copies src into dst.
func (b *Backend) Copy(dst, src kernels.Tensor) {
	if !(dst.DType == src.DType && dst.Len() == src.Len()) {
		b.fail("Copy", "dst %v, src %v", dst, src)
		return
	}
	db, sb := dst.Buf.(*buffer), src.Buf.(*buffer)
	switch {
	case db.f32 != nil && sb.f32 != nil:
		copy(b.f32(dst), b.f32(src))
	case db.i32 != nil && sb.i32 != nil:
		copy(db.i32[dst.Offset:dst.Offset+dst.Len()], sb.i32[src.Offset:src.Offset+src.Len()])
	case db.raw != nil && sb.raw != nil:
		sz := dst.DType.Size()
		copy(db.raw[dst.Offset*sz:(dst.Offset+dst.Len())*sz], sb.raw[src.Offset*sz:(src.Offset+src.Len())*sz])
	default:
		b.fail("Copy", "dst %v, src %v: incompatible buffers", dst, src)
	}
}

// Prep7 computes the WKV inputs of a time-mix step.
func (b *Backend) Prep7(p kernels.Prep7) {
	N := p.HeadSize
	hasZV := p.ZV.Valid()
	ok := isF32(p.K, p.V, p.VFirst, p.W, p.A, p.B, p.W0, p.A0, p.KK, p.KA) && N > 0 && p.K.Cols%N == 0
	shape := []kernels.Tensor{p.V, p.VFirst, p.W, p.A, p.B}
	if hasZV {
		ok = ok && isF32(p.ZV, p.V0) && p.V0.Len() == p.K.Cols
		shape = append(shape, p.ZV)
	}
	for _, t := range shape {
		ok = ok && t.Rows == p.K.Rows && t.Cols == p.K.Cols
	}
	for _, t := range []kernels.Tensor{p.W0, p.A0, p.KK, p.KA} {
		ok = ok && t.Len() == p.K.Cols
	}
	if !(ok) {
		b.fail("Prep7", "k %v, v %v, w %v, a %v, head size %d", p.K, p.V, p.W, p.A, N)
		return
	}
	C := p.K.Cols
	k, v, vf, w, a, bb := b.f32(p.K), b.f32(p.V), b.f32(p.VFirst), b.f32(p.W), b.f32(p.A), b.f32(p.B)
	w0, a0, kk, ka := b.f32(p.W0), b.f32(p.A0), b.f32(p.KK), b.f32(p.KA)
	var zv, v0 []float32
	if hasZV {
		zv, v0 = b.f32(p.ZV), b.f32(p.V0)
	}
	ch := &prep7Chan{w0: w0, a0: a0, kk: kk, ka: ka, v0: v0, n: N}
	prep := b.pool.ks.prep7
	b.pool.For(p.K.Rows, 4, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			r := func(s []float32) []float32 {
				if s == nil {
					return nil
				}
				return s[t*C : (t+1)*C]
			}
			prep(r(k), r(v), r(vf), r(w), r(a), r(bb), r(zv), ch)
		}
	})
}

// WKV7 runs the recurrence over the rows in order, heads (and sequences)
// in parallel.
func (b *Backend) WKV7(y, s, r, w, k, v, a, bb kernels.Tensor) {
	T, C := r.Rows, r.Cols
	const N = 64
	ok := isF32(y, s, r, w, k, v, a, bb) && C%N == 0 && C > 0 && s.Len() > 0 && s.Len()%(C*N) == 0
	seqs := 1
	if ok {
		seqs = s.Len() / (C * N)
		ok = T%seqs == 0
	}
	for _, t := range []kernels.Tensor{y, w, k, v, a, bb} {
		ok = ok && t.Rows == T && t.Cols == C
	}
	if !(ok) {
		b.fail("WKV7", "y %v, s %v, r %v (head size 64; the states must divide the rows)", y, s, r)
		return
	}
	x := &wkvRows{r: b.f32(r), w: b.f32(w), k: b.f32(k), v: b.f32(v), a: b.f32(a), b: b.f32(bb), y: b.f32(y)}
	ss := b.f32(s)
	H, L := C/N, T/seqs
	p := b.pool
	p.For(seqs*H, 1, func(lo, hi int) {
		for job := lo; job < hi; job++ {
			q, h := job/H, job%H
			p.ks.wkvRun(p, ss[job*N*N:(job+1)*N*N], x, q*L*C+h*N, C, L)
		}
	})
}

// Out7 applies group norm, the bonus term and the gate.
func (b *Backend) Out7(o kernels.Out7) {
	N := o.HeadSize
	ok := isF32(o.Dst, o.Y, o.R, o.K, o.V, o.G, o.RK, o.LnW, o.LnB) && N > 0 && o.Y.Cols%N == 0
	for _, t := range []kernels.Tensor{o.Dst, o.R, o.K, o.V, o.G} {
		ok = ok && t.Rows == o.Y.Rows && t.Cols == o.Y.Cols
	}
	for _, t := range []kernels.Tensor{o.RK, o.LnW, o.LnB} {
		ok = ok && t.Len() == o.Y.Cols
	}
	if !(ok) {
		b.fail("Out7", "dst %v, y %v, head size %d", o.Dst, o.Y, N)
		return
	}
	C := o.Y.Cols
	d, y, r, k, v, g := b.f32(o.Dst), b.f32(o.Y), b.f32(o.R), b.f32(o.K), b.f32(o.V), b.f32(o.G)
	rk, lw, lb := b.f32(o.RK), b.f32(o.LnW), b.f32(o.LnB)
	ln, fin := b.pool.ks.layerNorm, b.pool.ks.out7
	b.pool.For(o.Y.Rows, 4, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			for h := 0; h < C; h += N {
				base := t*C + h
				ln(d[base:base+N], y[base:base+N], lw[h:h+N], lb[h:h+N], o.Eps)
				fin(d[base:base+N], r[base:base+N], k[base:base+N], v[base:base+N], g[base:base+N], rk[h:h+N])
			}
		}
	})
}

var _ kernels.Backend = (*Backend)(nil)
