//go:build !purego

package cpu

import (
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// avx512Kernels returns the AVX-512 kernel set: the matrix-vector products
// and the GEMM micro-kernel on 512-bit registers (a 6×32 tile), the rest
// (conversions, transposes, one-token WKV steps, element-wise
// ops) from the AVX2 set; runs of WKV tokens go through wkvSeqAVX512.
func avx512Kernels() *kernelSet {
	ks := avx2Kernels(true)
	ks.name = "avx512"
	ks.dot4 = dot4AVX512
	ks.gemvNN = gemvNNAVX512
	ks.tileNN = tileNNAVX512
	ks.nr = 32
	ks.wkvSeq = wkvSeq512
	return ks
}

// avx512VNNIKernels returns the AVX-512 set with the integer int8
// products of AVX512_VNNI (dotQ4: see matmul_i8q.go).
func avx512VNNIKernels() *kernelSet {
	ks := avx512Kernels()
	ks.name = "avx512vnni"
	ks.dotQ4 = dotQ4VNNI
	ks.toDigits = toDigitsAVX512
	ks.sumQ = sumQAVX512
	return ks
}

//go:noescape
func maxAbsBits16(x *float32, n int) uint32

//go:noescape
func toDigits16(d *byte, ld int, x *float32, n int, inv float64)

//go:noescape
func sumI8x64(w *byte, n int) int32

// toDigitsAVX512 is kernelSet.toDigits with the multiple-of-16 part of x
// in assembly (the same arithmetic: float64 products, rounded to nearest
// even).
func toDigitsAVX512(d []byte, x []float32) (sx float64, ok bool) {
	K := len(x)
	k16 := K &^ 15
	var mb uint32
	if k16 > 0 {
		mb = maxAbsBits16(&x[0], k16)
	}
	for _, v := range x[k16:] {
		mb = max(mb, math.Float32bits(v)&^(1<<31))
	}
	if k16 == 0 || mb >= 0x7f800000 || mb == 0 {
		return digitsFrom(d, x, 0, mb)
	}
	_ = d[4*K-1]
	toDigits16(&d[0], K, &x[0], k16, qMax/float64(math.Float32frombits(mb)))
	return digitsFrom(d, x, k16, mb)
}

// sumQAVX512 is kernelSet.sumQ with rows of a multiple of 64 in assembly.
func sumQAVX512(dst []int32, q []byte, K, n int) {
	if n&63 != 0 || n == 0 {
		sumQGeneric(dst, q, K, n)
		return
	}
	for i := range dst {
		r := q[i*K : i*K+n]
		dst[i] = sumI8x64(&r[0], n)
	}
}

//go:noescape
func dot4U8x64(d *byte, ld int, w0, w1, w2, w3 *byte, n int, out *[16]int32)

// dotQ4VNNI is kernelSet.dotQ4 in assembly.
func dotQ4VNNI(out *[16]int32, d []byte, ld, n int, w []byte, off *[4]int) {
	n &^= 63
	if n <= 0 {
		*out = [16]int32{}
		return
	}
	_ = d[3*ld+n-1]
	if n > ld {
		panic("cpu: dotQ4: rows longer than the digit rows")
	}
	p0, p1, p2, p3 := rows(w, off, n, 1)
	dot4U8x64(&d[0], ld, p0, p1, p2, p3, n, out)
}

//go:noescape
func dot4BF16x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4F16x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4I8x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4F32x16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func gemvNNBF16x16(d *float32, n int, x *float32, k int, w *byte, ldw int)

//go:noescape
func gemvNNF16x16(d *float32, n int, x *float32, k int, w *byte, ldw int)

//go:noescape
func tileNN6x32(d *float32, ldd int, x0, x1, x2, x3, x4, x5 *float32, w *float32, ldw int, n int, acc bool)

// dot4AVX512 runs the multiple-of-16 part of the rows in assembly and the
// rest through the AVX2 wrapper.
func dot4AVX512(out *[4]float32, x []float32, w []byte, off *[4]int, dt kernels.DType) {
	if dt == kernels.I8 {
		dot4I8AVX512(out, x, w, off)
		return
	}
	n := len(x)
	n16 := n &^ 15
	*out = [4]float32{}
	if n16 > 0 {
		es := dt.Size()
		p0, p1, p2, p3 := rows(w, off, n, es)
		switch dt {
		case kernels.BF16:
			dot4BF16x16(&x[0], p0, p1, p2, p3, n16, out)
		case kernels.F16:
			dot4F16x16(&x[0], p0, p1, p2, p3, n16, out)
		default:
			dot4F32x16(&x[0], p0, p1, p2, p3, n16, out)
		}
	}
	if n16 < n {
		var t [4]float32
		var tail [4]int
		es := dt.Size()
		for i, o := range off {
			tail[i] = o + n16*es
		}
		avx2{f16c: true}.dot4(&t, x[n16:], w, &tail, dt)
		for i := range out {
			out[i] += t[i]
		}
	}
}

// gemvNNAVX512 runs the multiple-of-16 columns and of-4 rows of bf16 and
// f16 weights in assembly and everything else through the AVX2 wrapper.
func gemvNNAVX512(d, x []float32, w []byte, off, ldw int, dt kernels.DType) {
	n, k := len(d), len(x)
	n16, k4 := n&^15, k&^3
	if dt == kernels.F32 || dt == kernels.I8 || n16 == 0 || k4 == 0 {
		avx2{f16c: true}.gemvNN(d, x, w, off, ldw, dt)
		return
	}
	es := dt.Size()
	_ = w[off : off+(k-1)*ldw+n*es]
	p := &w[off]
	if dt == kernels.BF16 {
		gemvNNBF16x16(&d[0], n16, &x[0], k4, p, ldw)
	} else {
		gemvNNF16x16(&d[0], n16, &x[0], k4, p, ldw)
	}
	a := avx2{f16c: true}
	if n16 < n {
		a.gemvNN(d[n16:], x[:k4], w, off+n16*es, ldw, dt)
	}
	if k4 < k {
		a.gemvNN(d, x[k4:], w, off+k4*ldw, ldw, dt)
	}
}

func tileNNAVX512(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool) {
	n := len(x[0])
	_ = d[5*ldd+31]
	if n == 0 {
		tileNNGeneric32(d, ldd, x, w, ldw, acc)
		return
	}
	_ = w[(n-1)*ldw+31]
	x0, x1, x2, x3, x4, x5 := x[0][:n], x[1][:n], x[2][:n], x[3][:n], x[4][:n], x[5][:n]
	tileNN6x32(&d[0], ldd, &x0[0], &x1[0], &x2[0], &x3[0], &x4[0], &x5[0], &w[0], ldw, n, acc)
}

// dot4I8AVX512 is dot4 for int8 rows (unscaled).
func dot4I8AVX512(out *[4]float32, x []float32, w []byte, off *[4]int) {
	n := len(x)
	n16 := n &^ 15
	*out = [4]float32{}
	if n16 > 0 {
		p0, p1, p2, p3 := rows(w, off, n, 1)
		dot4I8x16(&x[0], p0, p1, p2, p3, n16, out)
	}
	if n16 < n {
		var t [4]float32
		var tail [4]int
		for i, o := range off {
			tail[i] = o + n16
		}
		avx2{f16c: true}.dot4I8(&t, x[n16:], w, &tail)
		for i := range out {
			out[i] += t[i]
		}
	}
}
