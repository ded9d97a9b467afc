package weights

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

func TestFirstNonFinite(t *testing.T) {
	nan32 := math.Float32frombits(0x7fc00001)
	inf := float32(math.Inf(1))
	for _, dt := range []kernels.DType{kernels.BF16, kernels.F16, kernels.F32} {
		for _, n := range []int{0, 1, 3, 4, 5, 8, 9, 33} {
			for _, bad := range []float32{nan32, inf, -inf} {
				for pos := -1; pos < n; pos++ {
					v := make([]float32, n)
					for i := range v {
						v[i] = float32(i%7) - 3.5 // includes negatives and zero-ish values
					}
					if n > 2 {
						v[n/2] = 1e-40 // subnormal in f32, zero in the 16-bit types: finite
					}
					if pos >= 0 {
						v[pos] = bad
					}
					b := encodeFloats(v, dt)
					if got := FirstNonFinite(dt, b); got != pos {
						t.Fatalf("%v n=%d %v at %d: got %d", dt, n, bad, pos, got)
					}
				}
			}
		}
	}
	// The largest finite values are not flagged.
	for _, c := range []struct {
		dt kernels.DType
		b  []byte
	}{
		{kernels.BF16, binary.LittleEndian.AppendUint16(nil, 0x7f7f)},
		{kernels.F16, binary.LittleEndian.AppendUint16(nil, half.F32ToF16(65504))},
		{kernels.F32, binary.LittleEndian.AppendUint32(nil, math.Float32bits(math.MaxFloat32))},
	} {
		b := bytes.Repeat(c.b, 9)
		if got := FirstNonFinite(c.dt, b); got != -1 {
			t.Errorf("%v max finite flagged at %d", c.dt, got)
		}
	}
}
