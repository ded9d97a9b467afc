package cpu

import "github.com/goose-rwkv/goose/kernels"

// The image towers' ops (kernels.VisionOps).

// knownAct reports whether Act and BiasAct implement f.
func knownAct(f kernels.Activation) bool {
	switch f {
	case kernels.Tanh, kernels.Sigmoid, kernels.ReLUSquared, kernels.GELU, kernels.GELUTanh:
		return true
	}
	return false
}

// optF32 reports whether t is invalid (absent) or an F32 [1, cols] row.
func optF32(t kernels.Tensor, cols int) bool {
	return !t.Valid() || isF32(t) && t.Len() == cols
}

// row returns the elements of an optional [1, C] tensor, nil when absent.
func (b *Backend) row(t kernels.Tensor) []float32 {
	if !t.Valid() {
		return nil
	}
	return b.f32(t)
}

// Im2Col gathers convolution patches into rows.
func (b *Backend) Im2Col(dst, src kernels.Tensor, c kernels.Conv) {
	if err := c.Check(dst, src); err != nil || !isF32(dst, src) {
		b.fail("Im2Col", "dst %v, src %v, %+v", dst, src, c)
		return
	}
	d, s := b.f32(dst), b.f32(src)
	OW, K, C := c.OutWidth(), c.Kernel, c.Channels
	cols := dst.Cols
	b.pool.For(dst.Rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			oy, ox := r/OW, r%OW
			out := d[r*cols : (r+1)*cols]
			for ky := range K {
				y := oy*c.Stride - c.Pad + ky
				for kx := range K {
					x := ox*c.Stride - c.Pad + kx
					inside := y >= 0 && y < c.Height && x >= 0 && x < c.Width
					j := ky*K + kx
					switch {
					case !inside:
						for ch := range C {
							out[ch*K*K+j] = 0
						}
					case c.ChannelsLast:
						px := s[(y*c.Width+x)*C:][:C]
						for ch, v := range px {
							out[ch*K*K+j] = v
						}
					default:
						for ch := range C {
							out[ch*K*K+j] = s[(ch*c.Height+y)*c.Width+x]
						}
					}
				}
			}
		}
	})
}

// WindowPartition copies a token map into zero-padded windows.
func (b *Backend) WindowPartition(dst, src kernels.Tensor, w kernels.Window) {
	if err := w.Check(dst, src); err != nil || !isF32(dst, src) {
		b.fail("WindowPartition", "dst %v, src %v, %+v", dst, src, w)
		return
	}
	d, s := b.f32(dst), b.f32(src)
	C := src.Cols
	b.pool.For(dst.Rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			y, x, ok := windowPixel(w, r)
			out := d[r*C : (r+1)*C]
			if !ok {
				clear(out)
				continue
			}
			copy(out, s[(y*w.Width+x)*C:][:C])
		}
	})
}

// windowPixel returns the map position of window row r, and whether it
// lies inside the map (not padding).
func windowPixel(w kernels.Window, r int) (y, x int, inside bool) {
	S := w.Size
	nw := (w.Width + S - 1) / S
	win, i := r/(S*S), r%(S*S)
	y = (win/nw)*S + i/S
	x = (win%nw)*S + i%S
	return y, x, y < w.Height && x < w.Width
}

// WindowMerge adds window rows back into the token map.
func (b *Backend) WindowMerge(dst, src kernels.Tensor, w kernels.Window) {
	if err := w.Check(src, dst); err != nil || !isF32(dst, src) {
		b.fail("WindowMerge", "dst %v, src %v, %+v", dst, src, w)
		return
	}
	d, s := b.f32(dst), b.f32(src)
	C, S := dst.Cols, w.Size
	nw := (w.Width + S - 1) / S
	b.pool.For(dst.Rows, 64, func(lo, hi int) {
		for p := lo; p < hi; p++ {
			y, x := p/w.Width, p%w.Width
			r := ((y/S)*nw+x/S)*S*S + (y%S)*S + x%S
			out := d[p*C : (p+1)*C]
			for i, v := range s[r*C : (r+1)*C] {
				out[i] += v
			}
		}
	})
}

// Residual sets dst = x + (y + bias)⊙gamma.
func (b *Backend) Residual(dst, x, y, bias, gamma kernels.Tensor) {
	C := dst.Cols
	if !(isF32(dst, x, y) && x.Len() == dst.Len() && y.Len() == dst.Len() && optF32(bias, C) && optF32(gamma, C)) {
		b.fail("Residual", "dst %v, x %v, y %v, bias %v, gamma %v", dst, x, y, bias, gamma)
		return
	}
	d, xs, ys := b.f32(dst), b.f32(x), b.f32(y)
	bs, gs := b.row(bias), b.row(gamma)
	b.pool.For(dst.Rows, 32, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o, xr, yr := d[r*C:(r+1)*C], xs[r*C:(r+1)*C], ys[r*C:(r+1)*C]
			switch {
			case bs != nil && gs != nil:
				for i := range o {
					o[i] = xr[i] + (yr[i]+bs[i])*gs[i]
				}
			case bs != nil:
				for i := range o {
					o[i] = xr[i] + (yr[i] + bs[i])
				}
			case gs != nil:
				for i := range o {
					o[i] = xr[i] + yr[i]*gs[i]
				}
			default:
				for i := range o {
					o[i] = xr[i] + yr[i]
				}
			}
		}
	})
}

