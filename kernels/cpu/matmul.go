package cpu

import (
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// The matrix products below read weights in their checkpoint dtype and
// convert them on the fly; no full f32 copy of a matrix is ever made.
//
// T = 1 (decode) is a matrix-vector product bound by memory bandwidth: the
// kernels stream each weight row once, converting in registers.
//
// T > 1 (prefill) is bound by arithmetic: the drivers block over T and N,
// convert one weight tile to f32 into a small cache-resident scratch buffer,
// and run a register-blocked micro-kernel over every row of x with it.
//
// Preconditions (checked by the backend): len(x) >= T*K, len(dst) >= T*N,
// len(w) >= N*K*dt.Size(). The kernels never read outside those slices.

// Blocking parameters of the GEMM drivers.
const (
	ntKMax     = 1024      // K block of linear (dot-product form)
	ntTileElts = 24 * 1024 // f32 elements of one converted weight tile (96 KiB)
	nnKBlock   = 256       // K block of matmul (outer-product form)
	nnNBlock   = 128       // N block of matmul, a multiple of 16
)

// linear sets dst[T,N] = x[T,K] · wᵀ where w is [N,K] in dtype dt (raw
// little-endian bytes: F32, F16 or BF16).
func linear(p *pool, dst, x []float32, T, K int, w []byte, dt kernels.DType, N int) {
	if T <= 0 || N <= 0 {
		return
	}
	if K <= 0 {
		clear(dst[:T*N])
		return
	}
	ks := p.ks
	es := dt.Size()
	_ = x[T*K-1]
	_ = dst[T*N-1]
	_ = w[N*K*es-1]
	if T == 1 {
		// Rows of 16 KiB or more per chunk keep the per-call overhead small.
		grain := max(4, (16<<10)/(K*es))
		p.For(N, grain, func(lo, hi int) {
			gemvNT(ks, dst, x[:K], w, dt, K, lo, hi)
		})
		return
	}
	p.For(N, 12, func(lo, hi int) {
		s := p.getScratch(ntTileElts + 3*ntKMax)
		gemmNT(ks, *s, dst, x, T, K, w, dt, N, lo, hi)
		p.putScratch(s)
	})
}

// gemvNT sets dst[n] = x · w[n] for n in [lo, hi).
func gemvNT(ks *kernelSet, dst, x []float32, w []byte, dt kernels.DType, K, lo, hi int) {
	rb := K * dt.Size()
	var out [4]float32
	var off [4]int
	for n := lo; n < hi; n += 4 {
		m := min(4, hi-n)
		for i := range off {
			off[i] = (n + min(i, m-1)) * rb
		}
		ks.dot4(&out, x, w, &off, dt)
		copy(dst[n:n+m], out[:m])
	}
}

// gemmNT computes columns [lo, hi) of dst = x · wᵀ for T > 1. Each K block
// of each tile of weight rows is converted once into buf and reused for all
// T rows by the 4×3 dot-product micro-kernel.
func gemmNT(ks *kernelSet, buf, dst, x []float32, T, K int, w []byte, dt kernels.DType, N, lo, hi int) {
	es := dt.Size()
	nkb := (K + ntKMax - 1) / ntKMax
	kc := (K + nkb - 1) / nkb
	kc = (kc + 7) &^ 7
	nc := max(3, ntTileElts/kc/3*3)
	wf := buf[:nc*kc]
	var out [12]float32
	var xs [4][]float32
	var ws [3][]float32
	for kb := 0; kb < K; kb += kc {
		kl := min(kc, K-kb)
		for nb := lo; nb < hi; nb += nc {
			nl := min(nc, hi-nb)
			for r := range nl {
				o := ((nb+r)*K + kb) * es
				ks.decode(wf[r*kl:(r+1)*kl], w[o:o+kl*es], dt)
			}
			for t := 0; t < T; t += 4 {
				mt := min(4, T-t)
				for i := range xs {
					o := (t+min(i, mt-1))*K + kb
					xs[i] = x[o : o+kl]
				}
				for j := 0; j < nl; j += 3 {
					mj := min(3, nl-j)
					for i := range ws {
						o := (j + min(i, mj-1)) * kl
						ws[i] = wf[o : o+kl]
					}
					ks.tileNT(&out, &xs, &ws)
					for i := range mt {
						d := dst[(t+i)*N+nb+j : (t+i)*N+nb+j+mj]
						o := out[3*i : 3*i+mj]
						if kb == 0 {
							copy(d, o)
						} else {
							for jj, v := range o {
								d[jj] += v
							}
						}
					}
				}
			}
		}
	}
}

// matmul sets dst[T,N] = x[T,K] · w where w is [K,N] in dtype dt.
func matmul(p *pool, dst, x []float32, T, K int, w []byte, dt kernels.DType, N int) {
	if T <= 0 || N <= 0 {
		return
	}
	if K <= 0 {
		clear(dst[:T*N])
		return
	}
	ks := p.ks
	es := dt.Size()
	_ = x[T*K-1]
	_ = dst[T*N-1]
	_ = w[N*K*es-1]
	if T == 1 {
		// Split columns; chunks of at least 64 keep each row segment a few
		// cache lines long.
		p.For(N, 64, func(lo, hi int) {
			gemvNN(ks, dst, x[:K], w, dt, K, N, lo, hi)
		})
		return
	}
	scratch := nnKBlock*nnNBlock + 96
	if (N+15)/16 >= 2*p.threads || T < 12 {
		// Enough 16-wide column panels to share: split N.
		p.For((N+15)/16, 1, func(lo, hi int) {
			s := p.getScratch(scratch)
			gemmNN(ks, *s, dst, x, 0, T, K, w, dt, N, 16*lo, min(N, 16*hi))
			p.putScratch(s)
		})
		return
	}
	// Few columns, many rows: split T in multiples of the 6-row tile.
	p.For((T+5)/6, 1, func(lo, hi int) {
		s := p.getScratch(scratch)
		gemmNN(ks, *s, dst, x, 6*lo, min(T, 6*hi), K, w, dt, N, 0, N)
		p.putScratch(s)
	})
}

// gemvNN sets dst[n] = Σ_k x[k]·w[k,n] for n in [lo, hi).
func gemvNN(ks *kernelSet, dst, x []float32, w []byte, dt kernels.DType, K, N, lo, hi int) {
	es := dt.Size()
	d := dst[lo:hi]
	clear(d)
	var a [4]float32
	var off [4]int
	k := 0
	for ; k+4 <= K; k += 4 {
		copy(a[:], x[k:k+4])
		for i := range off {
			off[i] = ((k+i)*N + lo) * es
		}
		ks.axpy4(d, &a, w, &off, dt)
	}
	for ; k < K; k++ {
		o := (k*N + lo) * es
		axpyRow(d, x[k], w[o:o+len(d)*es], dt)
	}
}

// gemmNN computes rows [t0, t1) and columns [lo, hi) of dst = x · w for
// T > 1. Each K×N block of w is converted once into buf (rows padded with
// zeros to a multiple of 16) and reused for all rows by the 6×16
// outer-product micro-kernel.
func gemmNN(ks *kernelSet, buf, dst, x []float32, t0, t1, K int, w []byte, dt kernels.DType, N, lo, hi int) {
	es := dt.Size()
	wf := buf[:nnKBlock*nnNBlock]
	tmp := buf[nnKBlock*nnNBlock : nnKBlock*nnNBlock+96]
	var xs [6][]float32
	for kb := 0; kb < K; kb += nnKBlock {
		kl := min(nnKBlock, K-kb)
		for nb := lo; nb < hi; nb += nnNBlock {
			nl := min(nnNBlock, hi-nb)
			ld := (nl + 15) &^ 15
			for k := range kl {
				o := ((kb+k)*N + nb) * es
				row := wf[k*ld : (k+1)*ld]
				ks.decode(row[:nl], w[o:o+nl*es], dt)
				clear(row[nl:])
			}
			for t := t0; t < t1; t += 6 {
				mt := min(6, t1-t)
				for i := range xs {
					o := (t+min(i, mt-1))*K + kb
					xs[i] = x[o : o+kl]
				}
				for j := 0; j < nl; j += 16 {
					mj := min(16, nl-j)
					panel := wf[j : (kl-1)*ld+j+16]
					if mt == 6 && mj == 16 {
						o := t*N + nb + j
						ks.tileNN(dst[o:o+5*N+16], N, &xs, panel, ld, kb > 0)
						continue
					}
					ks.tileNN(tmp, 16, &xs, panel, ld, false)
					for i := range mt {
						d := dst[(t+i)*N+nb+j : (t+i)*N+nb+j+mj]
						o := tmp[16*i : 16*i+mj]
						if kb == 0 {
							copy(d, o)
						} else {
							for jj, v := range o {
								d[jj] += v
							}
						}
					}
				}
			}
		}
	}
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
