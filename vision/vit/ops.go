package vit

import (
	"math"
	"runtime"
	"sync"
)

// parallelFor splits 0..n into contiguous ranges of at least grain items and
// runs fn on them from up to GOMAXPROCS goroutines.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// patchEmbed is the Conv2d(3→D, kernel P, stride P, bias) over a CHW image
// of side size, written as [Grid², D] rows into dst (token = row·Grid + col).
// w is [D, 3·P·P] in (channel, ky, kx) order.
func patchEmbed(dst, pixels, w, bias []float32, size, P, D int) {
	G := size / P
	K := 3 * P * P
	patches := make([]float32, G*G*K)
	parallelFor(G*G, 16, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			py, px := t/G, t%G
			row := patches[t*K : (t+1)*K]
			i := 0
			for ch := range 3 {
				for ky := range P {
					src := pixels[ch*size*size+(py*P+ky)*size+px*P:]
					copy(row[i:i+P], src[:P])
					i += P
				}
			}
		}
	})
	linear(dst, patches, w, bias, G*G, K, D)
}

// linear computes dst[t, o] = Σ_i x[t, i]·w[o, i] + bias[o] for T rows of
// width in, out outputs (PyTorch Linear layout); bias may be nil. dst must
// not alias x. Goroutines take bands of rowBlock rows of x (kept in cache
// while w streams past once per band); within a band, linear4x2 computes
// 4×2 output tiles.
func linear(dst, x, w, bias []float32, T, in, out int) {
	const rowBlock = 32
	parallelFor((T+rowBlock-1)/rowBlock, 1, func(lo, hi int) {
		for blk := lo; blk < hi; blk++ {
			t0, t1 := blk*rowBlock, min((blk+1)*rowBlock, T)
			for o := 0; o < out; o += 2 {
				o1 := min(o+2, out)
				for t := t0; t < t1; t += 4 {
					tEnd := min(t+4, t1)
					if tEnd-t == 4 && o1-o == 2 {
						linear4x2(dst, x, w, t, o, in, out)
						continue
					}
					for r := t; r < tEnd; r++ {
						for c := o; c < o1; c++ {
							dst[r*out+c] = dot(x[r*in:(r+1)*in], w[c*in:(c+1)*in])
						}
					}
				}
				if bias != nil {
					for t := t0; t < t1; t++ {
						row := dst[t*out+o : t*out+o1]
						for i := range row {
							row[i] += bias[o+i]
						}
					}
				}
			}
		}
	})
}

// linear4x2 writes the 4×2 tile dst[t..t+3, o..o+1] = x[t..t+3]·w[o..o+1]ᵀ
// (eight accumulators and six loads fit the sixteen SSE registers).
func linear4x2(dst, x, w []float32, t, o, in, out int) {
	x0, x1 := x[t*in:(t+1)*in], x[(t+1)*in:(t+2)*in]
	x2, x3 := x[(t+2)*in:(t+3)*in], x[(t+3)*in:(t+4)*in]
	w0, w1 := w[o*in:(o+1)*in], w[(o+1)*in:(o+2)*in]
	x1, x2, x3 = x1[:len(x0)], x2[:len(x0)], x3[:len(x0)]
	w0, w1 = w0[:len(x0)], w1[:len(x0)]
	var s00, s01, s10, s11, s20, s21, s30, s31 float32
	for k := range x0 {
		b0, b1 := w0[k], w1[k]
		a0, a1, a2, a3 := x0[k], x1[k], x2[k], x3[k]
		s00 += a0 * b0
		s01 += a0 * b1
		s10 += a1 * b0
		s11 += a1 * b1
		s20 += a2 * b0
		s21 += a2 * b1
		s30 += a3 * b0
		s31 += a3 * b1
	}
	dst[t*out+o], dst[t*out+o+1] = s00, s01
	dst[(t+1)*out+o], dst[(t+1)*out+o+1] = s10, s11
	dst[(t+2)*out+o], dst[(t+2)*out+o+1] = s20, s21
	dst[(t+3)*out+o], dst[(t+3)*out+o+1] = s30, s31
}

// dot returns Σ a[i]·b[i] with four accumulators; len(b) ≥ len(a).
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

// layerNorm normalises each D-wide row of x into dst (dst may alias x):
// (x − mean)/sqrt(var + eps)·w + b, statistics in float64.
func layerNorm(dst, x, w, b []float32, D int, eps float64) {
	T := len(x) / D
	parallelFor(T, 32, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := x[t*D : (t+1)*D]
			var sum float64
			for _, v := range row {
				sum += float64(v)
			}
			mean := sum / float64(D)
			var sq float64
			for _, v := range row {
				d := float64(v) - mean
				sq += d * d
			}
			inv := 1 / math.Sqrt(sq/float64(D)+eps)
			out := dst[t*D : (t+1)*D]
			for i, v := range row {
				out[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
			}
		}
	})
}

// attention is multi-head self-attention over T tokens: qkv is [T, 3D]
// (q | k | v, each split into heads of D/heads channels), dst [T, D] gets
// softmax(q·kᵀ/√hd)·v per head, heads concatenated.
func attention(dst, qkv []float32, T, D, heads int) {
	hd := D / heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallelFor(heads*T, 8, func(lo, hi int) {
		scores := make([]float32, T)
		q := make([]float32, hd)
		for job := lo; job < hi; job++ {
			h, t := job/T, job%T
			qrow := qkv[t*3*D+h*hd : t*3*D+h*hd+hd]
			for i, v := range qrow {
				q[i] = v * scale
			}
			best := float32(math.Inf(-1))
			for j := range T {
				s := dot(q, qkv[j*3*D+D+h*hd:])
				scores[j] = s
				best = max(best, s)
			}
			var sum float32
			for j, s := range scores {
				e := float32(math.Exp(float64(s - best)))
				scores[j] = e
				sum += e
			}
			out := dst[t*D+h*hd : t*D+h*hd+hd]
			clear(out)
			for j, p := range scores {
				v := qkv[j*3*D+2*D+h*hd : j*3*D+2*D+h*hd+hd]
				for i := range out {
					out[i] += p * v[i]
				}
			}
			inv := 1 / sum
			for i := range out {
				out[i] *= inv
			}
		}
	})
}

// mlp computes dst = fc2(gelu(fc1(x))) for T rows of width D with hidden
// width H; hid is [T, H] scratch. dst may alias x.
func mlp(dst, x, hid, w1, b1, w2, b2 []float32, T, D, H int) {
	linear(hid, x, w1, b1, T, D, H)
	gelu(hid)
	linear(dst, hid, w2, b2, T, H, D)
}

// gelu applies the exact (erf) GELU, x·½(1 + erf(x/√2)), in place.
func gelu(x []float32) {
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			x[i] = float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
		}
	})
}

// layerScale multiplies each D-wide row of x by gamma per channel; a nil
// gamma is the identity (towers without LayerScale).
func layerScale(x, gamma []float32, D int) {
	if gamma == nil {
		return
	}
	for t := 0; t < len(x); t += D {
		row := x[t : t+D]
		for i := range row {
			row[i] *= gamma[i]
		}
	}
}

// addInPlace adds src to dst element-wise (len(src) ≤ len(dst)).
func addInPlace(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] += v
	}
}
