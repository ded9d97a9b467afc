//go:build !purego

package cpu

// wkvStepAVX2 is wkvGeneric for one head in AVX2+FMA assembly; every
// pointer addresses 64 floats (s: 64×64).
//
//go:noescape
func wkvStepAVX2(s, r, w, k, v, a, b, y *float32)

func wkvAVX2(s, r, w, k, v, a, b, y []float32) {
	const N = 64
	_, _, _, _, _, _, _, _ = s[N*N-1], r[N-1], w[N-1], k[N-1], v[N-1], a[N-1], b[N-1], y[N-1]
	wkvStepAVX2(&s[0], &r[0], &w[0], &k[0], &v[0], &a[0], &b[0], &y[0])
}

//go:noescape
func wkvSeqAVX512(st, r, w, k, v, a, b, y *float32, stride, n int)

// wkvSeq512 runs n tokens of one head on its transposed state st in
// AVX-512 assembly (see wkvSeqAVX512 and kernelSet.wkvRun).
func wkvSeq512(st []float32, x *wkvRows, first, stride, n int) {
	const N = 64
	if n <= 0 {
		return
	}
	last := first + (n-1)*stride
	lo, hi := min(first, last), max(first, last)+N
	for _, s := range [][]float32{x.r, x.w, x.k, x.v, x.a, x.b, x.y} {
		_ = s[lo:hi]
	}
	_ = st[N*N-1]
	wkvSeqAVX512(&st[0], &x.r[first], &x.w[first], &x.k[first], &x.v[first], &x.a[first], &x.b[first], &x.y[first], 4*stride, n)
}
