package sam

import (
	"fmt"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// The functions in this file hold the encoder's math, one operation each,
// on row-major float32 slices. Activations are token rows: a [H, W, C]
// feature map is stored as H·W rows of C values.

// dot returns Σ a[i]·b[i]; len(b) must be at least len(a).
func dot(a, b []float32) float32 {
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

// layerNorm normalises each of the n rows of x (width c) to zero mean and
// unit variance and applies the affine weight and bias, writing to out
// (which may be x). LayerNorm2d over channels is the same operation on
// pixel rows.
func layerNorm(out, x, weight, bias []float32, n, c int, eps float32) {
	nn.ParallelFor(n, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr := x[r*c : (r+1)*c]
			or := out[r*c : (r+1)*c]
			var mean float32
			for _, v := range xr {
				mean += v
			}
			mean /= float32(c)
			var variance float32
			for _, v := range xr {
				d := v - mean
				variance += d * d
			}
			variance /= float32(c)
			inv := float32(1 / math.Sqrt(float64(variance+eps)))
			for i, v := range xr {
				or[i] = (v-mean)*inv*weight[i] + bias[i]
			}
		}
	})
}

// geluErf applies the exact GELU, x·Φ(x) = x/2·(1 + erf(x/√2)), in place.
func geluErf(x []float32) {
	nn.ParallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			x[i] = float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
		}
	})
}

// add adds x to y element-wise.
func add(y, x []float32) {
	nn.ParallelFor(len(y), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] += x[i]
		}
	})
}

// patchRows gathers the image's non-overlapping p×p patches into rows
// (im2col): pixels is [ch, h, w] and row gy·(w/p)+gx holds the patch at
// grid cell (gy, gx) in (channel, ky, kx) order, matching a Conv2d weight
// [out, ch, p, p] flattened to [out, ch·p·p].
func patchRows(pixels []float32, ch, h, w, p int) []float32 {
	gh, gw := h/p, w/p
	k := ch * p * p
	rows := make([]float32, gh*gw*k)
	nn.ParallelFor(gh, 1, func(lo, hi int) {
		for gy := lo; gy < hi; gy++ {
			for gx := 0; gx < gw; gx++ {
				row := rows[(gy*gw+gx)*k:]
				i := 0
				for c := 0; c < ch; c++ {
					for ky := 0; ky < p; ky++ {
						src := pixels[(c*h+gy*p+ky)*w+gx*p:]
						copy(row[i:i+p], src[:p])
						i += p
					}
				}
			}
		}
	})
	return rows
}

// conv3x3Rows gathers, for every pixel of the [h, w, c] map x, its 3×3
// neighbourhood (zero outside the map) into a row in (channel, ky, kx)
// order, so that a padding-1 3×3 convolution is linear with the weight
// [out, c, 3, 3] flattened to [out, c·9].
func conv3x3Rows(x []float32, h, w, c int) []float32 {
	k := c * 9
	rows := make([]float32, h*w*k)
	nn.ParallelFor(h, 1, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			for xx := 0; xx < w; xx++ {
				row := rows[(y*w+xx)*k : (y*w+xx+1)*k]
				for ky := 0; ky < 3; ky++ {
					sy := y + ky - 1
					if sy < 0 || sy >= h {
						continue
					}
					for kx := 0; kx < 3; kx++ {
						sx := xx + kx - 1
						if sx < 0 || sx >= w {
							continue
						}
						src := x[(sy*w+sx)*c : (sy*w+sx+1)*c]
						for ci, v := range src {
							row[ci*9+ky*3+kx] = v
						}
					}
				}
			}
		}
	})
	return rows
}

// windowPartition splits the [h, w, c] map x into s×s windows after
// zero-padding it on the bottom and right to multiples of s. Windows are
// stored one after another, row-major over the window grid, each holding
// s·s token rows; it returns the windows and their count.
func windowPartition(x []float32, h, w, c, s int) ([]float32, int) {
	nh, nw := (h+s-1)/s, (w+s-1)/s
	out := make([]float32, nh*nw*s*s*c)
	for wy := 0; wy < nh; wy++ {
		for wx := 0; wx < nw; wx++ {
			base := (wy*nw + wx) * s * s
			for iy := 0; iy < s; iy++ {
				y := wy*s + iy
				if y >= h {
					break
				}
				for ix := 0; ix < s; ix++ {
					xx := wx*s + ix
					if xx >= w {
						break
					}
					copy(out[(base+iy*s+ix)*c:(base+iy*s+ix+1)*c], x[(y*w+xx)*c:(y*w+xx+1)*c])
				}
			}
		}
	}
	return out, nh * nw
}

