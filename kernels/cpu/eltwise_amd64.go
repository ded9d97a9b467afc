//go:build !purego

package cpu

//go:noescape
func prep7AVX2(k, v, vf, w, a, b, w0, a0, kk, ka, zv, v0 *float32, n int)

//go:noescape
func sigmoidAVX2(dst, x *float32, n int)

//go:noescape
func reluSquaredAVX2(dst, x *float32, n int)

// prep7RowAVX2 is prep7Generic in assembly for heads of 64.
func prep7RowAVX2(k, v, vf, w, a, b, zv []float32, p *prep7Chan) {
	C := len(k)
	if p.n != 64 || C == 0 || C%64 != 0 {
		prep7Generic(k, v, vf, w, a, b, zv, p)
		return
	}
	_, _, _, _, _, _ = v[C-1], vf[C-1], w[C-1], a[C-1], b[C-1], p.w0[C-1]
	_, _, _ = p.a0[C-1], p.kk[C-1], p.ka[C-1]
	zp, v0p := (*float32)(nil), (*float32)(nil)
	if zv != nil {
		_, _ = zv[C-1], p.v0[C-1]
		zp, v0p = &zv[0], &p.v0[0]
	}
	prep7AVX2(&k[0], &v[0], &vf[0], &w[0], &a[0], &b[0], &p.w0[0], &p.a0[0], &p.kk[0], &p.ka[0], zp, v0p, C)
}

// unaryRow sets d[i] = f(x[i]) for i < len(d): the multiple-of-8 part
// through the assembly kernel asm, the rest through generic.
func unaryRow(d, x []float32, asm func(d, x *float32, n int), generic func(d, x []float32)) {
	n := len(d) &^ 7
	if n > 0 {
		_ = x[len(d)-1]
		asm(&d[0], &x[0], n)
	}
	generic(d[n:], x[n:len(d)])
}

// sigmoidRowAVX2 is sigmoidGeneric with the multiple-of-8 part in assembly.
func sigmoidRowAVX2(d, x []float32) { unaryRow(d, x, sigmoidAVX2, sigmoidGeneric) }

// reluSquaredRowAVX2 is reluSquaredGeneric with the multiple-of-8 part in
// assembly.
func reluSquaredRowAVX2(d, x []float32) { unaryRow(d, x, reluSquaredAVX2, reluSquaredGeneric) }

//go:noescape
func dwconvAVX2(out *float32, src *[9]*float32, kt *float32, n int)

//go:noescape
func lerpAVX2(dst, x, d, m *float32, n int)

//go:noescape
func layerNormAVX2(dst, x, w, b *float32, n int, eps float32)

// dwconvRowAVX2 is dwconvGeneric in assembly for a multiple of 8
// channels.
func dwconvRowAVX2(out []float32, src *[9][]float32, kt []float32) {
	C := len(out)
	if C == 0 || C%8 != 0 {
		dwconvGeneric(out, src, kt)
		return
	}
	_ = kt[C*dwTaps-1]
	var p [9]*float32
	for t, s := range src {
		_ = s[C-1]
		p[t] = &s[0]
	}
	dwconvAVX2(&out[0], &p, &kt[0], C)
}

// lerpRowAVX2 is lerpGeneric with the multiple-of-8 part in assembly.
func lerpRowAVX2(dst, x, d, m []float32) {
	n := len(dst) &^ 7
	if n > 0 {
		_, _, _ = x[len(dst)-1], d[len(dst)-1], m[len(dst)-1]
		lerpAVX2(&dst[0], &x[0], &d[0], &m[0], n)
	}
	lerpGeneric(dst[n:], x[n:], d[n:], m[n:])
}

// layerNormRowAVX2 is layerNormGeneric in assembly for rows of a multiple
// of 8.
func layerNormRowAVX2(dst, x, w, b []float32, eps float32) {
	n := len(x)
	if n == 0 || n%8 != 0 {
		layerNormGeneric(dst, x, w, b, eps)
		return
	}
	_ = dst[n-1]
	var wp, bp *float32
	if w != nil {
		_, _ = w[n-1], b[n-1]
		wp, bp = &w[0], &b[0]
	}
	layerNormAVX2(&dst[0], &x[0], wp, bp, n, eps)
}

//go:noescape
func addAVX2(dst, x, y *float32, n int)

// addRowAVX2 is addGeneric with the multiple-of-8 part in assembly.
func addRowAVX2(dst, x, y []float32) {
	n := len(dst) &^ 7
	if n > 0 {
		_, _ = x[len(dst)-1], y[len(dst)-1]
		addAVX2(&dst[0], &x[0], &y[0], n)
	}
	addGeneric(dst[n:], x[n:], y[n:])
}

//go:noescape
func tanhAVX2(dst, x *float32, n int)

//go:noescape
func out7AVX2(d, r, k, v, gate, rk *float32, n int)

//go:noescape
func gateMixAVX2(d, a, b *float32, gv float32, n int)

// tanhRowAVX2 is tanhGeneric with the multiple-of-8 part in assembly.
func tanhRowAVX2(d, x []float32) { unaryRow(d, x, tanhAVX2, tanhGeneric) }

// out7RowAVX2 is out7Generic in assembly for heads of a multiple of 8.
func out7RowAVX2(d, r, k, v, g, rk []float32) {
	n := len(d)
	if n == 0 || n%8 != 0 {
		out7Generic(d, r, k, v, g, rk)
		return
	}
	_, _, _, _, _ = r[n-1], k[n-1], v[n-1], g[n-1], rk[n-1]
	out7AVX2(&d[0], &r[0], &k[0], &v[0], &g[0], &rk[0], n)
}

// gateMixRowAVX2 is gateMixGeneric with the multiple-of-8 part in
// assembly.
func gateMixRowAVX2(d, a, b []float32, g float32) {
	n := len(d) &^ 7
	if n > 0 {
		_, _ = a[len(d)-1], b[len(d)-1]
		gateMixAVX2(&d[0], &a[0], &b[0], g, n)
	}
	gateMixGeneric(d[n:], a[n:], b[n:], g)
}
