package cuda

import "github.com/goose-rwkv/goose/kernels"

// Argmax sets dst[t] to the index of row t's largest element
// (kernels.Greedy): one block a row.
func (b *Backend) Argmax(dst, x kernels.Tensor) {
	b.run("Argmax", func() error {
		if dst.DType != kernels.I32 || dst.Len() != x.Rows {
			return shapeErr("Argmax", "dst %v, x %v", dst, x)
		}
		ps, err := b.f32Ptrs("Argmax", x)
		if err != nil {
			return err
		}
		ip, err := b.devPtr(dst)
		if err != nil {
			return shapeErr("Argmax", "dst: %v", err)
		}
		if x.Rows == 0 {
			return nil
		}
		b.argsStart().ptr(ip).ptr(ps[0]).i32(x.Cols)
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
		ps, err := b.f32Ptrs("ArgmaxChecked", x)
		if err != nil {
			return err
		}
		ip, err := b.devPtr(dst)
		if err != nil {
			return shapeErr("ArgmaxChecked", "dst: %v", err)
		}
		if x.Rows == 0 {
			return nil
		}
		b.argsStart().ptr(ip).ptr(ps[0]).i32(x.Cols).f32(margin)
		return b.launch(b.k.argmaxChk, [3]uint32{uint32(x.Rows), 1, 1}, [3]uint32{1024, 1, 1})
	})
}