// windowUnpartitionAdd is the inverse of windowPartition: it adds each
// window token that lies inside the [h, w, c] map to dst, dropping the
// padding.
func windowUnpartitionAdd(dst, win []float32, h, w, c, s int) {
	nw := (w + s - 1) / s
	nn.ParallelFor(h, 1, func(lo, hi int) {
		for y := lo; y < hi; y++ {
			wy, iy := y/s, y%s
			for xx := 0; xx < w; xx++ {
				wx, ix := xx/s, xx%s
				src := win[(((wy*nw+wx)*s+iy)*s+ix)*c:][:c]
				d := dst[(y*w+xx)*c : (y*w+xx+1)*c]
				for i, v := range src {
					d[i] += v
				}
			}
		}
	})
}

// resizeRelPos resamples a relative-position table [l, d] to n rows by
// linear interpolation along the rows with half-pixel centres (PyTorch
// F.interpolate mode "linear", align_corners=False); it returns rel
// unchanged when l == n.
func resizeRelPos(rel []float32, l, d, n int) []float32 {
	if l == n {
		return rel
	}
	out := make([]float32, n*d)
	scale := float64(l) / float64(n)
	for i := 0; i < n; i++ {
		src := (float64(i)+0.5)*scale - 0.5
		if src < 0 {
			src = 0
		}
		i0 := int(src)
		if i0 > l-1 {
			i0 = l - 1
		}
		i1 := min(i0+1, l-1)
		t := float32(src - float64(i0))
		for j := 0; j < d; j++ {
			out[i*d+j] = (1-t)*rel[i0*d+j] + t*rel[i1*d+j]
		}
	}
	return out
}

// attention runs multi-head self-attention with decomposed relative
// positions over nWin windows of s×s tokens. qkv holds, per token, the
// query, key and value vectors of all heads ([3, heads, hd] order); out
// receives per token the heads' outputs concatenated ([heads, hd]).
// relH and relW are [2s−1, hd] tables; the score of query (qy, qx) and key
// (ky, kx) is scale·q·k + q·relH[qy−ky+s−1] + q·relW[qx−kx+s−1], with the
// unscaled q in the position terms.
//
// Head by head, the windows' queries, keys and values go to be in one
// upload each; the score product runs per window as be.Linear with the
// window's keys as an F32 weight and the value product as be.MatMul with
// its values as one, on row slices of the same tensors, so a head costs
// five transfers whatever the window count. The position terms and the
// softmax run in Go.
func attention(be kernels.Backend, out, qkv, relH, relW []float32, nWin, s, heads, hd int) error {
	n := s * s
	d := heads * hd
	R := nWin * n
	var ts [5]kernels.Tensor
	for i, cols := range []int{hd, hd, hd, n, hd} {
		t, err := be.Alloc(kernels.F32, R, cols)
		if err != nil {
			return fmt.Errorf("attention: %w", err)
		}
		defer be.Free(t)
		ts[i] = t
	}
	qt, kt, vt, st, ot := ts[0], ts[1], ts[2], ts[3], ts[4]
	q, k, v, o := make([]float32, R*hd), make([]float32, R*hd), make([]float32, R*hd), make([]float32, R*hd)
	scores := make([]float32, R*n)
	for h := range heads {
		nn.ParallelFor(R, 256, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				row := qkv[t*3*d:]
				copy(q[t*hd:(t+1)*hd], row[h*hd:])
				copy(k[t*hd:(t+1)*hd], row[d+h*hd:])
				copy(v[t*hd:(t+1)*hd], row[2*d+h*hd:])
			}
		})
		for i, up := range [][]float32{q, k, v} {
			if err := be.Upload(ts[i], nn.FloatBytes(up)); err != nil {
				return fmt.Errorf("attention: head %d: upload: %w", h, err)
			}
		}
		for w := range nWin {
			lo, hi := w*n, (w+1)*n
			be.Linear(st.Slice(lo, hi), qt.Slice(lo, hi), kt.Slice(lo, hi))
		}
		if err := be.Download(nn.FloatBytes(scores), st); err != nil {
			return fmt.Errorf("attention: head %d: scores: download: %w", h, err)
		}
		if err := be.Sync(); err != nil {
			return fmt.Errorf("attention: head %d: scores: %w", h, err)
		}
		relSoftmax(scores, q, relH, relW, R, s, hd)
		if err := be.Upload(st, nn.FloatBytes(scores)); err != nil {
			return fmt.Errorf("attention: head %d: upload: %w", h, err)
		}
		for w := range nWin {
			lo, hi := w*n, (w+1)*n
			be.MatMul(ot.Slice(lo, hi), st.Slice(lo, hi), vt.Slice(lo, hi))
		}
		if err := be.Download(nn.FloatBytes(o), ot); err != nil {
			return fmt.Errorf("attention: head %d: values: download: %w", h, err)
		}
		if err := be.Sync(); err != nil {
			return fmt.Errorf("attention: head %d: values: %w", h, err)
		}
		nn.ParallelFor(R, 256, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				copy(out[t*d+h*hd:t*d+(h+1)*hd], o[t*hd:(t+1)*hd])
			}
		})
	}
	return nil
}

