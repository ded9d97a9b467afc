package cuda

import (
	"fmt"

	"github.com/goose-rwkv/goose/kernels"
)

// Argmax sets dst[t] to the index of row t's largest element
// (kernels.Greedy): one block a row.
func (b *Backend) Argmax(dst, x kernels.Tensor) {
	b.run("Argmax", func() error {
		if dst.DType != kernels.I32 || dst.Len() != x.Rows {
			return shapeErr("Argmax", "dst %v, x %v", dst, x)
		}
		ip, xp, err := b.pickPtrs("Argmax", dst, x)
		if err != nil || x.Rows == 0 {
			return err
		}
		b.argsStart().ptr(ip).ptr(xp).i32(x.Cols)
		return b.launch(b.k.argmax, [3]uint32{uint32(x.Rows), 1, 1}, [3]uint32{1024, 1, 1})
	})
}

// ArgmaxChecked sets dst[2t] to row t's Argmax and dst[2t+1] to whether
// the row needs a closer look (kernels.Greedy).
func (b *Backend) ArgmaxChecked(dst, x kernels.Tensor, margin float32) {
	b.run("ArgmaxChecked", func() error {
		if dst.DType != kernels.I32 || dst.Len() != 2*x.Rows || !(margin >= 0) {
			return shapeErr("ArgmaxChecked", "dst %v, x %v, margin %v", dst, x, margin)
		}
		ip, xp, err := b.pickPtrs("ArgmaxChecked", dst, x)
		if err != nil || x.Rows == 0 {
			return err
		}
		b.argsStart().ptr(ip).ptr(xp).i32(x.Cols).f32(margin)
		return b.launch(b.k.argmaxChk, [3]uint32{uint32(x.Rows), 1, 1}, [3]uint32{1024, 1, 1})
	})
}

// Draw draws a token from each row of x as core/sample's Sampler would
// and flags the rows the host must decide (kernels.Drawer). A row's ids
// are split over up to 64 blocks of 1024 threads that meet at grid
// barriers, so the launch keeps all of them resident: at most one block a
// multiprocessor in all (many rows get fewer blocks each; a row always
// gets one).
func (b *Backend) Draw(dst, x, spec, work kernels.Tensor) {
	b.run("Draw", func() error {
		T, V := x.Rows, x.Cols
		if dst.DType != kernels.I32 || dst.Len() != 2*T || spec.DType != kernels.I32 || spec.Len() < 1+T || work.Len() < kernels.DrawWork(T, V) || T > 65535 {
			return shapeErr("Draw", "dst %v, x %v, spec %v, work %v (want %d elements)", dst, x, spec, work, kernels.DrawWork(T, V))
		}
		ip, xp, err := b.pickPtrs("Draw", dst, x)
		if err != nil {
			return err
		}
		wp, err := b.f32Ptrs("Draw", work)
		if err != nil {
			return err
		}
		sp, err := b.devPtr(spec)
		if err != nil || sp%8 != 0 {
			return shapeErr("Draw", "spec %v: %v (want 8-byte aligned)", spec, err)
		}
		if T == 0 {
			return nil
		}
		// The barrier words after the rows (three a row) start at zero
		// every launch.
		bar := wp[0] + uint64(4*(kernels.DrawWork(T, V)-3*T))
		if err := b.drv.MemsetD8Async(bar, 0, int64(12*T), b.stream); err != nil {
			return fmt.Errorf("cuda: Draw: %w", err)
		}
		G := max(1, min(drawMaxBlocks, b.sms/T, (V+1023)/1024))
		b.argsStart().ptr(ip).ptr(xp).ptr(sp).ptr(wp[0]).i32(V)
		return b.launch(b.k.draw, [3]uint32{uint32(G), uint32(T), 1}, [3]uint32{1024, 1, 1})
	})
}

// pickPtrs returns the device addresses of a picking op's I32 output dst
// and its F32 rows x.
func (b *Backend) pickPtrs(op string, dst, x kernels.Tensor) (ip, xp uint64, err error) {
	ps, err := b.f32Ptrs(op, x)
	if err != nil {
		return 0, 0, err
	}
	if ip, err = b.devPtr(dst); err != nil {
		return 0, 0, shapeErr(op, "dst: %v", err)
	}
	return ip, ps[0], nil
}

// drawMaxBlocks is DRAW_MAXG in sample.cu: the most blocks a row's draw
// is split over (the kernel's partial-sum buffers hold that many).
const drawMaxBlocks = 64

var _ kernels.Drawer = (*Backend)(nil)
