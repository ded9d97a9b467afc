package cuda

import (
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// audioKernels are the kernels of audio.cu.
type audioKernels struct {
	dwconv3, lerp, fliprows, gatemix, meanrows uintptr
}

func (k *audioKernels) load(drv *cu.Driver, m uintptr) error {
	for _, f := range []struct {
		p    *uintptr
		name string
	}{{&k.dwconv3, "dwconv3"}, {&k.lerp, "lerp"}, {&k.fliprows, "fliprows"}, {&k.gatemix, "gatemix"}, {&k.meanrows, "meanrows"}} {
		fn, err := drv.ModuleFunction(m, f.name)
		if err != nil {
			return err
		}
		*f.p = fn
	}
	return nil
}

// DepthwiseConv3 convolves each channel of h×w images with its 3×3 kernel.
func (b *Backend) DepthwiseConv3(dst, x, k kernels.Tensor, h, w int) {
	b.run("DepthwiseConv3", func() error {
		C := x.Cols
		if h <= 0 || w <= 0 || x.Rows%(h*w) != 0 || !sameShape(dst, x) || k.Rows != C || k.Cols != 9 {
			return shapeErr("DepthwiseConv3", "dst %v, x %v, k %v, image %d×%d", dst, x, k, h, w)
		}
		ps, err := b.f32Ptrs("DepthwiseConv3", dst, x, k)
		if err != nil {
			return err
		}
		n := x.Len()
		b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(ps[2]).i32(x.Rows).i32(C).i32(h).i32(w)
		return b.launch(b.k.audio.dwconv3, b.grid1D(n), [3]uint32{256, 1, 1})
	})
}

// Lerp sets dst[i] = x + d ⊙ mix[i].
func (b *Backend) Lerp(dst []kernels.Tensor, x, d kernels.Tensor, mix []kernels.Tensor) {
	b.run("Lerp", func() error {
		if !mixShapesOK(dst, x, mix) || !sameShape(d, x) {
			return shapeErr("Lerp", "x %v, d %v, %d dst, %d mix (at most %d)", x, d, len(dst), len(mix), maxMix)
		}
		ps, err := b.f32Ptrs("Lerp", x, d)
		if err != nil {
			return err
		}
		words, err := b.mixArgs("Lerp", dst, mix)
		if err != nil {
			return err
		}
		b.argsStart().raw(words[:]).i32(len(dst)).ptr(ps[0]).ptr(ps[1]).i32(x.Rows).i32(x.Cols)
		return b.launch(b.k.audio.lerp, b.grid1D(x.Len()), [3]uint32{256, 1, 1})
	})
}

// FlipRows reverses the rows within each group of n.
func (b *Backend) FlipRows(dst, x kernels.Tensor, n int) {
	b.run("FlipRows", func() error {
		if n <= 0 || x.Rows%n != 0 || !sameShape(dst, x) {
			return shapeErr("FlipRows", "dst %v, x %v, groups of %d", dst, x, n)
		}
		ps, err := b.f32Ptrs("FlipRows", dst, x)
		if err != nil {
			return err
		}
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(x.Rows).i32(x.Cols).i32(n)
		return b.launch(b.k.audio.fliprows, b.grid1D(x.Len()), [3]uint32{256, 1, 1})
	})
}

// GateMix sets dst = g·a + (1−g)·b per head.
func (b *Backend) GateMix(dst, a, c, g kernels.Tensor) {
	b.run("GateMix", func() error {
		T, C, H := a.Rows, a.Cols, g.Cols
		if H <= 0 || C%H != 0 || g.Rows != T || !sameShape(dst, a) || !sameShape(c, a) {
			return shapeErr("GateMix", "dst %v, a %v, b %v, g %v", dst, a, c, g)
		}
		ps, err := b.f32Ptrs("GateMix", dst, a, c, g)
		if err != nil {
			return err
		}
		b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(ps[2]).ptr(ps[3]).i32(T).i32(C).i32(H)
		return b.launch(b.k.audio.gatemix, b.grid1D(a.Len()), [3]uint32{256, 1, 1})
	})
}

// MeanRows averages groups of rows.
func (b *Backend) MeanRows(dst, x kernels.Tensor) {
	b.run("MeanRows", func() error {
		if dst.Rows <= 0 || x.Rows <= 0 || x.Rows%dst.Rows != 0 || dst.Cols != x.Cols {
			return shapeErr("MeanRows", "dst %v, x %v", dst, x)
		}
		ps, err := b.f32Ptrs("MeanRows", dst, x)
		if err != nil {
			return err
		}
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(dst.Rows).i32(x.Rows / dst.Rows).i32(x.Cols)
		return b.launch(b.k.audio.meanrows, b.grid1D(dst.Len()), [3]uint32{256, 1, 1})
	})
}