// relSoftmax turns the R rows of raw products q·k in scores (n = s·s per
// row, the keys of the row's window) into attention weights: row i, a
// query at (qy, qx) of its s×s window with unscaled query q[i], gets
// scale·q·k + q·relH[qy−ky+s−1] + q·relW[qx−kx+s−1] for key (ky, kx),
// then the softmax over the row.
func relSoftmax(scores, q, relH, relW []float32, R, s, hd int) {
	n := s * s
	scale := float32(1 / math.Sqrt(float64(hd)))
	nn.ParallelFor(R, 8, func(lo, hi int) {
		ph := make([]float32, s)
		pw := make([]float32, s)
		for r := lo; r < hi; r++ {
			qr := q[r*hd : (r+1)*hd]
			i := r % n
			qy, qx := i/s, i%s
			for k := 0; k < s; k++ {
				ph[k] = dot(qr, relH[(qy-k+s-1)*hd:])
				pw[k] = dot(qr, relW[(qx-k+s-1)*hd:])
			}
			row := scores[r*n : (r+1)*n]
			maxScore := float32(math.Inf(-1))
			for ky := range s {
				keys := row[ky*s : (ky+1)*s]
				bias := ph[ky]
				for kx, sc := range keys {
					sc = scale*sc + bias + pw[kx]
					keys[kx] = sc
					maxScore = max(maxScore, sc)
				}
			}
			inv := 1 / expShifted(row, maxScore)
			for j := range row {
				row[j] *= inv
			}
		}
	})
}

// expShifted replaces each x of row, all at most m, by e^(x−m) in float32
// and returns their sum. With y = x − m = n·ln2 + r, |r| ≤ ln2/2, e^r is
// its degree-6 Taylor polynomial (truncation error below 1.3e-7), scaled
// by 2^n through the exponent bits; y below −87.3 gives 0 (no
// subnormals) and NaN stays NaN. It is about twice as fast as math.Exp.
func expShifted(row []float32, m float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2Hi = 0.693145751953125
		ln2Lo = 1.428606765330187045e-06
	)
	var sum float32
	for j, x := range row {
		x -= m
		if !(x >= -87.3) { // underflow, or NaN from an infinite score
			if x != x {
				row[j] = x
				sum += x
			} else {
				row[j] = 0
			}
			continue
		}
		n := int32(x*log2e - 0.5) // round to nearest, x ≤ 0
		fn := float32(n)
		r := x - fn*ln2Hi - fn*ln2Lo
		p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24+r*(1.0/120+r*(1.0/720))))))
		e := p * math.Float32frombits(uint32(n+127)<<23)
		row[j] = e
		sum += e
	}
	return sum
}

// losslessMerge folds each f×f block of the [h, w, c] map x into one
// token of c·f·f channels, channel index ch·f·f + dy·f + dx, giving
// (h/f)·(w/f) rows in row-major order.
func losslessMerge(x []float32, h, w, c, f int) []float32 {
	oh, ow := h/f, w/f
	cc := c * f * f
	out := make([]float32, oh*ow*cc)
	for ty := 0; ty < oh; ty++ {
		for tx := 0; tx < ow; tx++ {
			row := out[(ty*ow+tx)*cc:]
			for dy := 0; dy < f; dy++ {
				for dx := 0; dx < f; dx++ {
					src := x[((ty*f+dy)*w+tx*f+dx)*c:][:c]
					for ch, v := range src {
						row[ch*f*f+dy*f+dx] = v
					}
				}
			}
		}
	}
	return out
}
