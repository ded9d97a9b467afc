package cuda

import (
	"errors"
	"fmt"

	"github.com/goose-rwkv/goose/kernels"
)

// probeRuns is how many timed repetitions a probe takes the best of.
const probeRuns = 5

// timeBest queues op once untimed, then probeRuns times between CUDA
// events, and returns the shortest run in seconds. op runs with the backend
// locked and the context current.
func (b *Backend) timeBest(what string, op func() error) (float64, error) {
	best := 0.0
	err := b.idle(what, func() error {
		if b.err != nil {
			return b.err
		}
		start, err := b.drv.EventCreate()
		if err != nil {
			return err
		}
		defer b.drv.EventDestroy(start)
		end, err := b.drv.EventCreate()
		if err != nil {
			return err
		}
		defer b.drv.EventDestroy(end)
		if err := op(); err != nil { // warm-up (and cuBLAS heuristics)
			return err
		}
		for range probeRuns {
			if err := b.drv.EventRecord(start, b.stream); err != nil {
				return err
			}
			if err := op(); err != nil {
				return err
			}
			if err := b.drv.EventRecord(end, b.stream); err != nil {
				return err
			}
			if err := b.drv.EventSynchronize(end); err != nil {
				return err
			}
			s, err := b.drv.EventElapsed(start, end)
			if err != nil {
				return err
			}
			if s > 0 && (best == 0 || s < best) {
				best = s
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("cuda: %s: %w", what, err)
	}
	if best == 0 {
		return 0, fmt.Errorf("cuda: %s: no measurable time", what)
	}
	return best, nil
}

// CopyBandwidth copies n bytes from one device buffer to another and
// returns bytes copied per second (bytes read; as many are written, so the
// memory moves twice this), the best of several copies timed with CUDA
// events.
func (b *Backend) CopyBandwidth(n int64) (float64, error) {
	if n <= 0 {
		return 0, errors.New("cuda: copy bandwidth: size must be positive")
	}
	src, err := b.Alloc(kernels.BF16, 1, int(n/2))
	if err != nil {
		return 0, fmt.Errorf("cuda: copy bandwidth: %w", err)
	}
	defer b.Free(src)
	dst, err := b.Alloc(kernels.BF16, 1, int(n/2))
	if err != nil {
		return 0, fmt.Errorf("cuda: copy bandwidth: %w", err)
	}
	defer b.Free(dst)
	sp, dp := src.Buf.(*buffer).ptr, dst.Buf.(*buffer).ptr
	bytes := n &^ 1
	s, err := b.timeBest("copy bandwidth", func() error {
		return b.drv.MemcpyDtoDAsync(dp, sp, bytes, b.stream)
	})
	if err != nil {
		return 0, err
	}
	return float64(bytes) / s, nil
}

// MatMulRate times Linear with a [t,k] activation and an [n,k] weight of
// dtype dt as the model runs it (cuBLAS for t > 16, including the split of
// the activations into two halves for F16/BF16 weights; the vector kernels
// for fewer tokens) and returns 2·t·k·n floating-point operations per
// second, the best of several runs.
func (b *Backend) MatMulRate(t, k, n int, dt kernels.DType) (float64, error) {
	if t <= 0 || k <= 0 || n <= 0 || !weightOK(dt) {
		return 0, fmt.Errorf("cuda: matmul rate: bad shape %d×%d×%d or dtype %v", t, k, n, dt)
	}
	w, err := b.Alloc(dt, n, k)
	if err != nil {
		return 0, fmt.Errorf("cuda: matmul rate: %w", err)
	}
	defer b.Free(w)
	x, err := b.Alloc(kernels.F32, t, k)
	if err != nil {
		return 0, fmt.Errorf("cuda: matmul rate: %w", err)
	}
	defer b.Free(x)
	y, err := b.Alloc(kernels.F32, t, n)
	if err != nil {
		return 0, fmt.Errorf("cuda: matmul rate: %w", err)
	}
	defer b.Free(y)
	// Small non-zero values (the tensor cores take longer on non-zeros).
	if err := b.fillRamp(w); err != nil {
		return 0, err
	}
	if err := b.fillRamp(x); err != nil {
		return 0, err
	}
	s, err := b.timeBest("matmul rate", func() error {
		return b.product("MatMulRate", y, x, w, true, false)
	})
	if err != nil {
		return 0, err
	}
	return 2 * float64(t) * float64(k) * float64(n) / s, nil
}

// fillRamp uploads small finite values of t's dtype.
func (b *Backend) fillRamp(t kernels.Tensor) error {
	raw := make([]byte, t.Len()*t.DType.Size())
	for i := range raw {
		raw[i] = byte(i*7+3) & 0x3f
	}
	return b.Upload(t, raw)
}

var _ kernels.Prober = (*Backend)(nil)