// BiasAct sets dst = f(x + bias).
func (b *Backend) BiasAct(dst, x, bias kernels.Tensor, f kernels.Activation) {
	C := x.Cols
	if !(isF32(dst, x) && dst.Len() == x.Len() && optF32(bias, C) && knownAct(f)) {
		b.fail("BiasAct", "dst %v, x %v, bias %v, function %d", dst, x, bias, f)
		return
	}
	d, xs, bs, ks := b.f32(dst), b.f32(x), b.row(bias), b.pool.ks
	b.pool.For(x.Rows, max(1, 16384/max(C, 1)), func(lo, hi int) {
		var tmp [256]float32
		for r := lo; r < hi; r++ {
			o, xr := d[r*C:(r+1)*C], xs[r*C:(r+1)*C]
			for c0 := 0; c0 < C; c0 += len(tmp) {
				n := min(len(tmp), C-c0)
				t := tmp[:n]
				copy(t, xr[c0:c0+n])
				if bs != nil {
					for i, v := range bs[c0 : c0+n] {
						t[i] += v
					}
				}
				ks.act(o[c0:c0+n], t, f)
			}
		}
	})
}

// geluRange sets d[i] = GELU(x[i]) in the exact or the tanh form.
func geluRange(d, x []float32, f kernels.Activation) {
	if f == kernels.GELUTanh {
		for i, v := range x {
			d[i] = geluTanh(v)
		}
		return
	}
	geluErfRange(d, x)
}

// geluErf is x·Φ(x) = x·½·erfc(−x/√2) in float32, with erfc from a
// Chebyshev-fitted form (fractional error below 1.2e-7):
//
//	erfc(z) = t·exp(−z² + P(t)),  t = 1/(1 + z/2),  z ≥ 0,
//
// and erfc(−z) = 2 − erfc(z).
func geluErf(x float32) float32 {
	z := x * -0.70710678118654752 // −x/√2
	a := z
	if a < 0 {
		a = -a
	}
	t := 1 / (1 + 0.5*a)
	p := -1.26551223 + t*(1.00002368+t*(0.37409196+t*(0.09678418+t*(-0.18628806+
		t*(0.27886807+t*(-1.13520398+t*(1.48851587+t*(-0.82215223+t*0.17087277))))))))
	e := t * expf(-a*a+p) // erfc(|z|)
	if z < 0 {
		e = 2 - e
	}
	return x * 0.5 * e
}

// geluTanh is ½x(1 + tanh(√(2/π)(x + 0.044715x³))) in float32.
func geluTanh(x float32) float32 {
	u := 0.7978845608028654 * (x + 0.044715*x*x*x)
	// tanh(u) = 1 − 2/(e^{2u} + 1), written to keep precision for u < 0.
	th := 1 - 2/(expf(2*u)+1)
	return 0.5 * x * (1 + th)
}

// SpaceToDepth folds f×f blocks of a token map into rows.
func (b *Backend) SpaceToDepth(dst, src kernels.Tensor, h, w, f int) {
	C := src.Cols
	if !(isF32(dst, src) && f > 0 && h%f == 0 && w%f == 0 && src.Rows == h*w &&
		dst.Rows == (h/f)*(w/f) && dst.Cols == C*f*f) {
		b.fail("SpaceToDepth", "dst %v, src %v, %d×%d map, factor %d", dst, src, h, w, f)
		return
	}
	d, s := b.f32(dst), b.f32(src)
	ow := w / f
	CC := dst.Cols
	b.pool.For(dst.Rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			ty, tx := r/ow, r%ow
			out := d[r*CC : (r+1)*CC]
			for dy := range f {
				for dx := range f {
					px := s[((ty*f+dy)*w+tx*f+dx)*C:][:C]
					j := dy*f + dx
					for ch, v := range px {
						out[ch*f*f+j] = v
					}
				}
			}
		}
	})
}

// CopyCols copies src into a column range of dst.
func (b *Backend) CopyCols(dst, src kernels.Tensor, col int) {
	if !(isF32(dst, src) && dst.Rows == src.Rows && col >= 0 && col+src.Cols <= dst.Cols) {
		b.fail("CopyCols", "dst %v, src %v, column %d", dst, src, col)
		return
	}
	d, s := b.f32(dst), b.f32(src)
	n, m := src.Cols, dst.Cols
	b.pool.For(src.Rows, 64, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			copy(d[r*m+col:r*m+col+n], s[r*n:(r+1)*n])
		}
	})
}

