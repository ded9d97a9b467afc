package cuda

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// kernelSet holds the module's kernels. Arrays indexed by dtype use the
// kernels.DType numbering (F32, F16, BF16); token-count arrays are indexed
// by the number of tokens (1..maxSmallT).
type kernelSet struct {
	gemv      [5][maxSmallT + 1]uintptr // F32, F16, BF16 and I8 (index 4)
	mm        [3][maxSmallT + 1]uintptr
	embed     [3]uintptr
	split     [3]uintptr // F16 and BF16 only: f32 → hi + lo halves
	mmReduce  uintptr
	act       uintptr
	binop     uintptr
	layernorm uintptr
	shiftmix  uintptr
	prep7     uintptr
	out7      uintptr
	wkv7      map[int]uintptr // by threads per state row
	wkv7g     map[wkvVariant]uintptr
	linbatch  [3]uintptr // fused ops, by weight dtype
	// linbatchI8 takes I8 Linear weights with LoRA matrices of dtype
	// F32, F16 or BF16 (the index).
	linbatchI8 [3]uintptr
	i8ToBF16   uintptr
	scaleCols  uintptr
	argmax     uintptr
	argmaxChk  uintptr
	draw       uintptr
	up7        [3]uintptr
	nsm        uintptr
	nsRows     uintptr
	wkv7out    uintptr
	vision     visionKernels // looked up on first use
	audio      audioKernels
}

// wkvVariant selects a row-split WKV7 kernel (wkv7g in kernels.cu):
// threads per state row, warps per block, and input chunk buffers.
type wkvVariant struct{ tpr, warps, stages int }

// wkvVariants lists the row-split WKV7 kernels built (WKVG in kernels.cu).
func wkvVariants() []wkvVariant {
	return []wkvVariant{{4, 2, 4}, {4, 4, 4}, {4, 8, 3}, {8, 4, 4}, {8, 8, 3}, {16, 4, 4}, {16, 8, 3}, {16, 16, 3}}
}

// maxSmallT is the most tokens one GEMV/vector-matrix launch handles.
const maxSmallT = 4

// weightDTypes are the dtypes a weight may have, in kernelSet index order.
func weightDTypes() [3]kernels.DType { return [3]kernels.DType{kernels.F32, kernels.F16, kernels.BF16} }

func (k *kernelSet) load(drv *cu.Driver, m uintptr) error {
	get := func(dst *uintptr, name string) error {
		f, err := drv.ModuleFunction(m, name)
		*dst = f
		return err
	}
	for dt, d := range weightDTypes() {
		dn := d.String()
		for nt := 1; nt <= maxSmallT; nt++ {
			if err := get(&k.gemv[dt][nt], fmt.Sprintf("gemv_%s_%d", dn, nt)); err != nil {
				return err
			}
			if err := get(&k.mm[dt][nt], fmt.Sprintf("mm_%s_%d", dn, nt)); err != nil {
				return err
			}
		}
		if err := get(&k.embed[dt], "embed_"+dn); err != nil {
			return err
		}
		if err := get(&k.linbatch[dt], "linbatch_"+dn); err != nil {
			return err
		}
		if err := get(&k.linbatchI8[dt], "linbatch_i8_"+dn); err != nil {
			return err
		}
		if err := get(&k.up7[dt], "up7_"+dn); err != nil {
			return err
		}
		if dt != int(kernels.F32) {
			if err := get(&k.split[dt], "split_f32_"+dn); err != nil {
				return err
			}
		}
	}
	for _, f := range []struct {
		p    *uintptr
		name string
	}{
		{&k.mmReduce, "mm_reduce"}, {&k.act, "act"}, {&k.binop, "binop"}, {&k.layernorm, "layernorm"},
		{&k.shiftmix, "shiftmix"}, {&k.prep7, "prep7"}, {&k.out7, "out7"},
		{&k.nsm, "normshiftmix"}, {&k.nsRows, "normshift_rows"}, {&k.wkv7out, "wkv7out"},
		{&k.i8ToBF16, "i8_to_bf16"}, {&k.scaleCols, "scale_cols"}, {&k.argmax, "argmax_rows"}, {&k.argmaxChk, "argmax_check_rows"},
		{&k.draw, "draw_rows"},
	} {
		if err := get(f.p, f.name); err != nil {
			return err
		}
	}
	for nt := 1; nt <= maxSmallT; nt++ {
		if err := get(&k.gemv[kernels.I8][nt], fmt.Sprintf("gemv_i8_%d", nt)); err != nil {
			return err
		}
	}
	if err := k.audio.load(drv, m); err != nil {
		return err
	}
	k.wkv7 = map[int]uintptr{}
	for _, tpr := range []int{4, 8, 16} {
		var f uintptr
		if err := get(&f, fmt.Sprintf("wkv7_%d", tpr)); err != nil {
			return err
		}
		k.wkv7[tpr] = f
	}
	k.wkv7g = map[wkvVariant]uintptr{}
	for _, v := range wkvVariants() {
		var f uintptr
		if err := get(&f, fmt.Sprintf("wkv7g_%d_%d_%d", v.tpr, v.warps, v.stages)); err != nil {
			return err
		}
		k.wkv7g[v] = f
	}
	return nil
}

