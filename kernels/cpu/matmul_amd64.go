//go:build !purego

package cpu

import (
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
)

// CPU feature detection, from CPUID and XGETBV.

func cpuid(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv() (a, d uint32)

// avx512 reports whether the CPU and OS support AVX-512 F and BW (512-bit
// registers, the word-to-dword widening the bf16 kernels use) on top of
// AVX2, FMA and F16C.
func avx512() bool {
	if ok, f16c := cpuFeatures(); !ok || !f16c {
		return false
	}
	const zmmState = 0xe0 // opmask, upper halves of ZMM0-15, ZMM16-31
	if xcr0, _ := xgetbv(); xcr0&zmmState != zmmState {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	const f, bw = 1 << 16, 1 << 30
	return b7&(f|bw) == f|bw
}

// avx512VNNI reports whether avx512 holds and the CPU has AVX512_VNNI
// (VPDPBUSD on 512-bit registers).
func avx512VNNI() bool {
	if !avx512() {
		return false
	}
	_, _, c7, _ := cpuid(7, 0)
	const vnni = 1 << 11
	return c7&vnni != 0
}

// cpuFeatures reports whether the CPU and OS support AVX2 with FMA, and
// whether F16C (half-precision conversion) is present too.
func cpuFeatures() (avx2FMA, f16c bool) {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false, false
	}
	_, _, c1, _ := cpuid(1, 0)
	const (
		fma     = 1 << 12
		osxsave = 1 << 27
		avx     = 1 << 28
		f16cBit = 1 << 29
	)
	if c1&(fma|osxsave|avx) != fma|osxsave|avx {
		return false, false
	}
	if xcr0, _ := xgetbv(); xcr0&6 != 6 { // OS saves XMM and YMM state
		return false, false
	}
	_, b7, _, _ := cpuid(7, 0)
	if b7&(1<<5) == 0 { // AVX2
		return false, false
	}
	return true, c1&f16cBit != 0
}

// bestKernels returns the fastest kernel set this CPU supports.
func bestKernels() *kernelSet {
	if avx512VNNI() {
		return avx512VNNIKernels()
	}
	if avx512() {
		return avx512Kernels()
	}
	ok, f16c := cpuFeatures()
	if !ok {
		return genericKernels()
	}
	return avx2Kernels(f16c)
}

// avx2Kernels returns the AVX2+FMA kernel set; with f16c false, F16
// weights go through the portable code.
func avx2Kernels(f16c bool) *kernelSet {
	a := avx2{f16c: f16c}
	name := "avx2"
	if !f16c {
		name = "avx2-nof16c"
	}
	return &kernelSet{
		name:        name,
		dot4:        a.dot4,
		gemvNN:      a.gemvNN,
		decode:      a.decode,
		transpose8:  a.transpose8,
		tileNN:      tileNNAVX2,
		nr:          16,
		wkv:         wkvAVX2,
		prep7:       prep7RowAVX2,
		sigmoid:     sigmoidRowAVX2,
		reluSquared: reluSquaredRowAVX2,
		tanh:        tanhRowAVX2,
		out7:        out7RowAVX2,
		gateMix:     gateMixRowAVX2,
		layerNorm:   layerNormRowAVX2,
		add:         addRowAVX2,
		lerp:        lerpRowAVX2,
		dwconv:      dwconvRowAVX2,
	}
}

//go:noescape
func dot4BF16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4F16(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4F32(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func dot4I8(x *float32, w0, w1, w2, w3 *byte, n int, out *[4]float32)

//go:noescape
func gemvNNBF16(d *float32, n int, x *float32, k int, w *byte, ldw int)

//go:noescape
func gemvNNF16(d *float32, n int, x *float32, k int, w *byte, ldw int)

//go:noescape
func gemvNNF32(d *float32, n int, x *float32, k int, w *byte, ldw int)

//go:noescape
func decodeBF16(dst *float32, src *byte, n int)

//go:noescape
func decodeF16(dst *float32, src *byte, n int)

//go:noescape
func transpose8BF16(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)

//go:noescape
func transpose8F16(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)

//go:noescape
func transpose8I8(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)

//go:noescape
func transpose8F32(dst *float32, ldd int, w0, w1, w2, w3, w4, w5, w6, w7 *byte, n int)

//go:noescape
func tileNN6x16(d *float32, ldd int, x0, x1, x2, x3, x4, x5 *float32, w *float32, ldw int, n int, acc bool)

// avx2 holds the wrappers that check bounds, call the assembly on the
// multiple-of-8 part and finish tails in Go.
type avx2 struct {
	f16c bool
}

// rows returns pointers to four rows of n elements of es bytes at the
// given offsets of w, panicking if one lies outside w.
func rows(w []byte, off *[4]int, n, es int) (p0, p1, p2, p3 *byte) {
	if n == 0 {
		return
	}
	for _, o := range off {
		_ = w[o : o+n*es]
	}
	return &w[off[0]], &w[off[1]], &w[off[2]], &w[off[3]]
}

func (a avx2) dot4(out *[4]float32, x []float32, w []byte, off *[4]int, dt kernels.DType) {
	if dt == kernels.I8 {
		a.dot4I8(out, x, w, off)
		return
	}
	if dt == kernels.F16 && !a.f16c {
		dot4Generic(out, x, w, off, dt)
		return
	}
	n := len(x)
	n8 := n &^ 7
	*out = [4]float32{}
	if n8 > 0 {
		es := dt.Size()
		p0, p1, p2, p3 := rows(w, off, n, es)
		switch dt {
		case kernels.BF16:
			dot4BF16(&x[0], p0, p1, p2, p3, n8, out)
		case kernels.F16:
			dot4F16(&x[0], p0, p1, p2, p3, n8, out)
		default:
			dot4F32(&x[0], p0, p1, p2, p3, n8, out)
		}
	}
	if n8 < n {
		var t [4]float32
		var tail [4]int
		es := dt.Size()
		for i, o := range off {
			tail[i] = o + n8*es
		}
		dot4Generic(&t, x[n8:], w, &tail, dt)
		for i := range out {
			out[i] += t[i]
		}
	}
}

// dot4I8 is dot4 for int8 rows (unscaled).
func (a avx2) dot4I8(out *[4]float32, x []float32, w []byte, off *[4]int) {
	n := len(x)
	n8 := n &^ 7
	*out = [4]float32{}
	if n8 > 0 {
		p0, p1, p2, p3 := rows(w, off, n, 1)
		dot4I8(&x[0], p0, p1, p2, p3, n8, out)
	}
	if n8 < n {
		var t [4]float32
		var tail [4]int
		for i, o := range off {
			tail[i] = o + n8
		}
		dot4Generic(&t, x[n8:], w, &tail, kernels.I8)
		for i := range out {
			out[i] += t[i]
		}
	}
}

func (a avx2) gemvNN(d, x []float32, w []byte, off, ldw int, dt kernels.DType) {
	if dt == kernels.I8 {
		gemvNNGeneric(d, x, w, off, ldw, dt)
		return
	}
	n, k := len(d), len(x)
	n8, k4 := n&^7, k&^3
	if dt == kernels.F16 && !a.f16c {
		n8 = 0
	}
	es := dt.Size()
	if n8 > 0 && k4 > 0 {
		_ = w[off : off+(k-1)*ldw+n*es]
		p := &w[off]
		switch dt {
		case kernels.BF16:
			gemvNNBF16(&d[0], n8, &x[0], k4, p, ldw)
		case kernels.F16:
			gemvNNF16(&d[0], n8, &x[0], k4, p, ldw)
		default:
			gemvNNF32(&d[0], n8, &x[0], k4, p, ldw)
		}
	} else {
		k4 = 0
	}
	if n8 < n && k4 > 0 {
		gemvNNGeneric(d[n8:], x[:k4], w, off+n8*es, ldw, dt)
	}
	if k4 < k {
		gemvNNGeneric(d, x[k4:], w, off+k4*ldw, ldw, dt)
	}
}

func (a avx2) decode(dst []float32, src []byte, dt kernels.DType) {
	n := len(dst)
	n8 := n &^ 7
	switch {
	case n8 == 0, dt == kernels.I8:
		n8 = 0
	case dt == kernels.BF16:
		_ = src[2*n-1]
		decodeBF16(&dst[0], &src[0], n8)
	case dt == kernels.F16 && a.f16c:
		_ = src[2*n-1]
		decodeF16(&dst[0], &src[0], n8)
	case dt == kernels.F32:
		_ = src[4*n-1]
		copy(dst, unsafe.Slice((*float32)(unsafe.Pointer(&src[0])), n))
		return
	default:
		n8 = 0
	}
	es := dt.Size()
	decodeGeneric(dst[n8:], src[n8*es:n*es], dt)
}

func (a avx2) transpose8(dst []float32, ldd int, w []byte, off *[8]int, n int, dt kernels.DType) {
	n8 := n &^ 7
	if dt == kernels.F16 && !a.f16c {
		n8 = 0
	}
	es := dt.Size()
	if n8 > 0 {
		_ = dst[(n-1)*ldd+7]
		var p [8]*byte
		for i, o := range off {
			_ = w[o : o+n*es]
			p[i] = &w[o]
		}
		switch dt {
		case kernels.BF16:
			transpose8BF16(&dst[0], ldd, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], n8)
		case kernels.F16:
			transpose8F16(&dst[0], ldd, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], n8)
		case kernels.I8:
			transpose8I8(&dst[0], ldd, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], n8)
		default:
			transpose8F32(&dst[0], ldd, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], n8)
		}
	}
	if n8 < n {
		var tail [8]int
		for i, o := range off {
			tail[i] = o + n8*es
		}
		transpose8Generic(dst[n8*ldd:], ldd, w, &tail, n-n8, dt)
	}
}

func tileNNAVX2(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool) {
	n := len(x[0])
	_ = d[5*ldd+15]
	if n == 0 {
		tileNNGeneric(d, ldd, x, w, ldw, acc)
		return
	}
	_ = w[(n-1)*ldw+15]
	x0, x1, x2, x3, x4, x5 := x[0][:n], x[1][:n], x[2][:n], x[3][:n], x[4][:n], x[5][:n]
	tileNN6x16(&d[0], ldd, &x0[0], &x1[0], &x2[0], &x3[0], &x4[0], &x5[0], &w[0], ldw, n, acc)
}

// allKernels returns every kernel set this CPU can run, for tests.
func allKernels() []*kernelSet {
	ks := []*kernelSet{genericKernels()}
	if ok, f16c := cpuFeatures(); ok {
		ks = append(ks, avx2Kernels(false))
		if f16c {
			ks = append(ks, avx2Kernels(true))
		}
	}
	if avx512() {
		ks = append(ks, avx512Kernels())
	}
	if avx512VNNI() {
		ks = append(ks, avx512VNNIKernels())
	}
	return ks
}
