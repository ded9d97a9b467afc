package cpu

import "github.com/goose-rwkv/goose/kernels"

// The ops of A-RWKV's 2-D token shift and bidirectional WKV.

// DepthwiseConv3 convolves each channel of h×w images with its 3×3 kernel.
func (b *Backend) DepthwiseConv3(dst, x, k kernels.Tensor, h, w int) {
	C := x.Cols
	ok := isF32(dst, x, k) && h > 0 && w > 0 && x.Rows%(h*w) == 0 && dst.Rows == x.Rows && dst.Cols == C &&
		k.Rows == C && k.Cols == 9
	if !ok {
		b.fail("DepthwiseConv3", "dst %v, x %v, k %v, image %d×%d", dst, x, k, h, w)
		return
	}
	d, xs := b.f32(dst), b.f32(x)
	kt := dwKernels(b.f32(k), C)
	zero := make([]float32, C)
	conv := b.pool.ks.dwconv
	b.pool.For(x.Rows, 8, func(lo, hi int) {
		var src [dwTaps][]float32
		for p := lo; p < hi; p++ {
			img, pix := p/(h*w), p%(h*w)
			i, j := pix/w, pix%w
			for t := range dwTaps {
				ii, jj := i+t/3-1, j+t%3-1
				if ii < 0 || ii >= h || jj < 0 || jj >= w {
					src[t] = zero
					continue
				}
				q := img*h*w + ii*w + jj
				src[t] = xs[q*C : (q+1)*C]
			}
			conv(d[p*C:(p+1)*C], &src, kt)
		}
	})
}

// Lerp sets dst[i] = x + d ⊙ mix[i].
func (b *Backend) Lerp(dst []kernels.Tensor, x, d kernels.Tensor, mix []kernels.Tensor) {
	ok := isF32(x, d) && len(dst) == len(mix) && d.Rows == x.Rows && d.Cols == x.Cols
	for i := range dst {
		ok = ok && isF32(dst[i], mix[i]) && dst[i].Rows == x.Rows && dst[i].Cols == x.Cols && mix[i].Len() == x.Cols
	}
	if !ok {
		b.fail("Lerp", "x %v, d %v, %d dst, %d mix", x, d, len(dst), len(mix))
		return
	}
	C := x.Cols
	xs, ds := b.f32(x), b.f32(d)
	lerp := b.pool.ks.lerp
	os, ms := make([][]float32, len(dst)), make([][]float32, len(dst))
	for i := range dst {
		os[i], ms[i] = b.f32(dst[i]), b.f32(mix[i])
	}
	// Row by row, every output: x's and d's rows are read from memory once.
	b.pool.For(x.Rows, 16, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			for i, o := range os {
				lerp(o[t*C:(t+1)*C], xs[t*C:(t+1)*C], ds[t*C:(t+1)*C], ms[i])
			}
		}
	})
}

// FlipRows reverses the rows within each group of n.
func (b *Backend) FlipRows(dst, x kernels.Tensor, n int) {
	if !(isF32(dst, x) && n > 0 && x.Rows%n == 0 && dst.Rows == x.Rows && dst.Cols == x.Cols) {
		b.fail("FlipRows", "dst %v, x %v, groups of %d", dst, x, n)
		return
	}
	C := x.Cols
	d, xs := b.f32(dst), b.f32(x)
	for t := range x.Rows {
		g := t / n * n
		src := g + n - 1 - (t - g)
		copy(d[t*C:(t+1)*C], xs[src*C:(src+1)*C])
	}
}

// GateMix sets dst = g·a + (1−g)·b per head.
func (b *Backend) GateMix(dst, a, bb, g kernels.Tensor) {
	T, C, H := a.Rows, a.Cols, g.Cols
	ok := isF32(dst, a, bb, g) && H > 0 && C%H == 0 && g.Rows == T
	for _, t := range []kernels.Tensor{dst, bb} {
		ok = ok && t.Rows == T && t.Cols == C
	}
	if !ok {
		b.fail("GateMix", "dst %v, a %v, b %v, g %v", dst, a, bb, g)
		return
	}
	d, as, bs, gs := b.f32(dst), b.f32(a), b.f32(bb), b.f32(g)
	N := C / H
	mix := b.pool.ks.gateMix
	b.pool.For(T, 16, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			for h := range H {
				o := t*C + h*N
				mix(d[o:o+N], as[o:o+N], bs[o:o+N], gs[t*H+h])
			}
		}
	})
}

// MeanRows averages groups of rows.
func (b *Backend) MeanRows(dst, x kernels.Tensor) {
	ok := isF32(dst, x) && dst.Rows > 0 && x.Rows%dst.Rows == 0 && x.Rows > 0 && dst.Cols == x.Cols
	if !ok {
		b.fail("MeanRows", "dst %v, x %v", dst, x)
		return
	}
	C, n := x.Cols, x.Rows/dst.Rows
	d, xs := b.f32(dst), b.f32(x)
	sum := make([]float64, C)
	for i := range dst.Rows {
		clear(sum)
		for t := i * n; t < (i+1)*n; t++ {
			for c, v := range xs[t*C : (t+1)*C] {
				sum[c] += float64(v)
			}
		}
		for c, s := range sum {
			d[i*C+c] = float32(s / float64(n))
		}
	}
}

// WKV7Bi runs each group of n rows forward and backward (kernels.BiWKV):
// the backward jobs read the rows from the group's end, so nothing is
// flipped.
func (b *Backend) WKV7Bi(yf, yb, s, r, w, k, v, a, bb kernels.Tensor, n int) {
	T, C := r.Rows, r.Cols
	const N = 64
	ok := isF32(yf, yb, s, r, w, k, v, a, bb) && C%N == 0 && C > 0 && n > 0 && T%n == 0 && s.Len() == 2*(T/n)*C*N
	for _, t := range []kernels.Tensor{yf, yb, w, k, v, a, bb} {
		ok = ok && t.Rows == T && t.Cols == C
	}
	if !ok {
		b.fail("WKV7Bi", "yf %v, yb %v, s %v, r %v, groups of %d (head size 64; 2 states a group)", yf, yb, s, r, n)
		return
	}
	fwd := &wkvRows{r: b.f32(r), w: b.f32(w), k: b.f32(k), v: b.f32(v), a: b.f32(a), b: b.f32(bb), y: b.f32(yf)}
	bwd := *fwd
	bwd.y = b.f32(yb)
	ss := b.f32(s)
	H, seqs := C/N, T/n
	p := b.pool
	p.For(2*seqs*H, 1, func(lo, hi int) {
		for job := lo; job < hi; job++ {
			q, h := job/H%seqs, job%H
			S := ss[job*N*N : (job+1)*N*N]
			if job < seqs*H {
				p.ks.wkvRun(p, S, fwd, q*n*C+h*N, C, n)
			} else {
				p.ks.wkvRun(p, S, &bwd, (q*n+n-1)*C+h*N, -C, n)
			}
		}
	})
}

var _ kernels.BiWKV = (*Backend)(nil)
