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
// T > 1 (prefill) is bound by arithmetic. Both products become the same
// blocked GEMM: a kc×nc tile of the weight is converted once to f32 in the
// layout [k][n] (transposed for linear) into an L2-resident scratch buffer,
// then a 6×16 (6×32 with AVX-512) register-blocked micro-kernel sweeps
// every row of x over it.
// Tiles are shaped to read the weight in long contiguous runs (whole rows
// of w where possible): short strided runs leave the hardware prefetcher
// idle and make a cold tile's conversion latency-bound, which dominates
// when T is small.
//
// Preconditions (checked by the backend): len(x) >= T*K, len(dst) >= T*N,
// len(w) >= N*K*dt.Size(). The kernels never read outside those slices.

// tileElts is the size in f32 elements of a converted weight tile
// (128 KiB); gemmScratch adds one 6×32 output tile for the edges.
const (
	tileElts    = 32 << 10
	gemmScratch = tileElts + 6*32
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
	if T <= smallT {
		// Rows of 16 KiB or more per chunk keep the per-call overhead small.
		grain := max(4, (16<<10)/(K*es))
		p.For(N, grain, func(lo, hi int) {
			gemvNTRows(ks, dst, x, T, w, dt, K, N, lo, hi)
		})
		return
	}
	// Pack rows nb..nb+nl of w, columns kb..kb+kl, transposed.
	pack := func(wf []float32, ld, kb, kl, nb, nl int) {
		var off [8]int
		for r0 := 0; r0 < ld; r0 += 8 {
			for i := range off {
				off[i] = ((nb+min(r0+i, nl-1))*K + kb) * es
			}
			ks.transpose8(wf[r0:], ld, w, &off, kl, dt)
		}
	}
	gemm(p, dst, x, T, K, N, true, pack)
}

// smallT is the most rows of x that a Linear runs as matrix-vector
// products: a few sessions' tokens decoded together (core.Batch) share each
// group of four weight rows while it is in L1, so the weights are read
// from memory once; more rows go to the GEMM, which converts each weight
// tile once for all of them.
const smallT = 8

// gemvNTRows sets dst[t][n] = x[t] · w[n] for t < T and n in [lo, hi),
// four weight rows at a time for every t.
func gemvNTRows(ks *kernelSet, dst, x []float32, T int, w []byte, dt kernels.DType, K, N, lo, hi int) {
	if T == 1 {
		gemvNT(ks, dst, x[:K], w, dt, K, lo, hi)
		return
	}
	rb := K * dt.Size()
	var out [4]float32
	var off [4]int
	for n := lo; n < hi; n += 4 {
		m := min(4, hi-n)
		for i := range off {
			off[i] = (n + min(i, m-1)) * rb
		}
		for t := range T {
			ks.dot4(&out, x[t*K:(t+1)*K], w, &off, dt)
			copy(dst[t*N+n:t*N+n+m], out[:m])
		}
	}
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

// linearI8 sets dst[T,N] = x[T,K] · wᵀ for an I8 weight: q [N,K] int8
// and scale [N], w[n][k] = q[n][k]·scale[n]; sums keeps the weight's row
// sums for the integer kernel (nil: made for this call). Up to smallT tokens sum x·q
// per row and scale the sum: in integers (gemvQRows) where the kernel set
// has dotQ4, else in float32; longer inputs convert tiles to q·scale in
// float32 for the GEMM.
func linearI8(p *pool, dst, x []float32, T, K int, q []byte, scale []float32, sums *rowSums, N int) {
	if T <= 0 || N <= 0 {
		return
	}
	if K <= 0 {
		clear(dst[:T*N])
		return
	}
	ks := p.ks
	_ = x[T*K-1]
	_ = dst[T*N-1]
	_ = q[N*K-1]
	_ = scale[N-1]
	if T <= smallT {
		grain := max(4, (16<<10)/K)
		if ks.dotQ4 != nil && K <= qMaxK {
			a := p.getDigits(T, K)
			defer p.putDigits(a)
			if quantizeActs(ks, a, x, T, K) {
				if sums == nil {
					sums = new(rowSums)
				}
				sq := sums.get(p, q, N, K)
				p.For(N, grain, func(lo, hi int) {
					gemvQRows(ks, dst, a, T, K, N, q, scale, sq, lo, hi)
				})
				return
			}
		}
		p.For(N, grain, func(lo, hi int) {
			gemvNTRows(ks, dst, x, T, q, kernels.I8, K, N, lo, hi)
			for t := range T {
				d := dst[t*N : (t+1)*N]
				for n := lo; n < hi; n++ {
					d[n] *= scale[n]
				}
			}
		})
		return
	}
	pack := func(wf []float32, ld, kb, kl, nb, nl int) {
		var off [8]int
		for r0 := 0; r0 < ld; r0 += 8 {
			for i := range off {
				off[i] = (nb+min(r0+i, nl-1))*K + kb
			}
			ks.transpose8(wf[r0:], ld, q, &off, kl, kernels.I8)
		}
		for k := range kl {
			row := wf[k*ld : k*ld+nl]
			for j := range row {
				row[j] *= scale[nb+j]
			}
		}
	}
	gemm(p, dst, x, T, K, N, true, pack)
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
		// Split K so that each thread streams a contiguous block of rows
		// (splitting N would interleave the threads' reads of every row),
		// at least 16 KiB each, then add up the partial sums.
		rb := N * es
		grain := max(4, (16<<10)/rb)
		chunks := p.chunks(K, grain)
		var part *[]float32
		if chunks > 1 {
			part = p.getScratch((chunks - 1) * N)
			defer p.putScratch(part)
		}
		p.forChunks(K, grain, func(c, lo, hi int) {
			d := dst[:N]
			if c > 0 {
				d = (*part)[(c-1)*N : c*N]
			}
			clear(d)
			ks.gemvNN(d, x[lo:hi], w, lo*rb, rb, dt)
		})
		for c := 1; c < chunks; c++ {
			for n, v := range (*part)[(c-1)*N : c*N] {
				dst[n] += v
			}
		}
		return
	}
	// Pack rows kb..kb+kl of w, columns nb..nb+nl, padding with zeros.
	pack := func(wf []float32, ld, kb, kl, nb, nl int) {
		for k := range kl {
			o := ((kb+k)*N + nb) * es
			row := wf[k*ld : (k+1)*ld]
			ks.decode(row[:nl], w[o:o+nl*es], dt)
			clear(row[nl:])
		}
	}
	gemm(p, dst, x, T, K, N, false, pack)
}