// Attention runs multi-head self-attention within groups of rows.
//
// The work is split into tasks of one group, one head and a block of at
// most 96 queries, run in parallel. A task computes the block's scores
// against all keys of its group with the GEMM micro-kernel (the keys are
// packed straight from the strided qkv rows), adds the position bias,
// takes the softmax, multiplies by the values the same way and scales
// each row by the softmax's 1/Σ. Scores live only in the task's scratch
// (at most 96 rows).
func (b *Backend) Attention(a kernels.Attention) {
	rel := a.RelH.Valid() || a.RelW.Valid()
	if err := a.Check(); err != nil || !isF32(a.Dst, a.QKV) || rel && !isF32(a.RelH, a.RelW) ||
		a.Dst.Buf == a.QKV.Buf {
		b.fail("Attention", "dst %v, qkv %v, %d heads, %d groups, span %d, rel %v %v",
			a.Dst, a.QKV, a.Heads, a.Groups, a.Span, a.RelH, a.RelW)
		return
	}
	H, hd, D := a.Heads, a.HeadDim(), a.Dst.Cols
	G, n := max(a.Groups, 1), a.GroupRows()
	if n == 0 {
		return
	}
	nblk := (n + 95) / 96
	bq := ((n+nblk-1)/nblk + 5) / 6 * 6
	span := 0
	var relH, relW []float32
	if rel {
		span, relH, relW = a.Span, b.f32(a.RelH), b.f32(a.RelW)
	}
	qkv, _ := weightBytes(a.QKV)
	qf, out := b.f32(a.QKV), b.f32(a.Dst)
	ks := b.pool.ks
	scale := a.Scale
	b.pool.For(G*H*nblk, 1, func(lo, hi int) {
		need := gemmScratch + bq*n + 2*bq*hd + bq + 2*span
		sb := b.pool.getScratch(need)
		defer b.pool.putScratch(sb)
		buf := *sb
		gbuf := buf[:gemmScratch]
		rest := buf[gemmScratch:]
		S, rest := rest[:bq*n], rest[bq*n:]
		Q, rest := rest[:bq*hd], rest[bq*hd:]
		O, rest := rest[:bq*hd], rest[bq*hd:]
		inv, rest := rest[:bq], rest[bq:]
		ph, pw := rest[:span], rest[span:2*span]
		for task := lo; task < hi; task++ {
			g, h, blk := task/(H*nblk), task/nblk%H, task%nblk
			q0 := blk * bq
			m := min(bq, n-q0)
			if m <= 0 {
				continue
			}
			base := g * n
			for i := range m {
				copy(Q[i*hd:(i+1)*hd], qf[(base+q0+i)*3*D+h*hd:][:hd])
			}
			kOff, vOff := D+h*hd, 2*D+h*hd
			// Keys nb..nb+nl, dims kb..kb+kl, transposed.
			packK := func(wf []float32, ld, kb, kl, nb, nl int) {
				var off [8]int
				for r0 := 0; r0 < ld; r0 += 8 {
					for i := range off {
						off[i] = ((base+nb+min(r0+i, nl-1))*3*D + kOff + kb) * 4
					}
					ks.transpose8(wf[r0:], ld, qkv, &off, kl, kernels.F32)
				}
			}
			gemmRange(ks, gbuf, S, Q, 0, m, hd, n, 0, n, true, packK)
			for i := range m {
				row := S[i*n : (i+1)*n]
				if rel {
					qi := q0 + i
					qy, qx := qi/span, qi%span
					qr := Q[i*hd : (i+1)*hd]
					for k := range span {
						ph[k] = dotf(qr, relH[(qy-k+span-1)*hd:])
						pw[k] = dotf(qr, relW[(qx-k+span-1)*hd:])
					}
					for ky := range span {
						keys := row[ky*span : (ky+1)*span]
						bh := ph[ky]
						for kx, s := range keys {
							keys[kx] = scale*s + bh + pw[kx]
						}
					}
				} else {
					for j := range row {
						row[j] *= scale
					}
				}
				inv[i] = 1 / expRow(row)
			}
			// Values: keys kb..kb+kl (rows of V), dims nb..nb+nl.
			packV := func(wf []float32, ld, kb, kl, nb, nl int) {
				for k := range kl {
					o := ((base+kb+k)*3*D + vOff + nb) * 4
					r := wf[k*ld : (k+1)*ld]
					ks.decode(r[:nl], qkv[o:o+nl*4], kernels.F32)
					clear(r[nl:])
				}
			}
			gemmRange(ks, gbuf, O, S, 0, m, n, hd, 0, hd, false, packV)
			for i := range m {
				d := out[(base+q0+i)*D+h*hd:][:hd]
				s := inv[i]
				for j, v := range O[i*hd : (i+1)*hd] {
					d[j] = v * s
				}
			}
		}
	})
}

// dotf returns Σ a[i]·b[i] over len(a).
func dotf(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// expRow replaces each x of row by e^(x − max(row)) and returns their sum.
func expRow(row []float32) float32 {
	return expShiftSum(row, rowMax(row))
}

// expShiftSumGeneric is expShiftSum in portable Go.
func expShiftSumGeneric(row []float32, m float32) float32 {
	var sum float32
	for j, v := range row {
		e := expf(v - m)
		row[j] = e
		sum += e
	}
	return sum
}
