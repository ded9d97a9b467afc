package cpu

import (
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
	// axpy4 adds Σ_i a[i]·r_i to d, where r_i is the row of len(d)
	// elements at offset off[i] of w.
	axpy4 func(d []float32, a *[4]float32, w []byte, off *[4]int, dt kernels.DType)
	// decode converts len(dst) elements of dtype dt from src.
	decode func(dst []float32, src []byte, dt kernels.DType)
	// tileNT sets out[3i+j] = Σ_k x[i][k]·w[j][k] for i < 4, j < 3; all
	// seven slices have the same length.
	tileNT func(out *[12]float32, x *[4][]float32, w *[3][]float32)
	// tileNN sets d[i*ldd+j] = Σ_k x[i][k]·w[k*ldw+j] for i < 6, j < 16,
	// k < len(x[0]) (all x[i] have the same length), or adds to d if acc.
	tileNN func(d []float32, ldd int, x *[6][]float32, w []float32, ldw int, acc bool)
}

// genericKernels returns the portable Go implementation.
func genericKernels() *kernelSet {
	return &kernelSet{
		name:   "generic",
		dot4:   dot4Generic,
		axpy4:  axpy4Generic,
		decode: decodeGeneric,
		tileNT: tileNTGeneric,
		tileNN: tileNNGeneric,
	}
}

// chunk is the number of weight elements the generic kernels convert at a
// time into a stack buffer.
const chunk = 256

func decodeGeneric(dst []float32, src []byte, dt kernels.DType) {
	switch dt {
	case kernels.BF16:
		half.DecodeBF16(dst, src)
	case kernels.F16:
		half.DecodeF16(dst, src)
	default:
		half.DecodeF32(dst, src)
	}
}

func dot4Generic(out *[4]float32, x []float32, w []byte, off *[4]int, dt kernels.DType) {
	es := dt.Size()
	var r [4][chunk]float32
	var s [4]float32
	for k0 := 0; k0 < len(x); k0 += chunk {
		n := min(chunk, len(x)-k0)
		xs := x[k0 : k0+n]
		for i := range r {
			o := off[i] + k0*es
			decodeGeneric(r[i][:n], w[o:o+n*es], dt)
		}
		r0, r1, r2, r3 := r[0][:n], r[1][:n], r[2][:n], r[3][:n]
		for k, v := range xs {
			s[0] += v * r0[k]
			s[1] += v * r1[k]
			s[2] += v * r2[k]
			s[3] += v * r3[k]
		}
	}
	*out = s
}

func axpy4Generic(d []float32, a *[4]float32, w []byte, off *[4]int, dt kernels.DType) {
	es := dt.Size()
	var r [4][chunk]float32
	for j0 := 0; j0 < len(d); j0 += chunk {
		n := min(chunk, len(d)-j0)
		ds := d[j0 : j0+n]
		for i := range r {
			o := off[i] + j0*es
			decodeGeneric(r[i][:n], w[o:o+n*es], dt)
		}
		r0, r1, r2, r3 := r[0][:n], r[1][:n], r[2][:n], r[3][:n]
		for j := range ds {
			ds[j] += a[0]*r0[j] + a[1]*r1[j] + a[2]*r2[j] + a[3]*r3[j]
		}
	}
}

// axpyRow adds a·r to d, where r is len(d) elements of dtype dt in w.
func axpyRow(d []float32, a float32, w []byte, dt kernels.DType) {
	es := dt.Size()
	var r [chunk]float32
	for j0 := 0; j0 < len(d); j0 += chunk {
		n := min(chunk, len(d)-j0)
		decodeGeneric(r[:n], w[j0*es:(j0+n)*es], dt)
		for j, v := range r[:n] {
			d[j0+j] += a * v
		}
	}
}

func tileNTGeneric(out *[12]float32, x *[4][]float32, w *[3][]float32) {
	n := len(x[0])
	x0, x1, x2, x3 := x[0][:n], x[1][:n], x[2][:n], x[3][:n]
	w0, w1, w2 := w[0][:n], w[1][:n], w[2][:n]
	var s [12]float32
	for k := range n {
		a, b, c := w0[k], w1[k], w2[k]
		s[0] += x0[k] * a
		s[1] += x0[k] * b
		s[2] += x0[k] * c
		s[3] += x1[k] * a
		s[4] += x1[k] * b
		s[5] += x1[k] * c
		s[6] += x2[k] * a
		s[7] += x2[k] * b
		s[8] += x2[k] * c
		s[9] += x3[k] * a
		s[10] += x3[k] * b
		s[11] += x3[k] * c
	}
	*out = s
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