// argBuf marshals kernel parameters: each parameter's value lives in
// words and ptrs[i] points at parameter i, the layout cuLaunchKernel wants.
// The driver copies the values during the launch call, so one argBuf is
// reused for every launch (under the backend's mutex).
type argBuf struct {
	words [128]uint64
	ptrs  [32]unsafe.Pointer
	nw    int
	np    int
}

func (a *argBuf) init() { a.reset() }

func (a *argBuf) reset() { a.nw, a.np = 0, 0 }

func (a *argBuf) push(words ...uint64) {
	a.ptrs[a.np] = unsafe.Pointer(&a.words[a.nw])
	a.np++
	a.nw += copy(a.words[a.nw:], words)
}

// ptr adds a device pointer.
func (a *argBuf) ptr(p uint64) *argBuf { a.push(p); return a }

// i32 adds an int parameter.
func (a *argBuf) i32(v int) *argBuf { a.push(uint64(uint32(int32(v)))); return a }

// f32 adds a float parameter.
func (a *argBuf) f32(v float32) *argBuf { a.push(uint64(math.Float32bits(v))); return a }

// raw adds a struct parameter given as 8-byte words.
func (a *argBuf) raw(words []uint64) *argBuf { a.push(words...); return a }

// args starts the parameter list of a launch.
func (b *Backend) argsStart() *argBuf {
	b.args.reset()
	return &b.args
}

// launch queues kernel f with the parameters in b.args.
func (b *Backend) launch(f uintptr, grid, block [3]uint32) error {
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 {
		return nil
	}
	return b.drv.Launch(f, grid, block, 0, b.stream, unsafe.Pointer(&b.args.ptrs[0]))
}

// launchPDL queues kernel f like launch, with programmatic dependent launch
// when the backend uses it (the kernel must call pdl_wait; see kernels.cu).
func (b *Backend) launchPDL(f uintptr, grid, block [3]uint32) error {
	if grid[0] == 0 || grid[1] == 0 || grid[2] == 0 {
		return nil
	}
	if !b.pdl {
		return b.drv.Launch(f, grid, block, 0, b.stream, unsafe.Pointer(&b.args.ptrs[0]))
	}
	return b.drv.LaunchPDL(f, grid, block, 0, b.stream, unsafe.Pointer(&b.args.ptrs[0]))
}

// grid1D sizes a grid-stride launch over n elements.
func (b *Backend) grid1D(n int) [3]uint32 {
	blocks := (n + 255) / 256
	blocks = min(blocks, 16*b.sms)
	return [3]uint32{uint32(max(blocks, 1)), 1, 1}
}

func shapeErr(op, format string, args ...any) error {
	return &kernels.ShapeError{Op: op, Detail: fmt.Sprintf(format, args...)}
}

// f32Ptrs checks that each tensor is F32 and returns device pointers.
func (b *Backend) f32Ptrs(op string, ts ...kernels.Tensor) ([]uint64, error) {
	ps := make([]uint64, len(ts))
	for i, t := range ts {
		if t.DType != kernels.F32 {
			return nil, shapeErr(op, "operand %d is %v, want f32", i, t)
		}
		p, err := b.devPtr(t)
		if err != nil {
			return nil, shapeErr(op, "operand %d: %v", i, err)
		}
		ps[i] = p
	}
	return ps, nil
}
