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
