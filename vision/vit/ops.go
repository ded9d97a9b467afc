package vit

import (
	"fmt"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// patchEmbed is the Conv2d(3→D, kernel P, stride P, bias) over a CHW image
// of side size, written as [Grid², D] rows into dst (token = row·Grid + col):
// the im2col patches, columns in (channel, ky, kx) order, times the
// [D, 3·P·P] weight on be.
func patchEmbed(be kernels.Backend, dst, pixels []float32, w *nn.Dense, size, P int) error {
	G := size / P
	return w.Apply(be, dst, patchRows(pixels, size, P), G*G)
}

// patchRows gathers the P×P patches of a CHW image of side size into
// [Grid², 3·P·P] rows in (channel, ky, kx) order.
func patchRows(pixels []float32, size, P int) []float32 {
	G := size / P
	K := 3 * P * P
	patches := make([]float32, G*G*K)
	nn.ParallelFor(G*G, 16, func(lo, hi int) {
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
	return patches
}

// layerNorm normalises each D-wide row of x into dst (dst may alias x):
// (x − mean)/sqrt(var + eps)·w + b, statistics in float64.
func layerNorm(dst, x, w, b []float32, D int, eps float64) {
	T := len(x) / D
	nn.ParallelFor(T, 32, func(lo, hi int) {
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
// softmax(q·kᵀ/√hd)·v per head, heads concatenated. Per head, the score
// product runs as be.Linear with k as an F32 weight and the value product
// as be.MatMul with v as one; the softmax runs in Go.
func attention(be kernels.Backend, dst, qkv []float32, T, D, heads int) error {
	hd := D / heads
	scale := float32(1 / math.Sqrt(float64(hd)))
	q, k, v := make([]float32, T*hd), make([]float32, T*hd), make([]float32, T*hd)
	scores := make([]float32, T*T)
	out := make([]float32, T*hd)
	for h := range heads {
		for t := range T {
			row := qkv[t*3*D:]
			for i := range hd {
				q[t*hd+i] = row[h*hd+i] * scale
			}
			copy(k[t*hd:(t+1)*hd], row[D+h*hd:])
			copy(v[t*hd:(t+1)*hd], row[2*D+h*hd:])
		}
		if err := headProducts(be, out, scores, q, k, v, T, hd); err != nil {
			return fmt.Errorf("head %d: %w", h, err)
		}
		for t := range T {
			copy(dst[t*D+h*hd:t*D+h*hd+hd], out[t*hd:(t+1)*hd])
		}
	}
	return nil
}

// headProducts sets out [T, hd] = softmax(q·kᵀ)·v for one head, q already
// scaled; scores is [T, T] scratch.
func headProducts(be kernels.Backend, out, scores, q, k, v []float32, T, hd int) error {
	kw, err := be.Weight(kernels.F32, T, hd, nn.FloatBytes(k))
	if err != nil {
		return err
	}
	defer be.Free(kw)
	score := nn.Dense{W: kw, In: hd, Out: T}
	if err := score.Apply(be, scores, q, T); err != nil {
		return fmt.Errorf("scores: %w", err)
	}
	softmaxRows(scores, T)
	vw, err := be.Weight(kernels.F32, T, hd, nn.FloatBytes(v))
	if err != nil {
		return err
	}
	defer be.Free(vw)
	pt, err := be.Alloc(kernels.F32, T, T)
	if err != nil {
		return err
	}
	defer be.Free(pt)
	ot, err := be.Alloc(kernels.F32, T, hd)
	if err != nil {
		return err
	}
	defer be.Free(ot)
	if err := be.Upload(pt, nn.FloatBytes(scores)); err != nil {
		return fmt.Errorf("values: upload: %w", err)
	}
	be.MatMul(ot, pt, vw)
	if err := be.Download(nn.FloatBytes(out), ot); err != nil {
		return fmt.Errorf("values: download: %w", err)
	}
	if err := be.Sync(); err != nil {
		return fmt.Errorf("values: %w", err)
	}
	return nil
}

// softmaxRows replaces each n-wide row of x by its softmax.
func softmaxRows(x []float32, n int) {
	nn.ParallelFor(len(x)/n, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*n : (r+1)*n]
			best := float32(math.Inf(-1))
			for _, s := range row {
				best = max(best, s)
			}
			var sum float32
			for j, s := range row {
				e := float32(math.Exp(float64(s - best)))
				row[j] = e
				sum += e
			}
			inv := 1 / sum
			for j := range row {
				row[j] *= inv
			}
		}
	})
}

// mlp computes dst = fc2(gelu(fc1(x))) for T rows, the products on be;
// hid is [T, hidden] scratch. dst may alias x.
func mlp(be kernels.Backend, dst, x, hid []float32, fc1, fc2 *nn.Dense, T int) error {
	if err := fc1.Apply(be, hid, x, T); err != nil {
		return fmt.Errorf("fc1: %w", err)
	}
	gelu(hid)
	if err := fc2.Apply(be, dst, hid, T); err != nil {
		return fmt.Errorf("fc2: %w", err)
	}
	return nil
}

// gelu applies the exact (erf) GELU, x·½(1 + erf(x/√2)), in place.
func gelu(x []float32) {
	nn.ParallelFor(len(x), 4096, func(lo, hi int) {
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
