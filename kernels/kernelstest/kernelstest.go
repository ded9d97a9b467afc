// Package kernelstest checks a kernels.Backend's ops against float64
// references computed here, so that every backend (CPU, CUDA, a future one)
// is held to the same definition of each op rather than only to another
// backend's output.
//
// A backend's test calls Run with a fresh backend. Each family of ops has
// its own file of cases (see Run); a case uploads random inputs, runs the
// op, downloads the result and compares it with the reference at a stated
// relative tolerance.
package kernelstest

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// Run runs every conformance case on be.
func Run(t *testing.T, be kernels.Backend) {
	h := &H{T: t, Be: be, Rng: rand.New(rand.NewPCG(7, 11))}
	t.Run("Vision", func(t *testing.T) { visionCases(t, h.On(t)) })
	t.Run("Audio", func(t *testing.T) { audioCases(t, h.On(t)) })
	t.Run("Decode", func(t *testing.T) { decodeCases(t, h.On(t)) })
}

// H is the harness a case works with: one backend, a seeded random source
// and a test to report to. Tensors it allocates are freed when the test
// ends.
type H struct {
	T   *testing.T
	Be  kernels.Backend
	Rng *rand.Rand
}

// On returns a copy of h reporting to t (a subtest).
func (h *H) On(t *testing.T) *H {
	c := *h
	c.T = t
	return &c
}

// Randn returns n normal samples scaled by scale.
func (h *H) Randn(n int, scale float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(h.Rng.NormFloat64() * scale)
	}
	return v
}

// Uniform returns n samples uniform in [lo, hi).
func (h *H) Uniform(n int, lo, hi float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(lo + (hi-lo)*h.Rng.Float64())
	}
	return v
}

// Upload allocates an F32 [rows, cols] tensor holding v.
func (h *H) Upload(rows, cols int, v []float32) kernels.Tensor {
	h.T.Helper()
	t, err := h.Be.Alloc(kernels.F32, rows, cols)
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(func() { h.Be.Free(t) })
	if err := h.Be.Upload(t, F32Bytes(v)); err != nil {
		h.T.Fatal(err)
	}
	return t
}

// Out allocates an F32 [rows, cols] output poisoned with NaN, so that an
// element the op does not write fails the comparison.
func (h *H) Out(rows, cols int) kernels.Tensor {
	nan := make([]float32, rows*cols)
	for i := range nan {
		nan[i] = float32(math.NaN())
	}
	return h.Upload(rows, cols, nan)
}

// Weight makes a random [rows, cols] weight of dtype dt and returns the
// values it holds (rounded to dt).
func (h *H) Weight(dt kernels.DType, rows, cols int, scale float64) (kernels.Tensor, []float32) {
	h.T.Helper()
	v := h.Randn(rows*cols, scale)
	t, err := h.Be.Weight(dt, rows, cols, Encode(dt, v))
	if err != nil {
		h.T.Fatal(err)
	}
	h.T.Cleanup(func() { h.Be.Free(t) })
	return t, v
}

// Encode rounds v to dt in place (F16 and BF16; any other dtype is
// encoded as F32) and returns its little-endian bytes, as Backend.Weight
// takes them.
func Encode(dt kernels.DType, v []float32) []byte {
	if dt != kernels.F16 && dt != kernels.BF16 {
		return F32Bytes(v)
	}
	raw := make([]byte, 2*len(v))
	for i, x := range v {
		var u uint16
		if dt == kernels.F16 {
			u = half.F32ToF16(x)
			v[i] = half.F16ToF32(u)
		} else {
			u = half.F32ToBF16(x)
			v[i] = half.BF16ToF32(u)
		}
		binary.LittleEndian.PutUint16(raw[2*i:], u)
	}
	return raw
}

// Get waits for queued work, failing the test on a recorded error, and
// downloads t.
func (h *H) Get(t kernels.Tensor) []float32 {
	h.T.Helper()
	return BytesF32(h.getBytes(t))
}

// GetI32 is Get for an I32 tensor.
func (h *H) GetI32(t kernels.Tensor) []int32 {
	h.T.Helper()
	b := h.getBytes(t)
	v := make([]int32, len(b)/4)
	for i := range v {
		v[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

// getBytes waits for queued work, failing the test on a recorded error,
// and downloads t, a tensor of 4-byte elements.
func (h *H) getBytes(t kernels.Tensor) []byte {
	h.T.Helper()
	if err := h.Be.Sync(); err != nil {
		h.T.Fatalf("%s: %v", h.Be.Name(), err)
	}
	b := make([]byte, 4*t.Len())
	if err := h.Be.Download(b, t); err != nil {
		h.T.Fatal(err)
	}
	return b
}

// Check compares got with the float64 reference want (see the function
// Check).
func (h *H) Check(name string, got []float32, want []float64, tol float64) {
	h.T.Helper()
	Check(h.T, name, got, want, tol)
}

// Check compares got with the float64 reference want, reporting to t: the
// relative L2 error ‖got−want‖/‖want‖ must be within tol and every element
// finite.
func Check(t testing.TB, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d values, reference has %d", name, len(got), len(want))
		return
	}
	e, bad := RelErr(got, want)
	if bad >= 0 {
		t.Errorf("%s: element %d is %v (unwritten or overflow)", name, bad, got[bad])
		return
	}
	if !(e <= tol) {
		t.Errorf("%s: relative error %.3g > %.3g", name, e, tol)
	}
}

// RelErr returns ‖a−b‖/‖b‖ and the first non-finite index of a (−1 if
// none).
func RelErr(a []float32, b []float64) (float64, int) {
	var num, den float64
	bad := -1
	for i := range a {
		if bad < 0 && (math.IsNaN(float64(a[i])) || math.IsInf(float64(a[i]), 0)) {
			bad = i
		}
		d := float64(a[i]) - b[i]
		num += d * d
		den += b[i] * b[i]
	}
	if den == 0 {
		return math.Sqrt(num), bad
	}
	return math.Sqrt(num / den), bad
}

// Widen converts v to float64.
func Widen(v []float32) []float64 {
	o := make([]float64, len(v))
	for i, x := range v {
		o[i] = float64(x)
	}
	return o
}

// F32Bytes encodes v little-endian.
func F32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// BytesF32 decodes little-endian float32s.
func BytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}
