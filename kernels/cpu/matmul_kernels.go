package cpu

import (
	"encoding/binary"
	"math"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// kernelSet is one implementation of the inner loops behind linear and
// matmul. The blocking drivers in matmul.go are shared; only these differ
// between the portable Go version and the SIMD ones. A pool carries the set
// it uses, so tests can run every set on one machine.
//
// Weight rows are addressed as byte offsets into w; a row of n elements of
// dtype dt at offset o is w[o : o+n*dt.Size()].
type kernelSet struct {
	name string
	// dot4 sets out[i] = Σ_k x[k]·r_i[k] for i < 4, where r_i is the row of
	// len(x) elements at offset off[i] of w.
	dot4 func(out *[4]float32, x []float32, w []byte, off *[4]int, dt kernels.DType)
	// dotQ4, where not nil, is the integer kernel of one-token int8
	// products (see matmul_i8q.go): for i < 4 and r_i the row of n int8
	// elements at offset off[i] of w, it sets out[4i+j] = Σ_{k<n} dj[k]·r_i[k]
	// for j < 4, where dj = d[j·ld : j·ld+n] (unsigned bytes); n is a
	// multiple of 64, at most ld and qMaxK.
	dotQ4 func(out *[16]int32, d []byte, ld, n int, w []byte, off *[4]int)
	// toDigits and sumQ, set with dotQ4, put one row of x in its digit
	// form (see toDigitsGeneric) and sum int8 weight rows (see
	// sumQGeneric).
	toDigits func(d []byte, x []float32) (sx float64, ok bool)
	sumQ     func(dst []int32, q []byte, K, n int)
	// gemvNN adds Σ_k x[k]·r_k to d, where r_k is the row of len(d)
	// elements at offset off+k*ldw of w.
	gemvNN func(d, x []float32, w []byte, off, ldw int, dt kernels.DType)
	// decode converts len(dst) elements of dtype dt from src.
	decode func(dst []float32, src []byte, dt kernels.DType)
	// transpose8 sets dst[k*ldd+i] = r_i[k] for i < 8, k < n, where r_i
	// is the row of n elements at offset off[i] of w.
	transpose8 func(dst []float32, ldd int, w []byte, off *[8]int, n int, dt kernels.DType)
	// tileNN sets d[i*ldd+j] = Σ_k x[i][k]·w[k*ldw+j] for i < 6, j < nr,
	// k < len(x[0]) (all x[i] have the same length), or adds to d if acc.
	tileNN func(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool)
	// nr is the width of tileNN's tile: 16, or 32 with 512-bit vectors.
	nr int
	// wkv advances one 64×64 WKV head state by one token (see wkvGeneric).
	wkv func(s, r, w, k, v, a, b, y []float32)
	// wkvSeq, where not nil, runs n tokens of one head from its state
	// held transposed (st[j·64+i] = S[i][j]); token t's values start at
	// first + t·stride of x's tensors. See wkvRun.
	wkvSeq func(st []float32, x *wkvRows, first, stride, n int)
	// prep7 computes one row's WKV inputs in place (see prep7Generic);
	// zv is nil without a value residual.
	prep7 func(k, v, vf, w, a, b, zv []float32, p *prep7Chan)
	// sigmoid and reluSquared set d[i] = f(x[i]) for i < len(d).
	sigmoid, reluSquared, tanh func(d, x []float32)
	// out7 finishes one head of Out7 (see out7Generic).
	out7 func(d, r, k, v, g, rk []float32)
	// gateMix sets d[i] = g·a[i] + (1 − g)·b[i] for i < len(d).
	gateMix func(d, a, b []float32, g float32)
	// layerNorm normalises one row (see layerNormGeneric).
	layerNorm func(dst, x, w, b []float32, eps float32)
	// add sets dst[i] = x[i] + y[i] for i < len(dst).
	add func(dst, x, y []float32)
	// lerp sets dst[i] = x[i] + d[i]·m[i] for i < len(dst).
	lerp func(dst, x, d, m []float32)
	// dwconv sets out to one pixel of a 3×3 depthwise convolution from
	// its nine input pixels src (see dwconvGeneric).
	dwconv func(out []float32, src *[9][]float32, kt []float32)
}

// genericKernels returns the portable Go implementation.
func genericKernels() *kernelSet {
	return &kernelSet{
		name:        "generic",
		dot4:        dot4Generic,
		gemvNN:      gemvNNGeneric,
		decode:      decodeGeneric,
		transpose8:  transpose8Generic,
		tileNN:      tileNNGeneric,
		nr:          16,
		wkv:         wkvGeneric,
		prep7:       prep7Generic,
		sigmoid:     sigmoidGeneric,
		reluSquared: reluSquaredGeneric,
		tanh:        tanhGeneric,
		out7:        out7Generic,
		gateMix:     gateMixGeneric,
		layerNorm:   layerNormGeneric,
		add:         addGeneric,
		lerp:        lerpGeneric,
		dwconv:      dwconvGeneric,
	}
}

// chunk is the number of weight elements the generic kernels convert at a
// time into a stack buffer.
const chunk = 256

func decodeGeneric(dst []float32, src []byte, dt kernels.DType) {
	switch dt {
	case kernels.I8:
		src = src[:len(dst)]
		for i := range dst {
			dst[i] = float32(int8(src[i]))
		}
	case kernels.BF16:
		src = src[:2*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(uint32(src[2*i])<<16 | uint32(src[2*i+1])<<24)
		}
	case kernels.F16:
		half.DecodeF16(dst, src)
	default:
		src = src[:4*len(dst)]
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	}
}

func dot4Generic(out *[4]float32, x []float32, w []byte, off *[4]int, dt kernels.DType) {
	es := dt.Size()
	var r [4][chunk]float32
	var s0, s1, s2, s3 float32
	for k0 := 0; k0 < len(x); k0 += chunk {
		n := min(chunk, len(x)-k0)
		xs := x[k0 : k0+n]
		for i := range r {
			o := off[i] + k0*es
			decodeGeneric(r[i][:n], w[o:o+n*es], dt)
		}
		r0, r1, r2, r3 := r[0][:len(xs)], r[1][:len(xs)], r[2][:len(xs)], r[3][:len(xs)]
		for k, v := range xs {
			s0 += v * r0[k]
			s1 += v * r1[k]
			s2 += v * r2[k]
			s3 += v * r3[k]
		}
	}
	*out = [4]float32{s0, s1, s2, s3}
}

func gemvNNGeneric(d, x []float32, w []byte, off, ldw int, dt kernels.DType) {
	es := dt.Size()
	var r [4][chunk]float32
	for j0 := 0; j0 < len(d); j0 += chunk {
		n := min(chunk, len(d)-j0)
		ds := d[j0 : j0+n]
		k := 0
		for ; k+4 <= len(x); k += 4 {
			for i := range r {
				o := off + (k+i)*ldw + j0*es
				decodeGeneric(r[i][:n], w[o:o+n*es], dt)
			}
			a0, a1, a2, a3 := x[k], x[k+1], x[k+2], x[k+3]
			r0, r1, r2, r3 := r[0][:n], r[1][:n], r[2][:n], r[3][:n]
			for j := range ds {
				ds[j] += a0*r0[j] + a1*r1[j] + a2*r2[j] + a3*r3[j]
			}
		}
		for ; k < len(x); k++ {
			o := off + k*ldw + j0*es
			decodeGeneric(r[0][:n], w[o:o+n*es], dt)
			a := x[k]
			for j, v := range r[0][:n] {
				ds[j] += a * v
			}
		}
	}
}

func transpose8Generic(dst []float32, ldd int, w []byte, off *[8]int, n int, dt kernels.DType) {
	es := dt.Size()
	var r [chunk]float32
	for i, o := range off {
		for k0 := 0; k0 < n; k0 += chunk {
			m := min(chunk, n-k0)
			decodeGeneric(r[:m], w[o+k0*es:o+(k0+m)*es], dt)
			for k, v := range r[:m] {
				dst[(k0+k)*ldd+i] = v
			}
		}
	}
}

func tileNNGeneric(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool) {
	n := len(x[0])
	var s [6][16]float32
	for k := range n {
		row := (*[16]float32)(w[k*ldw : k*ldw+16])
		for i := range s {
			a := x[i][k]
			si := &s[i]
			for j, v := range row {
				si[j] += a * v
			}
		}
	}
	for i := range s {
		di := d[i*ldd : i*ldd+16]
		if acc {
			for j, v := range s[i] {
				di[j] += v
			}
		} else {
			copy(di, s[i][:])
		}
	}
}

// tileNNGeneric32 is tileNNGeneric for a 6×32 tile: two 6×16 tiles.
func tileNNGeneric32(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool) {
	tileNNGeneric(d, ldd, x, w, ldw, acc)
	if n := len(x[0]); n > 0 {
		tileNNGeneric(d[16:], ldd, x, w[16:], ldw, acc)
	} else {
		tileNNGeneric(d[16:], ldd, x, w, ldw, acc)
	}
}
