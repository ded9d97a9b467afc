package cpu

import (
	"math"
	"sync/atomic"
)

// One-token int8 products in integer arithmetic (kernelSet.dotQ4, the
// AVX512_VNNI instruction VPDPBUSD: unsigned bytes times signed bytes, four
// products summed into each 32-bit lane).
//
// Each row of x is put in a 32-bit fixed-point form once per call: with
// m = max_k |x_k| and s = m/(2^31 − 1),
//
//	v_k = round(x_k / s) ∈ [−(2^31 − 1), 2^31 − 1],
//	u_k = v_k + 2^31 ∈ [1, 2^32 − 1],
//
// and u_k is stored as four unsigned byte digits d_j = (u_k >> 8j) & 255.
// For a weight row q (int8) the kernel sums acc_j = Σ_k d_j[k]·q[k]
// (j = 0..3) in int32, and with sumq = Σ_k q[k] (per weight row, made
// once: rowSums)
//
//	S = Σ_j acc_j·2^(8j) − sumq·2^31 = Σ_k v_k·q[k]
//
// exactly (in int64). The output is float32(S · s · scale_n).
//
// Error. v_k·s differs from x_k by at most s/2 = m/(2^32 − 2) (rounding
// to nearest; the float64 arithmetic that forms v_k and s adds a relative
// 2^−21 to that), and S is exact, so before the final rounding
//
//	|y_n − Σ_k x_k·q[k]·scale_n| ≤ (m/(2^32 − 2))·Σ_k |q[k]|·scale_n
//
// (the float64 products S·s·scale_n add a relative 2^−52), then the
// result is rounded once to float32 (half an ulp). That is one rounding
// of each activation to 32 bits relative to the largest one: below the
// error of the float32 path (the products summed in float32, each
// partial sum rounded to 2^−24 of itself) unless the entries that matter
// are some 2^8 below the largest. Measured for K = 2048 and 8192, random
// int8 rows, against float64: rms error 2.5–2.9e-8 of the rms output (the
// final rounding to float32) against 1.5–3.8e-7 for the float32 kernel,
// with x normal and with one x_k = 40 or 1000 among them. (A 24-bit form,
// three digits and the weight sums in the kernel, measured 1.2–1.6e-7
// with x normal but 1.0–1.3e-6 with the outlier at 40, where every other
// activation's rounding grows with m; the fourth digit costs the kernel
// nothing now that the weight sums are kept per weight.)
//
// Range. Each |d_j[k]·q[k]| ≤ 255·128 and each int32 sum holds K of them
// (the kernel's 16 lanes are added in int32 too), so K ≤ qMaxK keeps
// 255·128·K < 2^31. Rows of x holding a NaN or an infinity, and longer
// rows, go through the float kernel (dot4).

const (
	// qMax is the largest |v_k|: 2^31 − 1.
	qMax = 1<<31 - 1
	// qMaxK is the longest row the integer kernel takes (255·128·K < 2^31).
	qMaxK = 65535
)

// actDigits is the digit form of up to smallT rows of x, from
// quantizeActs. It is scratch memory kept in the pool.
type actDigits struct {
	// dig holds row t's digits d0..d3, K bytes each, d_j at 4tK + jK.
	dig []byte
	// sx[t] is row t's step s (0 for a zero row).
	sx [smallT]float64
}

// getDigits returns digit scratch for T rows of K elements; give it back
// with putDigits.
func (p *pool) getDigits(T, K int) *actDigits {
	n := 4 * T * K
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
		sx, ok := ks.toDigits(a.dig[4*t*K:4*(t+1)*K], x[t*K:(t+1)*K])
		if !ok {
			return false
		}
		a.sx[t] = sx
	}
	return true
}

