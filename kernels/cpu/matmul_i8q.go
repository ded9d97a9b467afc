package cpu

import "math"

// One-token int8 products in integer arithmetic (kernelSet.dotQ4, the
// AVX512_VNNI instruction VPDPBUSD: unsigned bytes times signed bytes, four
// products summed into each 32-bit lane).
//
// Each row of x is put in a 24-bit fixed-point form once per call: with
// m = max_k |x_k| and s = m/(2^23 − 1),
//
//	v_k = round(x_k / s) ∈ [−(2^23 − 1), 2^23 − 1],
//	u_k = v_k + 2^23 ∈ [1, 2^24 − 1],
//
// and u_k is stored as three unsigned byte digits d2 = u>>16, d1 =
// (u>>8)&255, d0 = u&255. For a weight row q (int8), the kernel sums
// acc_j = Σ_k d_j[k]·q[k] (j = 0, 1, 2) and sumq = Σ_k q[k] in int32, and
//
//	S = acc2·2^16 + acc1·2^8 + acc0 − sumq·2^23 = Σ_k v_k·q[k]
//
// exactly (in int64). The output is float32(S · s · scale_n).
//
// Error. v_k·s differs from x_k by at most s/2 = m/(2^24 − 2) (rounding
// to nearest; the float64 arithmetic that forms v_k and s adds a relative
// 2^−29 to that), and S is exact, so before the final rounding
//
//	|y_n − Σ_k x_k·q[k]·scale_n| ≤ (m/(2^24 − 2))·Σ_k |q[k]|·scale_n
//
// (the float64 products S·s·scale_n add a relative 2^−52), then the
// result is rounded once to float32 (half an ulp). That is one rounding
// of each activation to 24 bits relative to the largest one. Where the
// activations are of one magnitude this is as accurate as the float32
// path (which sums the products in float32, each partial sum rounded to
// 2^−24 of itself); measured for K = 2048 and 8192, x normal, random int8
// rows: rms error 1.2–1.6e-7 of the rms output against 1.5–2.7e-7 for the
// float32 kernel. An outlier channel scales every other activation's error
// by m/|x_k|: with one x_k = 40 among normal ones, 1.0–1.3e-6 against
// 1.7–2.9e-7 (entries below s/2 become 0).
//
// Range. Each |d_j[k]·q[k]| ≤ 255·128 and each int32 sum holds K of them
// (the kernel's 16 lanes are added in int32 too), so K ≤ qMaxK keeps
// 255·128·K < 2^31. Rows of x holding a NaN or an infinity, and longer
// rows, go through the float kernel (dot4).

const (
	// qMax is the largest |v_k|: 2^23 − 1.
	qMax = 1<<23 - 1
	// qMaxK is the longest row the integer kernel takes (255·128·K < 2^31).
	qMaxK = 65535
)

// actDigits is the digit form of up to smallT rows of x, from
// quantizeActs. It is scratch memory kept in the pool.
type actDigits struct {
	// dig holds row t's digits d0, d1, d2, K bytes each, at 3tK, 3tK+K
	// and 3tK+2K.
	dig []byte
	// sx[t] is row t's step s (0 for a zero row).
	sx [smallT]float64
}

// getDigits returns digit scratch for T rows of K elements; give it back
// with putDigits.
func (p *pool) getDigits(T, K int) *actDigits {
	n := 3 * T * K
	if a, ok := p.digits.Get().(*actDigits); ok && cap(a.dig) >= n {
		a.dig = a.dig[:n]
		return a
	}
	return &actDigits{dig: make([]byte, n)}
}

func (p *pool) putDigits(a *actDigits) { p.digits.Put(a) }

// quantizeActs writes the digit form of the T rows of K elements of x to a
// with ks.toDigits and reports whether it could: false if a row holds a
// NaN or an infinity.
func quantizeActs(ks *kernelSet, a *actDigits, x []float32, T, K int) bool {
	for t := range T {
		sx, ok := ks.toDigits(a.dig[3*t*K:3*(t+1)*K], x[t*K:(t+1)*K])
		if !ok {
			return false
		}
		a.sx[t] = sx
	}
	return true
}

