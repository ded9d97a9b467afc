package cpu

import (
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// Argmax sets dst[t] to the index of row t's largest element (kernels.Greedy).
func (b *Backend) Argmax(dst, x kernels.Tensor) {
	if !(isF32(x) && dst.DType == kernels.I32 && dst.Len() == x.Rows) {
		b.fail("Argmax", "dst %v, x %v", dst, x)
		return
	}
	ids := dst.Buf.(*buffer).i32[dst.Offset : dst.Offset+dst.Len()]
	xs, V := b.f32(x), x.Cols
	b.pool.For(x.Rows, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			ids[t] = argmax(xs[t*V : (t+1)*V])
		}
	})
}

// ArgmaxChecked sets dst[2t] to row t's Argmax and dst[2t+1] to whether
// the row needs a closer look (kernels.Greedy).
func (b *Backend) ArgmaxChecked(dst, x kernels.Tensor, margin float32) {
	if !(isF32(x) && dst.DType == kernels.I32 && dst.Len() == 2*x.Rows && margin >= 0) {
		b.fail("ArgmaxChecked", "dst %v, x %v, margin %v", dst, x, margin)
		return
	}
	out := dst.Buf.(*buffer).i32[dst.Offset : dst.Offset+dst.Len()]
	xs, V := b.f32(x), x.Cols
	b.pool.For(x.Rows, 1, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := xs[t*V : (t+1)*V]
			at := argmax(row)
			out[2*t], out[2*t+1] = at, 0
			if at < 0 {
				out[2*t+1] = 1
				continue
			}
			lim := row[at] - margin
			for i, v := range row {
				if v != v || math.IsInf(float64(v), 0) || i != int(at) && v >= lim {
					out[2*t+1] = 1
					break
				}
			}
		}
	})
}

// argmax is sample.Greedy's definition: the first index of the largest
// value, NaN ignored, −1 when there is none.
func argmax(x []float32) int32 {
	m := float32(math.Inf(-1))
	at := int32(-1)
	for i, v := range x {
		if v > m || at < 0 && v == m {
			m, at = v, int32(i)
		}
	}
	return at
}