// toDigitsGeneric is kernelSet.toDigits in Go: it writes the digits
// d0..d3 of x (K = len(x) elements) to d[jK : (j+1)K] and returns the step
// s = m/(2^31 − 1), or ok false if x holds a NaN or an infinity. A zero x
// gives s = 0 and leaves d as it was.
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
	d0, d1, d2, d3 := d[k0:K], d[K+k0:2*K], d[2*K+k0:3*K], d[3*K+k0:4*K]
	for k, f := range x[k0:] {
		u := uint32(int32(math.RoundToEven(float64(f)*inv))) ^ 1<<31
		d0[k], d1[k], d2[k], d3[k] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	return m / qMax, true
}

// rowSums holds Σ_{k<K&^63} q[n][k] for the rows n of an I8 weight (the
// part of each row dotQ4 takes), made on first use and kept: a weight's
// values do not change while it is in use. The zero value is ready; an
// I8 buffer carries one.
type rowSums struct {
	s atomic.Pointer[[]int32]
}

// get returns the sums for q [N,K], making them (in parallel on p) the
// first time. Calls racing on a new weight may each make them.
func (r *rowSums) get(p *pool, q []byte, N, K int) []int32 {
	if s := r.s.Load(); s != nil && len(*s) == N {
		return *s
	}
	s := make([]int32, N)
	k64 := K &^ 63
	sum := p.ks.sumQ
	if sum == nil {
		sum = sumQGeneric
	}
	p.For(N, max(4, (64<<10)/K), func(lo, hi int) {
		sum(s[lo:hi], q[lo*K:hi*K], K, k64)
	})
	r.s.Store(&s)
	return s
}

// sumQGeneric is kernelSet.sumQ in Go: dst[i] = Σ_{k<n} int8(q[i·K+k]).
func sumQGeneric(dst []int32, q []byte, K, n int) {
	for i := range dst {
		var a int32
		for _, b := range q[i*K : i*K+n] {
			a += int32(int8(b))
		}
		dst[i] = a
	}
}

// gemvQRows sets dst[t][n] = x[t]·(q[n]·scale[n]) for t < T and n in
// [lo, hi), x in digit form (a), four weight rows at a time for every t;
// the multiple-of-64 part of each row goes through ks.dotQ4, the rest is
// summed here, also exactly.
func gemvQRows(ks *kernelSet, dst []float32, a *actDigits, T, K, N int, q []byte, scale []float32, sums []int32, lo, hi int) {
	k64 := K &^ 63
	var out [16]int32
	var off [4]int
	var sq [4]int32
	for n := lo; n < hi; n += 4 {
		m := min(4, hi-n)
		for i := range off {
			off[i] = (n + min(i, m-1)) * K
			sq[i] = sums[n+min(i, m-1)]
		}
		for t := range T {
			row := dst[t*N+n : t*N+n+m]
			sx := a.sx[t]
			if sx == 0 {
				clear(row)
				continue
			}
			d := a.dig[4*t*K : 4*(t+1)*K]
			var s [4]int64
			if k64 > 0 {
				ks.dotQ4(&out, d, K, k64, q, &off)
				s[0] = int64(out[3])<<24 + int64(out[2])<<16 + int64(out[1])<<8 + int64(out[0]) - int64(sq[0])<<31
				s[1] = int64(out[7])<<24 + int64(out[6])<<16 + int64(out[5])<<8 + int64(out[4]) - int64(sq[1])<<31
				s[2] = int64(out[11])<<24 + int64(out[10])<<16 + int64(out[9])<<8 + int64(out[8]) - int64(sq[2])<<31
				s[3] = int64(out[15])<<24 + int64(out[14])<<16 + int64(out[13])<<8 + int64(out[12]) - int64(sq[3])<<31
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
	d0, d1, d2, d3 := d[k0:K], d[K+k0:2*K], d[2*K+k0:3*K], d[3*K+k0:4*K]
	w = w[:len(d0)]
	var s int64
	for k, b := range w {
		u := int64(d3[k])<<24 | int64(d2[k])<<16 | int64(d1[k])<<8 | int64(d0[k])
		s += (u - 1<<31) * int64(int8(b))
	}
	return s
}
