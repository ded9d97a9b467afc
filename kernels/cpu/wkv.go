package cpu

// wkvGeneric advances one 64×64 head state by one token and writes y:
// for each value row i,
//
//	sa = Σ_j a[j]·S[i][j] (old state)
//	S[i][j] = S[i][j]·w[j] + k[j]·v[i] + sa·b[j]
//	y[i] = Σ_j S[i][j]·r[j] (new state)
func wkvGeneric(s, r, w, k, v, a, b, y []float32) {
	const N = 64
	s, r, w, k, v, a, b, y = s[:N*N], r[:N], w[:N], k[:N], v[:N], a[:N], b[:N], y[:N]
	for i := range N {
		row := s[i*N : i*N+N : i*N+N]
		var sa float32
		for j, x := range row {
			sa += a[j] * x
		}
		vi := v[i]
		var acc float32
		for j := range row {
			x := row[j]*w[j] + k[j]*vi + sa*b[j]
			row[j] = x
			acc += x * r[j]
		}
		y[i] = acc
	}
}
