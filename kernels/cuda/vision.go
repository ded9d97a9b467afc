package cuda

import (
	"fmt"
	"os"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// visionKernels are the image towers' kernels (vision.cu), looked up on
// first use.
type visionKernels struct {
	ready                                            bool
	biasact, residual, im2col, window, s2d, copycols uintptr
	attnSIMT, attnPack, attnRelPos                   uintptr
	attnMMA2, attnMMA3, attnF16                      map[int]uintptr // by padded head width
	smemMax                                          int             // bytes of dynamic shared memory a block may use
	// variant selects the attention kernel: GOOSE_CUDA_ATTN=mma2, f16 or
	// simt select the others (tests run them all).
	variant attnVariant
}

// attnVariant is one of the attention kernels.
type attnVariant int

const (
	attnMMA3 attnVariant = iota // tensor cores, split bf16, bias tables by attn_relpos, ldmatrix (default)
	attnMMA2                    // tensor cores, split bf16, bias tables in every block (the first form)
	attnF16                     // attn_mma3 with single fp16 products: faster, ~2⁻¹¹ operand rounding
	attnSIMT                    // portable fp32
)

func (v attnVariant) String() string { return [...]string{"mma3", "mma2", "f16", "simt"}[v] }

// attnVariants lists the attention kernels, the default first.
func attnVariants() []attnVariant { return []attnVariant{attnMMA3, attnMMA2, attnF16, attnSIMT} }

// attnMMAWidths are the head widths the tensor-core attention is built
// for; a head is padded to the next one.
var attnMMAWidths = []int{32, 64, 80, 128}

// Limits of the CUDA attention kernels.
const (
	attnMaxHeadDim = 256
	attnMaxSpan    = 256
	attnMMASpan    = 128 // longest span the tensor-core kernel's bias table holds
)

// visionLoad looks the kernels up and raises the attention kernels'
// dynamic shared memory limit to the device's maximum.
func (b *Backend) visionLoad() error {
	v := &b.k.vision
	if v.ready {
		return nil
	}
	get := func(dst *uintptr, name string) error {
		f, err := b.drv.ModuleFunction(b.module, name)
		*dst = f
		return err
	}
	for _, f := range []struct {
		p    *uintptr
		name string
	}{
		{&v.biasact, "vis_biasact"}, {&v.residual, "vis_residual"}, {&v.im2col, "vis_im2col"},
		{&v.window, "vis_window"}, {&v.s2d, "vis_s2d"}, {&v.copycols, "vis_copycols"}, {&v.attnSIMT, "attn_simt"},
		{&v.attnPack, "attn_pack"}, {&v.attnRelPos, "attn_relpos"},
	} {
		if err := get(f.p, f.name); err != nil {
			return err
		}
	}
	optin, err := b.drv.Attribute(b.dev, cu.AttrMaxSharedOptin)
	if err != nil {
		return err
	}
	v.smemMax = optin
	v.attnMMA2, v.attnMMA3, v.attnF16 = map[int]uintptr{}, map[int]uintptr{}, map[int]uintptr{}
	attn := []uintptr{v.attnSIMT, v.attnRelPos}
	for _, w := range attnMMAWidths {
		for _, k := range []struct {
			m    map[int]uintptr
			name string
		}{{v.attnMMA2, "attn_mma2_%d"}, {v.attnMMA3, "attn_mma3_%d"}, {v.attnF16, "attn_f16_%d"}} {
			var f uintptr
			if err := get(&f, fmt.Sprintf(k.name, w)); err != nil {
				return err
			}
			k.m[w] = f
			attn = append(attn, f)
		}
	}
	for _, f := range attn {
		if err := b.drv.FuncSetAttribute(f, cu.FuncAttrMaxDynamicShared, optin); err != nil {
			return err
		}
	}
	for _, a := range attnVariants() {
		if os.Getenv("GOOSE_CUDA_ATTN") == a.String() {
			v.variant = a
		}
	}
	v.ready = true
	return nil
}

// launchShared is launch with dynamic shared memory.
func (b *Backend) launchShared(f uintptr, grid, block [3]uint32, shared int) error {
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 {
		return nil
	}
	return b.drv.Launch(f, grid, block, uint32(shared), b.stream, unsafe.Pointer(&b.args.ptrs[0]))
}

// optPtr returns the device address of an optional F32 [1, cols] tensor,
// 0 when it is absent.
func (b *Backend) optPtr(op string, t kernels.Tensor, cols int) (uint64, error) {
	if !t.Valid() {
		return 0, nil
	}
	if t.Len() != cols {
		return 0, shapeErr(op, "%v is not a row of %d", t, cols)
	}
	ps, err := b.f32Ptrs(op, t)
	if err != nil {
		return 0, err
	}
	return ps[0], nil
}

// grid1DLong sizes a grid-stride launch over n elements (n may exceed 2³¹).
func (b *Backend) grid1DLong(n int64) [3]uint32 {
	blocks := min((n+255)/256, int64(16*b.sms))
	return [3]uint32{uint32(max(blocks, 1)), 1, 1}
}

// Im2Col gathers convolution patches into rows.
func (b *Backend) Im2Col(dst, src kernels.Tensor, c kernels.Conv) {
	b.run("Im2Col", func() error {
		if err := c.Check(dst, src); err != nil {
			return shapeErr("Im2Col", "%v", err)
		}
		ps, err := b.f32Ptrs("Im2Col", dst, src)
		if err != nil {
			return err
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		n := int64(dst.Len())
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(c.Channels).i32(c.Height).i32(c.Width).i32(c.Kernel).
			i32(c.Stride).i32(c.Pad).i32(c.OutWidth()).i32(btoi(c.ChannelsLast)).i64(n)
		return b.launch(b.k.vision.im2col, b.grid1DLong(n), [3]uint32{256, 1, 1})
	})
}

func btoi(v bool) int {
	if v {
		return 1
	}
	return 0
}

// WindowPartition copies a token map into zero-padded windows.
func (b *Backend) WindowPartition(dst, src kernels.Tensor, w kernels.Window) {
	b.window("WindowPartition", dst, src, w, false)
}

// WindowMerge adds window rows back into a token map.
func (b *Backend) WindowMerge(dst, src kernels.Tensor, w kernels.Window) {
	b.window("WindowMerge", dst, src, w, true)
}

func (b *Backend) window(op string, dst, src kernels.Tensor, w kernels.Window, merge bool) {
	b.run(op, func() error {
		win, m := dst, src
		if merge {
			win, m = src, dst
		}
		if err := w.Check(win, m); err != nil {
			return shapeErr(op, "%v", err)
		}
		ps, err := b.f32Ptrs(op, dst, src)
		if err != nil {
			return err
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		n := int64(dst.Len())
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(w.Height).i32(w.Width).i32(w.Size).i32(dst.Cols).i32(btoi(merge)).i64(n)
		return b.launch(b.k.vision.window, b.grid1DLong(n), [3]uint32{256, 1, 1})
	})
}

// Residual sets dst = x + (y + bias)⊙gamma.
func (b *Backend) Residual(dst, x, y, bias, gamma kernels.Tensor) {
	b.run("Residual", func() error {
		C := dst.Cols
		if x.Len() != dst.Len() || y.Len() != dst.Len() {
			return shapeErr("Residual", "dst %v, x %v, y %v", dst, x, y)
		}
		ps, err := b.f32Ptrs("Residual", dst, x, y)
		if err != nil {
			return err
		}
		bp, err := b.optPtr("Residual", bias, C)
		if err != nil {
			return err
		}
		gp, err := b.optPtr("Residual", gamma, C)
		if err != nil {
			return err
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		n := int64(dst.Len())
		b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(ps[2]).ptr(bp).ptr(gp).i32(C).i64(n)
		return b.launch(b.k.vision.residual, b.grid1DLong(n), [3]uint32{256, 1, 1})
	})
}

// knownAct reports whether BiasAct implements f.
func knownAct(f kernels.Activation) bool {
	switch f {
	case kernels.Tanh, kernels.Sigmoid, kernels.ReLUSquared, kernels.GELU, kernels.GELUTanh:
		return true
	}
	return false
}

// BiasAct sets dst = f(x + bias).
func (b *Backend) BiasAct(dst, x, bias kernels.Tensor, f kernels.Activation) {
	b.run("BiasAct", func() error { return b.biasAct(dst, x, bias, f) })
}

func (b *Backend) biasAct(dst, x, bias kernels.Tensor, f kernels.Activation) error {
	C := x.Cols
	if dst.Len() != x.Len() || !knownAct(f) {
		return shapeErr("BiasAct", "dst %v, x %v, function %d", dst, x, f)
	}
	ps, err := b.f32Ptrs("BiasAct", dst, x)
	if err != nil {
		return err
	}
	bp, err := b.optPtr("BiasAct", bias, C)
	if err != nil {
		return err
	}
	if err := b.visionLoad(); err != nil {
		return err
	}
	n := int64(x.Len())
	b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(bp).i32(max(C, 1)).i32(int(f)).i64(n)
	return b.launch(b.k.vision.biasact, b.grid1DLong(n), [3]uint32{256, 1, 1})
}

// SpaceToDepth folds f×f blocks of a token map into rows.
func (b *Backend) SpaceToDepth(dst, src kernels.Tensor, h, w, f int) {
	b.run("SpaceToDepth", func() error {
		C := src.Cols
		if !(f > 0 && h%f == 0 && w%f == 0 && src.Rows == h*w && dst.Rows == (h/f)*(w/f) && dst.Cols == C*f*f) {
			return shapeErr("SpaceToDepth", "dst %v, src %v, %d×%d map, factor %d", dst, src, h, w, f)
		}
		ps, err := b.f32Ptrs("SpaceToDepth", dst, src)
		if err != nil {
			return err
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		n := int64(dst.Len())
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(h).i32(w).i32(f).i32(C).i64(n)
		return b.launch(b.k.vision.s2d, b.grid1DLong(n), [3]uint32{256, 1, 1})
	})
}

// CopyCols copies src into a column range of dst.
func (b *Backend) CopyCols(dst, src kernels.Tensor, col int) {
	b.run("CopyCols", func() error {
		if !(dst.Rows == src.Rows && col >= 0 && col+src.Cols <= dst.Cols) {
			return shapeErr("CopyCols", "dst %v, src %v, column %d", dst, src, col)
		}
		ps, err := b.f32Ptrs("CopyCols", dst, src)
		if err != nil {
			return err
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		n := int64(src.Len())
		b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(src.Cols).i32(dst.Cols).i32(col).i64(n)
		return b.launch(b.k.vision.copycols, b.grid1DLong(n), [3]uint32{256, 1, 1})
	})
}

// attnMMAWidth returns the padded head width of the tensor-core kernel for
// heads of hd, 0 when none fits.
func attnMMAWidth(hd int) int {
	for _, w := range attnMMAWidths {
		if hd <= w {
			return w
		}
	}
	return 0
}

// attnMMA2Smem is the dynamic shared memory of attn_mma2_<w> and
// attn_mma3_<w> (attn_f16_<w> with parts 1): two staged tiles (K and V,
// hi and lo), the bias tables and the tile's key positions.
func attnMMA2Smem(w, span, parts int) int {
	stage := parts * (64*(w/2+4) + w*(32+4))
	return 4 * (2*stage + 2*64*span + 64)
}

// attnRelPosSmem is the dynamic shared memory of attn_relpos: 64 query
// rows and the two tables, rows padded to hd+1.
func attnRelPosSmem(hd, span int) int {
	return 4 * (hd + 1) * (64 + 2*(2*span-1))
}

// attnSIMTSmem is the dynamic shared memory of attn_simt.
func attnSIMTSmem(hd, span int) int {
	return 4 * (32*(hd+1) + 32*hd + 16*hd + 16*span)
}

// Attention runs multi-head self-attention within groups of rows, fused:
// no score matrix is written to memory.
func (b *Backend) Attention(a kernels.Attention) {
	b.run("Attention", func() error {
		if err := a.Check(); err != nil {
			return shapeErr("Attention", "%v", err)
		}
		ps, err := b.f32Ptrs("Attention", a.Dst, a.QKV)
		if err != nil {
			return err
		}
		if ps[0] < ps[1]+uint64(a.QKV.Len()*4) && ps[1] < ps[0]+uint64(a.Dst.Len()*4) {
			return shapeErr("Attention", "dst %v overlaps qkv %v", a.Dst, a.QKV)
		}
		hd, n, groups := a.HeadDim(), a.GroupRows(), max(a.Groups, 1)
		var rh, rw uint64
		span := 0
		if a.RelH.Valid() || a.RelW.Valid() {
			rp, err := b.f32Ptrs("Attention", a.RelH, a.RelW)
			if err != nil {
				return err
			}
			rh, rw, span = rp[0], rp[1], a.Span
		}
		if hd > attnMaxHeadDim || span > attnMaxSpan {
			return shapeErr("Attention", "heads of %d (at most %d) or span %d (at most %d)", hd, attnMaxHeadDim, span, attnMaxSpan)
		}
		if err := b.visionLoad(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		v := &b.k.vision
		w := attnMMAWidth(hd)
		variant := v.variant
		if variant != attnSIMT && span > 0 && attnRelPosSmem(hd, span) > v.smemMax {
			variant = attnMMA2 // the bias tables do not fit attn_relpos: computed per block
		}
		parts := 2
		if variant == attnF16 {
			parts = 1
		}
		if w > 0 && span <= attnMMASpan && variant != attnSIMT && attnMMA2Smem(w, span, parts) <= v.smemMax {
			return b.attentionMMA(a, variant, ps[0], ps[1], rh, rw, n, groups, span, hd, w, parts)
		}
		b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(rh).ptr(rw).i32(n).i32(span).i32(hd).f32(a.Scale).i32(a.Dst.Cols)
		smem := attnSIMTSmem(hd, span)
		if smem > v.smemMax {
			return shapeErr("Attention", "heads of %d with span %d need %d bytes of shared memory, the device has %d", hd, span, smem, v.smemMax)
		}
		grid := [3]uint32{uint32((n + 7) / 8), uint32(a.Heads), uint32(groups)}
		return b.launchShared(v.attnSIMT, grid, [3]uint32{256, 1, 1}, smem)
	})
}

// attentionMMA runs Attention on the tensor cores: attn_pack converts the
// keys and values once (split bf16, or fp16 for attnF16) into scratch;
// for attn_mma3 and attn_f16, attn_relpos computes the relative-position
// bias tables into scratch after them; then one block per 64 queries,
// head and group.
func (b *Backend) attentionMMA(a kernels.Attention, variant attnVariant, dst, qkv, rh, rw uint64, n, groups, span, hd, w, parts int) error {
	v := &b.k.vision
	np := (n + 63) / 64 * 64
	plane := int64(groups) * int64(a.Heads) * int64(np) * int64(w)
	tables := int64(0) // floats in each bias table
	if span > 0 && variant != attnMMA2 {
		tables = int64(groups) * int64(a.Heads) * int64(n) * int64(span)
	}
	buf, err := b.scratchFor(8*plane + 8*tables)
	if err != nil {
		return err
	}
	kh, kl, vh, vl := buf, buf+uint64(2*plane), buf+uint64(4*plane), buf+uint64(6*plane)
	b.argsStart().ptr(kh).ptr(kl).ptr(vh).ptr(vl).ptr(qkv).i32(n).i32(np).i32(hd).i32(w).i32(a.Heads).
		i32(a.Dst.Cols).i32(btoi(variant == attnF16)).i64(plane)
	if err := b.launch(v.attnPack, b.grid1DLong(plane), [3]uint32{256, 1, 1}); err != nil {
		return err
	}
	grid := [3]uint32{uint32((n + 63) / 64), uint32(a.Heads), uint32(groups)}
	smem := attnMMA2Smem(w, span, parts)
	if variant == attnMMA2 {
		b.argsStart().ptr(dst).ptr(qkv).ptr(kh).ptr(kl).ptr(vh).ptr(vl).ptr(rh).ptr(rw).i32(n).i32(np).
			i32(span).i32(hd).f32(a.Scale).i32(a.Dst.Cols)
		return b.launchShared(v.attnMMA2[w], grid, [3]uint32{128, 1, 1}, smem)
	}
	var ph, pw uint64
	if tables > 0 {
		ph = buf + uint64(8*plane)
		pw = ph + uint64(4*tables)
		b.argsStart().ptr(ph).ptr(pw).ptr(qkv).ptr(rh).ptr(rw).i32(n).i32(span).i32(hd).i32(a.Dst.Cols)
		if err := b.launchShared(v.attnRelPos, grid, [3]uint32{256, 1, 1}, attnRelPosSmem(hd, span)); err != nil {
			return err
		}
	}
	f := v.attnMMA3[w]
	if variant == attnF16 {
		f = v.attnF16[w]
	}
	b.argsStart().ptr(dst).ptr(qkv).ptr(kh).ptr(kl).ptr(vh).ptr(vl).ptr(ph).ptr(pw).i32(n).i32(np).
		i32(span).i32(hd).f32(a.Scale).i32(a.Dst.Cols)
	return b.launchShared(f, grid, [3]uint32{128, 1, 1}, smem)
}

// i64 adds a long long parameter.
func (a *argBuf) i64(v int64) *argBuf { a.push(uint64(v)); return a }
