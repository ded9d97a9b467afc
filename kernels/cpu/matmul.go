package cpu

import (
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// linear sets dst[T,N] = x[T,K] · wᵀ where w is [N,K] in dtype dt.
func linear(p *pool, dst, x []float32, T, K int, w []byte, dt kernels.DType, N int) {
	p.For(N, 16, func(lo, hi int) {
		row := make([]float32, K)
		for n := lo; n < hi; n++ {
			decodeRow(row, w, dt, n*K)
			for t := range T {
				xt := x[t*K : t*K+K]
				var s float32
				for k, v := range row {
					s += xt[k] * v
				}
				dst[t*N+n] = s
			}
		}
	})
}

// matmul sets dst[T,N] = x[T,K] · w where w is [K,N] in dtype dt.
func matmul(p *pool, dst, x []float32, T, K int, w []byte, dt kernels.DType, N int) {
	p.For(T, 1, func(lo, hi int) {
		row := make([]float32, N)
		for t := lo; t < hi; t++ {
			clear(dst[t*N : t*N+N])
		}
		for k := range K {
			decodeRow(row, w, dt, k*N)
			for t := lo; t < hi; t++ {
				a := x[t*K+k]
				d := dst[t*N : t*N+N]
				for n, v := range row {
					d[n] += a * v
				}
			}
		}
	})
}

// decodeRow converts len(dst) elements of w, starting at element off, to
// float32.
func decodeRow(dst []float32, w []byte, dt kernels.DType, off int) {
	n := len(dst)
	switch dt {
	case kernels.BF16:
		half.DecodeBF16(dst, w[2*off:2*(off+n)])
	case kernels.F16:
		half.DecodeF16(dst, w[2*off:2*(off+n)])
	default:
		half.DecodeF32(dst, w[4*off:4*(off+n)])
	}
}