// packFunc converts the weight block of k in [kb, kb+kl) and output
// column n in [nb, nb+nl) to f32 at wf[(k-kb)*ld + (n-nb)], ld being nl
// rounded up to the tile width. Whatever columns nl..ld-1 hold only reaches outputs
// that are computed and discarded.
type packFunc func(wf []float32, ld, kb, kl, nb, nl int)

// gemm sets dst[T,N] = x[T,K] · W for T > 1, where pack supplies blocks of
// W [K,N] in f32; alongK says whether the weight's memory rows run along K
// (linear) or along N (matmul). Work is split over tile-wide column panels,
// or over 6-row groups of x when there are too few panels to share.
func gemm(p *pool, dst, x []float32, T, K, N int, alongK bool, pack packFunc) {
	nr := p.ks.nr
	panels := (N + nr - 1) / nr
	if panels >= 2*p.threads || T < 12 {
		p.For(panels, 1, func(lo, hi int) {
			s := p.getScratch(gemmScratch)
			gemmRange(p.ks, *s, dst, x, 0, T, K, N, nr*lo, min(N, nr*hi), alongK, pack)
			p.putScratch(s)
		})
		return
	}
	p.For((T+5)/6, 1, func(lo, hi int) {
		s := p.getScratch(gemmScratch)
		gemmRange(p.ks, *s, dst, x, 6*lo, min(T, 6*hi), K, N, 0, N, alongK, pack)
		p.putScratch(s)
	})
}

// tileShape returns the K and N extents of the weight tiles gemm converts
// for a range of cols output columns, with kc·nc <= tileElts and nc a
// multiple of nr. Tiles take long runs of the rows of w: up to 512 along
// K for linear (in equal blocks), up to 512 along N for matmul.
func tileShape(K, cols, nr int, alongK bool) (kc, nc int) {
	if alongK {
		// Longer runs help the conversion of a cold tile little beyond
		// 1 KiB (with the transpose's prefetching), while a narrower
		// panel keeps more of x and of the panel in L1.
		nkb := (K + 511) / 512
		kc = ((K+nkb-1)/nkb + 7) &^ 7
		return kc, max(nr, (tileElts/kc)/nr*nr)
	}
	nc = min((cols+nr-1)/nr*nr, 512)
	return min(K, tileElts/nc), nc
}

// gemmRange computes rows [t0, t1) and columns [lo, hi) of gemm.
func gemmRange(ks *kernelSet, buf, dst, x []float32, t0, t1, K, N, lo, hi int, alongK bool, pack packFunc) {
	nr := ks.nr
	kc, nc := tileShape(K, hi-lo, nr, alongK)
	wf := buf[:tileElts]
	tmp := buf[tileElts : tileElts+6*nr]
	var xs [6][]float32
	for kb := 0; kb < K; kb += kc {
		kl := min(kc, K-kb)
		for nb := lo; nb < hi; nb += nc {
			nl := min(nc, hi-nb)
			ld := (nl + nr - 1) / nr * nr
			pack(wf, ld, kb, kl, nb, nl)
			for t := t0; t < t1; t += 6 {
				mt := min(6, t1-t)
				for i := range xs {
					o := (t+min(i, mt-1))*K + kb
					xs[i] = x[o : o+kl]
				}
				for j := 0; j < nl; j += nr {
					mj := min(nr, nl-j)
					panel := wf[j : (kl-1)*ld+j+nr]
					if mt == 6 && mj == nr {
						o := t*N + nb + j
						ks.tileNN(dst[o:o+5*N+nr], N, &xs, panel, ld, kb > 0)
						continue
					}
					ks.tileNN(tmp, nr, &xs, panel, ld, false)
					for i := range mt {
						d := dst[(t+i)*N+nb+j : (t+i)*N+nb+j+mj]
						o := tmp[nr*i : nr*i+mj]
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
	case kernels.I8:
		decodeGeneric(dst, w[off:off+n], dt)
	case kernels.BF16:
		half.DecodeBF16(dst, w[2*off:2*(off+n)])
	case kernels.F16:
		half.DecodeF16(dst, w[2*off:2*(off+n)])
	default:
		half.DecodeF32(dst, w[4*off:4*(off+n)])
	}
}
