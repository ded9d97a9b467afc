package arwkv

import (
	"math"
	"runtime"
	"sync"
)

// parallelFor splits [0, n) into contiguous ranges run on up to
// GOMAXPROCS goroutines and waits for them.
func parallelFor(n int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*n/workers, (w+1)*n/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// linear computes dst[t] = W·x[t] + b for rows t of x ([rows, in]); W is
// [out, in] (PyTorch Linear layout) and b may be nil.
func linear(dst, x, w, b []float32, rows, in, out int) {
	body := func(t int, o0, o1 int) {
		xr := x[t*in : (t+1)*in]
		dr := dst[t*out : (t+1)*out]
		for o := o0; o < o1; o++ {
			wr := w[o*in : (o+1)*in]
			var s float32
			for i, v := range xr {
				s += v * wr[i]
			}
			if b != nil {
				s += b[o]
			}
			dr[o] = s
		}
	}
	if rows == 1 {
		parallelFor(out, func(lo, hi int) { body(0, lo, hi) })
		return
	}
	parallelFor(rows, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			body(t, 0, out)
		}
	})
}

// matmul computes dst = x·m for x [rows, in] and m [in, out] (the layout
// of the RWKV-7 LoRA matrices).
func matmul(dst, x, m []float32, rows, in, out int) {
	parallelFor(rows, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			dr := dst[t*out : (t+1)*out]
			clear(dr)
			for i, v := range x[t*in : (t+1)*in] {
				mr := m[i*out : (i+1)*out]
				for o := range dr {
					dr[o] += v * mr[o]
				}
			}
		}
	})
}

// layerNorm normalises each row of c values of x into dst (eps 1e-5, as
// torch.nn.LayerNorm).
func layerNorm(dst, x, w, b []float32, c int) {
	for r := 0; r*c < len(x); r++ {
		normRow(dst[r*c:(r+1)*c], x[r*c:(r+1)*c], w, b, 1e-5)
	}
}

// normRow normalises one vector to zero mean and unit (biased) variance,
// then scales by w and shifts by b.
func normRow(dst, x, w, b []float32, eps float64) {
	var mean float64
	for _, v := range x {
		mean += float64(v)
	}
	mean /= float64(len(x))
	var vr float64
	for _, v := range x {
		d := float64(v) - mean
		vr += d * d
	}
	vr /= float64(len(x))
	inv := 1 / math.Sqrt(vr+eps)
	for i, v := range x {
		dst[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
	}
}

// patchEmbed cuts the [frames, bins] spectrogram into patch×patch tiles
// and projects each to C channels (Conv2d, kernel = stride = patch, with
// bias). Token index = time patch · gridF + frequency patch.
func (t *Tagger) patchEmbed(input []float32) []float32 {
	P, C, bins := t.patch, t.width, t.Bins()
	T := t.gridT * t.gridF
	tiles := make([]float32, T*P*P)
	for tok := range T {
		pt, pf := tok/t.gridF, tok%t.gridF
		tile := tiles[tok*P*P : (tok+1)*P*P]
		for i := range P {
			row := input[(pt*P+i)*bins+pf*P:]
			copy(tile[i*P:(i+1)*P], row[:P])
		}
	}
	out := make([]float32, T*C)
	linear(out, tiles, t.embW, t.embB, T, P*P, C)
	return out
}

// convShift returns the 2-D token-shift residual used by A-RWKV in place
// of RWKV's previous-token shift: a 3×3 depthwise convolution (padding 1,
// no bias) of x viewed as a [gridT, gridF] grid of C-channel tokens, minus
// x itself. w is [C, 3, 3].
func (t *Tagger) convShift(x, w []float32) []float32 {
	C, gt, gf := t.width, t.gridT, t.gridF
	out := make([]float32, len(x))
	parallelFor(gt*gf, func(lo, hi int) {
		for tok := lo; tok < hi; tok++ {
			i, j := tok/gf, tok%gf
			dst := out[tok*C : (tok+1)*C]
			for di := -1; di <= 1; di++ {
				ii := i + di
				if ii < 0 || ii >= gt {
					continue
				}
				for dj := -1; dj <= 1; dj++ {
					jj := j + dj
					if jj < 0 || jj >= gf {
						continue
					}
					src := x[(ii*gf+jj)*C : (ii*gf+jj+1)*C]
					k := (di+1)*3 + (dj + 1)
					for c := range dst {
						dst[c] += w[c*9+k] * src[c]
					}
				}
			}
			for c, v := range x[tok*C : (tok+1)*C] {
				dst[c] -= v
			}
		}
	})
	return out
}

// lerp returns x + xx·mix, per channel, for every token.
func lerp(x, xx, mix []float32, c int) []float32 {
	out := make([]float32, len(x))
	for i := range x {
		out[i] = x[i] + xx[i]*mix[i%c]
	}
	return out
}

// meanPool averages the rows of x ([rows, c]).
func meanPool(x []float32, rows, c int) []float32 {
	sum := make([]float64, c)
	for r := range rows {
		for i, v := range x[r*c : (r+1)*c] {
			sum[i] += float64(v)
		}
	}
	out := make([]float32, c)
	for i, s := range sum {
		out[i] = float32(s / float64(rows))
	}
	return out
}

// addInPlace adds y to x.
func addInPlace(x, y []float32) {
	for i := range x {
		x[i] += y[i]
	}
}

// sigmoid is the logistic function.
func sigmoid(x float32) float32 { return float32(1 / (1 + math.Exp(-float64(x)))) }

// channelMix is the A-RWKV feed-forward block: ConvShift lerp, then
// relu(key·x + b)², then value·h + b.
func (t *Tagger) channelMix(ly *layer, x []float32) []float32 {
	T, C, F := t.gridT*t.gridF, t.width, t.ffnWidth
	xx := t.convShift(x, ly.ffnShift)
	k := lerp(x, xx, ly.ffnXk, C)
	h := make([]float32, T*F)
	linear(h, k, ly.ffnKeyW, ly.ffnKeyB, T, C, F)
	for i, v := range h {
		v = max(v, 0)
		h[i] = v * v
	}
	out := make([]float32, T*C)
	linear(out, h, ly.ffnValueW, ly.ffnValueB, T, F, C)
	return out
}
