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

// wkvRows are the operands of a WKV run, whole [T, C] tensors: a head's
// values for one token are the 64 starting at some offset of each.
type wkvRows struct{ r, w, k, v, a, b, y []float32 }

// wkvSeqMin is the shortest run worth transposing a state for.
const wkvSeqMin = 8

// wkvRun advances the 64×64 head state S over n tokens whose values start
// at offsets first, first+stride, … of x's tensors (stride may be
// negative: a sequence read in reverse), writing each token's y there.
func (ks *kernelSet) wkvRun(p *pool, S []float32, x *wkvRows, first, stride, n int) {
	const N = 64
	if ks.wkvSeq != nil && n >= wkvSeqMin {
		buf := p.getScratch(N * N)
		st := *buf
		transpose64(st, S)
		ks.wkvSeq(st, x, first, stride, n)
		transpose64(S, st)
		p.putScratch(buf)
		return
	}
	for t := range n {
		o := first + t*stride
		ks.wkv(S, x.r[o:o+N], x.w[o:o+N], x.k[o:o+N], x.v[o:o+N], x.a[o:o+N], x.b[o:o+N], x.y[o:o+N])
	}
}

// transpose64 sets dst to the transpose of the 64×64 matrix src.
func transpose64(dst, src []float32) {
	const N = 64
	dst, src = dst[:N*N], src[:N*N]
	for i0 := 0; i0 < N; i0 += 8 {
		for j0 := 0; j0 < N; j0 += 8 {
			for i := i0; i < i0+8; i++ {
				row := src[i*N+j0 : i*N+j0+8]
				for j, v := range row {
					dst[(j0+j)*N+i] = v
				}
			}
		}
	}
}
