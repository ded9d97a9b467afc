package vit

import (
	"fmt"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
)

// dense is one Linear layer: its weight [out, in] lives on a backend in the
// checkpoint's dtype, its bias (nil for none) stays in Go.
type dense struct {
	w       kernels.Tensor
	bias    []float32
	in, out int
}

// apply sets dst[n, out] = x[n, in]·wᵀ + bias, the product on be: it
// uploads the rows of x, runs be.Linear and downloads the result. dst must
// not alias x.
func (d *dense) apply(be kernels.Backend, dst, x []float32, n int) error {
	xt, err := be.Alloc(kernels.F32, n, d.in)
	if err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.in, d.out, err)
	}
	defer be.Free(xt)
	yt, err := be.Alloc(kernels.F32, n, d.out)
	if err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.in, d.out, err)
	}
	defer be.Free(yt)
	if err := be.Upload(xt, floatBytes(x[:n*d.in])); err != nil {
		return fmt.Errorf("linear %d→%d: upload: %w", d.in, d.out, err)
	}
	be.Linear(yt, xt, d.w)
	if err := be.Download(floatBytes(dst[:n*d.out]), yt); err != nil {
		return fmt.Errorf("linear %d→%d: download: %w", d.in, d.out, err)
	}
	if err := be.Sync(); err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.in, d.out, err)
	}
	if d.bias != nil {
		addBias(dst[:n*d.out], d.bias)
	}
	return nil
}

// free releases the weight.
func (d *dense) free(be kernels.Backend) {
	if d.w.Valid() {
		be.Free(d.w)
		d.w = kernels.Tensor{}
	}
}

// addBias adds bias to every len(bias)-wide row of x.
func addBias(x, bias []float32) {
	n := len(bias)
	parallelFor(len(x)/n, 64, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := x[t*n : (t+1)*n]
			for i := range row {
				row[i] += bias[i]
			}
		}
	})
}

// floatBytes views f as its little-endian bytes (amd64, arm64).
func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}
