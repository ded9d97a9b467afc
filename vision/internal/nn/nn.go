// Package nn holds the pieces the vision towers share: a Linear layer whose
// product runs on a compute backend, and a parallel loop for the element-wise
// work that stays on the host.
package nn

import (
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
)

// ParallelFor splits 0..n into contiguous ranges of at least grain items and
// runs fn on them from up to GOMAXPROCS goroutines.
func ParallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	workers := min(runtime.GOMAXPROCS(0), (n+grain-1)/grain)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// Dense is one Linear layer: its weight [out, in] lives on a backend in the
// checkpoint's dtype, its bias (nil for none) stays in Go.
type Dense struct {
	W       kernels.Tensor
	Bias    []float32
	In, Out int
}

// Apply sets dst[n, out] = x[n, in]·wᵀ + bias, the product on be: it
// uploads the rows of x, runs be.Linear and downloads the result. dst must
// not alias x.
func (d *Dense) Apply(be kernels.Backend, dst, x []float32, n int) error {
	xt, err := be.Alloc(kernels.F32, n, d.In)
	if err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.In, d.Out, err)
	}
	defer be.Free(xt)
	yt, err := be.Alloc(kernels.F32, n, d.Out)
	if err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.In, d.Out, err)
	}
	defer be.Free(yt)
	if err := be.Upload(xt, FloatBytes(x[:n*d.In])); err != nil {
		return fmt.Errorf("linear %d→%d: upload: %w", d.In, d.Out, err)
	}
	be.Linear(yt, xt, d.W)
	if err := be.Download(FloatBytes(dst[:n*d.Out]), yt); err != nil {
		return fmt.Errorf("linear %d→%d: download: %w", d.In, d.Out, err)
	}
	if err := be.Sync(); err != nil {
		return fmt.Errorf("linear %d→%d: %w", d.In, d.Out, err)
	}
	if d.Bias != nil {
		AddBias(dst[:n*d.Out], d.Bias)
	}
	return nil
}

// Free releases the weight.
func (d *Dense) Free(be kernels.Backend) {
	if d.W.Valid() {
		be.Free(d.W)
		d.W = kernels.Tensor{}
	}
}

// AddBias adds bias to every len(bias)-wide row of x.
func AddBias(x, bias []float32) {
	n := len(bias)
	ParallelFor(len(x)/n, 64, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := x[t*n : (t+1)*n]
			for i := range row {
				row[i] += bias[i]
			}
		}
	})
}

// FloatBytes views f as its little-endian bytes (amd64, arm64).
func FloatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}
