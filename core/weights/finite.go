package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/goose-rwkv/goose/kernels"
)

// ErrNotFinite reports weights or a state holding NaN or ±Inf: a corrupt
// file. Every error that wraps it names the tensor (or the state part).
var ErrNotFinite = errors.New("not a finite number")

// FirstNonFinite returns the index of the first NaN or ±Inf element of b,
// little-endian elements of type dt, or -1 when there is none. It tests
// exponent bits, four 16-bit (or two 32-bit) elements per 64-bit word.
func FirstNonFinite(dt kernels.DType, b []byte) int {
	var mask, ones uint64
	var size int
	switch dt {
	case kernels.BF16:
		mask, ones, size = 0x7f807f807f807f80, 0x0001000100010001, 2
	case kernels.F16:
		mask, ones, size = 0x7c007c007c007c00, 0x0001000100010001, 2
	case kernels.F32:
		mask, ones, size = 0x7f8000007f800000, 0x0000000100000001, 4
	default:
		return -1
	}
	high := ones << (8*size - 1) // the top bit of each lane
	n := len(b) &^ 7
	for i := 0; i < n; i += 8 {
		// A lane is all exponent bits (Inf or NaN) iff (v&mask)^mask is
		// zero there; the classic has-a-zero-lane test sees that.
		x := binary.LittleEndian.Uint64(b[i:])&mask ^ mask
		if (x-ones)&^x&high != 0 {
			return i/size + lanes(b[i:i+8], dt)
		}
	}
	if i := lanes(b[n:], dt); i >= 0 {
		return n/size + i
	}
	return -1
}

// lanes is FirstNonFinite element by element, for a few bytes.
func lanes(b []byte, dt kernels.DType) int {
	switch dt {
	case kernels.BF16, kernels.F16:
		m := uint16(0x7f80)
		if dt == kernels.F16 {
			m = 0x7c00
		}
		for i := 0; i+2 <= len(b); i += 2 {
			if binary.LittleEndian.Uint16(b[i:])&m == m {
				return i / 2
			}
		}
	case kernels.F32:
		for i := 0; i+4 <= len(b); i += 4 {
			if binary.LittleEndian.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	}
	return -1
}

// Describe names the non-finite element i of b (NaN, +Inf or -Inf).
func Describe(dt kernels.DType, b []byte, i int) string {
	v := make([]float32, 1)
	if err := dt.Decode(v, b[i*dt.Size():(i+1)*dt.Size()]); err != nil {
		return "not finite"
	}
	switch {
	case math.IsNaN(float64(v[0])):
		return "NaN"
	case v[0] > 0:
		return "+Inf"
	}
	return "-Inf"
}

// CheckFinite returns an error wrapping ErrNotFinite, naming the tensor,
// the element and its row (for a matrix of width cols), when b holds NaN
// or ±Inf.
func CheckFinite(name string, dt kernels.DType, b []byte, cols, row0 int) error {
	i := FirstNonFinite(dt, b)
	if i < 0 {
		return nil
	}
	where := fmt.Sprintf("element %d", i)
	if cols > 0 {
		where = fmt.Sprintf("row %d, column %d", row0+i/cols, i%cols)
	}
	return fmt.Errorf("tensor %s: %s is %s: %w (the weights are corrupt)", name, where, Describe(dt, b, i), ErrNotFinite)
}

// sampleRows is how many rows of each matrix the Loader checks for NaN and
// Inf (the first, the last and evenly spaced ones between); a full check
// (core.Model.Verify) reads them all.
const sampleRows = 8

// CheckSample checks sampleRows rows of a rows×cols matrix.
func CheckSample(name string, dt kernels.DType, data []byte, rows, cols int) error {
	rowBytes := cols * dt.Size()
	n := min(sampleRows, rows)
	for k := range n {
		r := 0
		if n > 1 {
			r = k * (rows - 1) / (n - 1)
		}
		if err := CheckFinite(name, dt, data[r*rowBytes:(r+1)*rowBytes], cols, r); err != nil {
			return err
		}
	}
	return nil
}