// toDigitsGeneric is kernelSet.toDigits in Go: it writes the digits d0,
// d1, d2 of x (K = len(x) elements) to d[:K], d[K:2K], d[2K:3K] and
// returns the step s = m/(2^23 − 1), or ok false if x holds a NaN or an
// infinity. A zero x gives s = 0 and leaves d as it was.
func toDigitsGeneric(d []byte, x []float32) (sx float64, ok bool) {
	var mb uint32
	for _, v := range x {
		mb = max(mb, math.Float32bits(v)&^(1<<31))
	}
	return digitsFrom(d, x, 0, mb)
}

// digitsFrom finishes toDigits given mb, the largest |x_k| as float32
// bits (the ordering of non-negative floats is that of their bits; NaNs
// and infinities are the largest), writing the digits of x[k0:].
func digitsFrom(d []byte, x []float32, k0 int, mb uint32) (sx float64, ok bool) {
	if mb >= 0x7f800000 {
		return 0, false
	}
	if mb == 0 {
		return 0, true
	}
	m := float64(math.Float32frombits(mb))
	inv := qMax / m
	K := len(x)
	d0, d1, d2 := d[k0:K], d[K+k0:2*K], d[2*K+k0:3*K]
	for k, v := range x[k0:] {
		u := uint32(int32(math.RoundToEven(float64(v)*inv)) + 1<<23)
		d0[k], d1[k], d2[k] = byte(u), byte(u>>8), byte(u>>16)
	}
	return m / qMax, true
}

// gemvQRows sets dst[t][n] = x[t]·(q[n]·scale[n]) for t < T and n in
// [lo, hi), x in digit form (a), four weight rows at a time for every t;
// the multiple-of-64 part of each row goes through ks.dotQ4, the rest is
// summed here, also exactly.
func gemvQRows(ks *kernelSet, dst []float32, a *actDigits, T, K, N int, q []byte, scale []float32, lo, hi int) {
	k64 := K &^ 63
	var out [16]int32
	var off [4]int
	for n := lo; n < hi; n += 4 {
		m := min(4, hi-n)
		for i := range off {
			off[i] = (n + min(i, m-1)) * K
		}
		for t := range T {
			row := dst[t*N+n : t*N+n+m]
			sx := a.sx[t]
			if sx == 0 {
				clear(row)
				continue
			}
			d := a.dig[3*t*K : 3*(t+1)*K]
			var s [4]int64
			if k64 > 0 {
				ks.dotQ4(&out, d, K, k64, q, &off)
				s[0] = int64(out[2])<<16 + int64(out[1])<<8 + int64(out[0]) - int64(out[3])<<23
				s[1] = int64(out[6])<<16 + int64(out[5])<<8 + int64(out[4]) - int64(out[7])<<23
				s[2] = int64(out[10])<<16 + int64(out[9])<<8 + int64(out[8]) - int64(out[11])<<23
				s[3] = int64(out[14])<<16 + int64(out[13])<<8 + int64(out[12]) - int64(out[15])<<23
			}
			if k64 < K {
				for i := range m {
					s[i] += dotQTail(d, K, k64, q[off[i]+k64:off[i]+K])
				}
			}
			if m == 4 {
				sc := (*[4]float32)(scale[n : n+4])
				r := (*[4]float32)(row)
				r[0] = float32(float64(s[0]) * sx * float64(sc[0]))
				r[1] = float32(float64(s[1]) * sx * float64(sc[1]))
				r[2] = float32(float64(s[2]) * sx * float64(sc[2]))
				r[3] = float32(float64(s[3]) * sx * float64(sc[3]))
				continue
			}
			for i := range row {
				row[i] = float32(float64(s[i]) * sx * float64(scale[n+i]))
			}
		}
	}
}

// dotQTail returns Σ v_k·w[k-k0] for k in [k0, K), v_k from the digits d
// of one row (see gemvQRows).
func dotQTail(d []byte, K, k0 int, w []byte) int64 {
	d0, d1, d2 := d[k0:K], d[K+k0:2*K], d[2*K+k0:3*K]
	w = w[:len(d0)]
	var s int64
	for k, b := range w {
		v := int64(d2[k])<<16 | int64(d1[k])<<8 | int64(d0[k])
		s += (v - 1<<23) * int64(int8(b))
	}
	return s
}
