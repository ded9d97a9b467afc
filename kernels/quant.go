package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/goose-rwkv/goose/internal/hugemem"
)

// I8Bytes is the size of an I8 weight of [rows, cols]: rows·cols int8
// values and rows float32 scales.
func I8Bytes(rows, cols int) int { return rows*cols + 4*rows }

// QuantizeI8 converts a [rows, cols] matrix of little-endian dtype dt (F32,
// F16 or BF16) to int8 with one scale per row (per output channel of a
// Linear weight [out, in]), the I8 layout backends take from Weight:
//
//	rows·cols int8 values q[r][c], row-major, then rows little-endian
//	float32 scales s[r], so that w[r][c] ≈ q[r][c]·s[r].
//
// s[r] = max_c |w[r][c]| / 127 and q = round(w / s[r]) (a zero row has
// scale 0), so each weight is off by at most s[r]/2. Non-finite weights
// are an error naming the row.
func QuantizeI8(src []byte, dt DType, rows, cols int) ([]byte, error) {
	if dt != F32 && dt != F16 && dt != BF16 {
		return nil, fmt.Errorf("kernels: quantize %v: want f32, f16 or bf16", dt)
	}
	if rows < 0 || cols < 0 || len(src) != rows*cols*dt.Size() {
		return nil, fmt.Errorf("kernels: quantize [%d,%d] %v: %d bytes", rows, cols, dt, len(src))
	}
	out := hugemem.Make(I8Bytes(rows, cols))
	workers := min(runtime.NumCPU(), max(1, rows/64))
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		lo, hi := rows*w/workers, rows*(w+1)/workers
		wg.Go(func() {
			row := make([]float32, cols)
			rb := cols * dt.Size()
			for r := lo; r < hi; r++ {
				if err := dt.Decode(row, src[r*rb:(r+1)*rb]); err != nil {
					errs[w] = err
					return
				}
				var m float32
				for _, v := range row {
					if v != v || math.IsInf(float64(v), 0) {
						errs[w] = fmt.Errorf("kernels: quantize: row %d holds %v", r, v)
						return
					}
					m = max(m, float32(math.Abs(float64(v))))
				}
				scale := m / 127
				q := out[r*cols : (r+1)*cols]
				if scale > 0 {
					inv := 1 / scale
					for c, v := range row {
						q[c] = byte(int8(max(-127, min(127, math.Round(float64(v*inv))))))
					}
				}
				binary.LittleEndian.PutUint32(out[rows*cols+4*r:], math.Float32bits(scale))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
