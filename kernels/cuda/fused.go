package cuda

import (
	"github.com/goose-rwkv/goose/kernels"
)

// The fused ops (kernels.Fused) run a one-token step in few launches: each
// has a kernel for one token, launched with programmatic dependent launch
// on Hopper, and runs its defining op sequence for longer inputs (where
// launches are not what costs) or operands the kernel does not take.

// growBuf is device memory that grows on demand.
type growBuf struct {
	p uint64
	n int64
}

// fusedBufs is the device memory of the fused ops.
type fusedBufs struct {
	tmp   growBuf // products to be added, in the composed fallback
	part  growBuf // partial sums of split NN products
	deq   growBuf // int8 weights widened to bf16 for cuBLAS, and the product
	count uint64  // countSlots zeroed counters; each user resets its own
}

// countSlots is the number of completion counters of split NN products:
// one per 64-column slab of every split item of a launch.
const countSlots = 16384

// grow returns at least n bytes in g. An outgrown buffer is kept until
// Close, since a captured graph may use it.
func (b *Backend) grow(g *growBuf, n int64) (uint64, error) {
	if n <= g.n {
		return g.p, nil
	}
	size := max(n, 2*g.n, 1<<16)
	p, err := b.drv.MemAlloc(size)
	if err != nil {
		return 0, err
	}
	if g.p != 0 {
		b.retired = append(b.retired, g.p)
	}
	g.p, g.n = p, size
	return p, nil
}

// allocCounters allocates and zeroes the completion counters (at New: a
// memset issued while a graph is captured would only run in the graph).
func (b *Backend) allocCounters() error {
	p, err := b.drv.MemAlloc(4 * countSlots)
	if err != nil {
		return err
	}
	if err := b.drv.MemsetD8Async(p, 0, 4*countSlots, b.stream); err != nil {
		b.drv.MemFree(p)
		return err
	}
	b.fused.count = p
	return nil
}

// maxItems is the most products one LinearBatch launch takes (MAXITEMS in
// kernels.cu).
const maxItems = 8

// itemWords is the size of a LinItem in 8-byte words.
const itemWords = 10

// actCode is the kernel's activation number: -1 for none.
func actCode(it kernels.LinearItem) int32 {
	if !it.Activate {
		return -1
	}
	return int32(it.Act)
}

func pack2(lo, hi int32) uint64 { return uint64(uint32(lo)) | uint64(uint32(hi))<<32 }

func boolInt(v bool) int32 {
	if v {
		return 1
	}
	return 0
}

// LinearBatch runs independent products; see kernels.Fused.
func (b *Backend) LinearBatch(items []kernels.LinearItem) {
	b.run("LinearBatch", func() error { return b.linearBatch(items) })
}

// itemPtrs are the device addresses of a LinearItem's operands (scale:
// an I8 weight's scales).
type itemPtrs struct{ dst, x, w, scale uint64 }

// itemDims checks an item and returns its token count, K and N.
func itemDims(it kernels.LinearItem) (T, K, N int, err error) {
	T, K = it.X.Rows, it.X.Cols
	N, wk := it.W.Rows, it.W.Cols
	if it.NN {
		N, wk = it.W.Cols, it.W.Rows
	}
	if wk != K || it.Dst.Rows != T || it.Dst.Cols != N || !weightOK(it.W.DType) && !(!it.NN && it.W.DType == kernels.I8) {
		return 0, 0, 0, shapeErr("LinearBatch", "dst %v, x %v, w %v (nn %v)", it.Dst, it.X, it.W, it.NN)
	}
	if it.Activate && (it.Accumulate || it.Act > kernels.ReLUSquared) {
		return 0, 0, 0, shapeErr("LinearBatch", "item %v: activation %d with accumulate %v", it.Dst, it.Act, it.Accumulate)
	}
	return T, K, N, nil
}

func (b *Backend) linearBatch(items []kernels.LinearItem) error {
	if len(items) == 0 {
		return nil
	}
	ptrs := make([]itemPtrs, len(items))
	batched := len(items) <= maxItems
	// One launch takes NT weights of one dtype and NN weights of one
	// dtype: the same, or I8 NT weights with float NN ones.
	ntDT, nnDT := kernels.DType(255), kernels.DType(255)
	for i, it := range items {
		T, K, N, err := itemDims(it)
		if err != nil {
			return err
		}
		ps, err := b.f32Ptrs("LinearBatch", it.Dst, it.X)
		if err != nil {
			return err
		}
		wp, err := b.devPtr(it.W)
		if err != nil {
			return shapeErr("LinearBatch", "w: %v", err)
		}
		ptrs[i] = itemPtrs{dst: ps[0], x: ps[1], w: wp}
		if it.W.DType == kernels.I8 {
			if ptrs[i].scale, err = b.scalePtr(it.W); err != nil {
				return shapeErr("LinearBatch", "w: %v", err)
			}
		}
		batched = batched && T == 1 && K > 0 && N > 0 && wp%16 == 0
		dt := &ntDT
		if it.NN {
			dt = &nnDT
			batched = batched && N%8 == 0
		} else {
			batched = batched && K%8 == 0 && ps[1]%16 == 0
		}
		if *dt == 255 {
			*dt = it.W.DType
		}
		batched = batched && *dt == it.W.DType
	}
	fn := uintptr(0)
	switch {
	case ntDT == kernels.I8 && nnDT == 255:
		fn = b.k.linbatchI8[kernels.BF16]
	case ntDT == kernels.I8 && weightOK(nnDT):
		fn = b.k.linbatchI8[nnDT]
	case ntDT == 255 && weightOK(nnDT):
		fn = b.k.linbatch[nnDT]
	case weightOK(ntDT) && (nnDT == 255 || nnDT == ntDT):
		fn = b.k.linbatch[ntDT]
	default:
		batched = false
	}
	if batched {
		// The launch fills every multiprocessor once with as many
		// 256-thread blocks as the kernel's registers allow (these kernels
		// are memory-latency bound, so resident warps are bytes in
		// flight): two for the float kernels (128 registers a thread),
		// three for the int8 ones (76; ncu: sized for two, they ran 0.7
		// waves at 19–25% of DRAM bandwidth).
		warps := 16
		if ntDT == kernels.I8 {
			warps = 24
		}
		ok, err := b.linearBatchKernel(fn, warps, items, ptrs)
		if ok || err != nil {
			return err
		}
	}
	for i, it := range items {
		if err := b.itemComposed(it, ptrs[i]); err != nil {
			return err
		}
	}
	return nil
}

// linearBatchKernel launches the batched one-token kernel; it returns false
// (and launches nothing) when the split products need more counters than
// there are. The NN items (LoRA matrices: small, latency-bound) get the
// first blocks so that they start first; NT rows are spread so that the
// blocks of the launch fit on the GPU at once (warps resident warps a
// multiprocessor), each warp streaming several rows.
func (b *Backend) linearBatchKernel(fn uintptr, warps int, items []kernels.LinearItem, ptrs []itemPtrs) (bool, error) {
	order := make([]int, 0, len(items))
	ntRows := 0
	for i, it := range items {
		if it.NN {
			order = append(order, i)
		} else {
			_, _, N, _ := itemDims(it)
			ntRows += N
		}
	}
	for i, it := range items {
		if !it.NN {
			order = append(order, i)
		}
	}
	rpw := max(1, (ntRows+warps*b.sms-1)/(warps*b.sms)) // rows per warp: warps a multiprocessor
	var words [maxItems*itemWords + 1]uint64
	blocks, parts, slabs := 0, 0, 0
	for slot, i := range order {
		it := items[i]
		_, K, N, _ := itemDims(it)
		o := words[slot*itemWords:]
		o[0], o[1], o[2] = ptrs[i].dst, ptrs[i].x, ptrs[i].w
		o[3] = pack2(int32(N), int32(K))
		o[4] = pack2(boolInt(it.NN), actCode(it))
		o[5] = pack2(boolInt(it.Accumulate), int32(blocks))
		o[9] = ptrs[i].scale
		if !it.NN {
			o[6] = pack2(int32(rpw), 1)
			blocks += (N + 8*rpw - 1) / (8 * rpw)
			continue
		}
		ncb := (N + 63) / 64
		ns := 1
		if K >= 256 {
			ns = min(32, (K+127)/128)
		}
		kchunk := (K + ns - 1) / ns
		ns = (K + kchunk - 1) / kchunk
		o[6] = pack2(int32(kchunk), int32(ns))
		if ns > 1 {
			o[7], o[8] = uint64(parts*4), uint64(slabs*4) // offsets, made addresses below
			parts += ns * N
			slabs += ncb
		}
		blocks += ncb * ns
	}
	if slabs > countSlots {
		return false, nil
	}
	if slabs > 0 {
		part, err := b.grow(&b.fused.part, int64(parts*4))
		if err != nil {
			return false, err
		}
		for slot, i := range order {
			if o := words[slot*itemWords:]; items[i].NN && uint32(o[6]>>32) > 1 {
				o[7] += part
				o[8] += b.fused.count
			}
		}
	}
	words[maxItems*itemWords] = uint64(len(items))
	b.argsStart().raw(words[:])
	return true, b.launchPDL(fn, [3]uint32{uint32(blocks), 1, 1}, [3]uint32{256, 1, 1})
}

// itemComposed runs one item as its op sequence.
func (b *Backend) itemComposed(it kernels.LinearItem, p itemPtrs) error {
	T, K, N, err := itemDims(it)
	if err != nil || T == 0 || N == 0 {
		return err
	}
	dst, x, w := p.dst, p.x, p.w
	linear := !it.NN
	product := func(dst uint64, accumulate bool) error {
		if it.W.DType == kernels.I8 {
			return b.linearI8(dst, x, w, p.scale, T, K, N, accumulate, it.Round)
		}
		return b.productPtr(dst, x, w, T, K, N, it.W.DType, linear, accumulate, it.Round)
	}
	if it.Accumulate && T <= smallT {
		tmp, err := b.grow(&b.fused.tmp, int64(T*N*4))
		if err != nil {
			return err
		}
		if err := product(tmp, false); err != nil {
			return err
		}
		n := T * N
		b.argsStart().ptr(dst).ptr(dst).ptr(tmp).i32(n).i32(0).i32(0)
		return b.launch(b.k.binop, b.grid1D(n), [3]uint32{256, 1, 1})
	}
	if err := product(dst, it.Accumulate); err != nil {
		return err
	}
	if it.Activate {
		return b.act(it.Dst, it.Dst, it.Act)
	}
	return nil
}

// NormShiftMix runs LayerNorm then ShiftMix; see kernels.Fused.
func (b *Backend) NormShiftMix(norm kernels.Tensor, dst []kernels.Tensor, x, w, bias kernels.Tensor, eps float32, state kernels.Tensor, mix []kernels.Tensor) {
	b.run("NormShiftMix", func() error {
		if x.Rows != 1 {
			if err := b.layerNorm(norm, x, w, bias, eps); err != nil {
				return err
			}
			return b.shiftMix(dst, norm, state, mix)
		}
		if err := b.normShiftArgs("NormShiftMix", norm, dst, x, w, bias, eps, state, state.Len() == x.Cols, mix); err != nil {
			return err
		}
		blocks := min((x.Cols+255)/256, 16)
		return b.launchPDL(b.k.nsm, [3]uint32{uint32(blocks), 1, 1}, [3]uint32{256, 1, 1})
	})
}

// NormShiftRows runs a batched decode step's LayerNorm and token shift as
// one kernel, a block a row; see kernels.RowShift.
func (b *Backend) NormShiftRows(norm kernels.Tensor, dst []kernels.Tensor, x, w, bias kernels.Tensor, eps float32, state kernels.Tensor, mix []kernels.Tensor) {
	b.run("NormShiftRows", func() error {
		if err := b.normShiftArgs("NormShiftRows", norm, dst, x, w, bias, eps, state, sameShape(state, x), mix); err != nil {
			return err
		}
		// Enough blocks for two a multiprocessor: few rows are split
		// into channel slices of at least 256 (no rows: no launch).
		parts := max(1, min((2*b.sms+x.Rows-1)/max(x.Rows, 1), x.Cols/256))
		return b.launch(b.k.nsRows, [3]uint32{uint32(x.Rows), uint32(parts), 1}, [3]uint32{256, 1, 1})
	})
}

// normShiftArgs checks the operands of the normshiftmix and
// normshift_rows kernels (stateOK: the state's shape, which is where they
// differ) and sets up the arguments both take.
func (b *Backend) normShiftArgs(op string, norm kernels.Tensor, dst []kernels.Tensor, x, w, bias kernels.Tensor, eps float32, state kernels.Tensor, stateOK bool, mix []kernels.Tensor) error {
	C := x.Cols
	if !(stateOK && sameShape(norm, x) && w.Len() == C && bias.Len() == C && mixShapesOK(dst, x, mix)) {
		return shapeErr(op, "norm %v, x %v, w %v, b %v, state %v, %d dst, %d mix (at most %d)",
			norm, x, w, bias, state, len(dst), len(mix), maxMix)
	}
	ps, err := b.f32Ptrs(op, norm, x, w, bias, state)
	if err != nil {
		return err
	}
	words, err := b.mixArgs(op, dst, mix)
	if err != nil {
		return err
	}
	b.argsStart().raw(words[:]).i32(len(dst)).ptr(ps[0]).ptr(ps[1]).ptr(ps[2]).ptr(ps[3]).f32(eps).ptr(ps[4]).i32(C)
	return nil
}

// Prep7Up runs the LoRA up-projections and Prep7; see kernels.Fused.
func (b *Backend) Prep7Up(p kernels.Prep7, up kernels.Up7) {
	b.run("Prep7Up", func() error { return b.prep7Up(p, up) })
}

func (b *Backend) prep7Up(p kernels.Prep7, up kernels.Up7) error {
	ua, p7, ok, err := b.prep7UpArgs(p, up)
	if err != nil {
		return err
	}
	if ok {
		H := p.K.Cols / wkvHead
		if H <= countSlots {
			part, err := b.grow(&b.fused.part, int64(H*upSplits*4*wkvHead*4))
			if err != nil {
				return err
			}
			b.argsStart().raw(ua).raw(p7).i32(p.K.Cols).ptr(part).ptr(b.fused.count)
			return b.launchPDL(b.k.up7[up.W2.DType], [3]uint32{uint32(H), upSplits, 1}, [3]uint32{256, 1, 1})
		}
	}
	ups := []struct {
		dst, h, w kernels.Tensor
	}{{p.W, up.HW, up.W2}, {p.A, up.HA, up.A2}, {p.ZV, up.HV, up.V2}, {up.G, up.HG, up.G2}}
	for i, u := range ups {
		if i == 2 && !p.ZV.Valid() {
			continue
		}
		if err := b.product("Prep7Up", u.dst, u.h, u.w, false, false); err != nil {
			return err
		}
	}
	return b.prep7(p)
}

// upSplits is the number of blocks a head's LoRA rows are split over in
// the one-token Prep7Up kernel (each loads all its weights at once).
const upSplits = 4

// prep7UpArgs checks the operands of the one-token kernels and packs their
// UpArgs and P7Args; ok is false when the ops must run one by one.
func (b *Backend) prep7UpArgs(p kernels.Prep7, up kernels.Up7) (ua, p7 []uint64, ok bool, err error) {
	C := p.K.Cols
	hasZV := p.ZV.Valid()
	if p.K.Rows != 1 || p.HeadSize != wkvHead || C%wkvHead != 0 {
		return nil, nil, false, nil
	}
	hs := []kernels.Tensor{up.HW, up.HA, up.HV, up.HG}
	ws := []kernels.Tensor{up.W2, up.A2, up.V2, up.G2}
	outs := []kernels.Tensor{p.W, p.A, p.ZV, up.G}
	dt := up.W2.DType
	var hp, wp [4]uint64
	var d [4]int
	for m := range 4 {
		if m == 2 && !hasZV {
			continue
		}
		h, w, o := hs[m], ws[m], outs[m]
		if h.Cols == 0 {
			return nil, nil, false, nil // the kernel takes D = 0 as "absent"
		}
		if h.Rows != 1 || w.Rows != h.Cols || w.Cols != C || !sameShape(o, p.K) || w.DType != dt || !weightOK(dt) {
			return nil, nil, false, nil // the composed ops report the shape error
		}
		ptr, err := b.f32Ptrs("Prep7Up", h)
		if err != nil {
			return nil, nil, false, err
		}
		wptr, err := b.devPtr(w)
		if err != nil {
			return nil, nil, false, shapeErr("Prep7Up", "up matrix %d: %v", m, err)
		}
		if wptr%16 != 0 {
			return nil, nil, false, nil
		}
		hp[m], wp[m], d[m] = ptr[0], wptr, h.Cols
	}
	acts := []kernels.Tensor{p.K, p.V, p.VFirst, p.W, p.A, p.B, up.G}
	params := []kernels.Tensor{p.W0, p.A0, p.KK, p.KA}
	if hasZV {
		acts = append(acts, p.ZV)
		params = append(params, p.V0)
	}
	for _, t := range acts {
		if !sameShape(t, p.K) {
			return nil, nil, false, nil
		}
	}
	for _, t := range params {
		if t.Len() != C {
			return nil, nil, false, nil
		}
	}
	ap, err := b.f32Ptrs("Prep7Up", acts...)
	if err != nil {
		return nil, nil, false, err
	}
	pp, err := b.f32Ptrs("Prep7Up", params...)
	if err != nil {
		return nil, nil, false, err
	}
	var zv, v0 uint64
	if hasZV {
		zv, v0 = ap[7], pp[4]
	}
	// UpArgs {h[4], w[4], d[4]}; P7Args {K, V, VF, ZV, W, A, B, G, W0, A0,
	// V0, KK, KA}.
	ua = append(append(hp[:], wp[:]...), pack2(int32(d[0]), int32(d[1])), pack2(int32(d[2]), int32(d[3])))
	p7 = []uint64{ap[0], ap[1], ap[2], zv, ap[3], ap[4], ap[5], ap[6], pp[0], pp[1], v0, pp[2], pp[3]}
	return ua, p7, true, nil
}

// WKV7Out runs WKV7 then Out7; see kernels.Fused.
func (b *Backend) WKV7Out(s, w, a, bb kernels.Tensor, o kernels.Out7) {
	b.run("WKV7Out", func() error {
		T, C := o.R.Rows, o.R.Cols
		if T != 1 || o.HeadSize != wkvHead {
			if err := b.wkv7(o.Y, s, o.R, w, o.K, o.V, a, bb); err != nil {
				return err
			}
			return b.out7(o)
		}
		ok := C%wkvHead == 0 && s.Len() == C*wkvHead
		for _, t := range []kernels.Tensor{o.Y, w, o.K, o.V, a, bb, o.Dst, o.G} {
			ok = ok && sameShape(t, o.R)
		}
		for _, t := range []kernels.Tensor{o.RK, o.LnW, o.LnB} {
			ok = ok && t.Len() == C
		}
		if !ok {
			return shapeErr("WKV7Out", "y %v, s %v, r %v, dst %v (head size %d)", o.Y, s, o.R, o.Dst, wkvHead)
		}
		ps, err := b.f32Ptrs("WKV7Out", o.Y, s, o.R, w, o.K, a, bb, o.V, o.Dst, o.G, o.RK, o.LnW, o.LnB)
		if err != nil {
			return err
		}
		if ps[1]%16 != 0 {
			return shapeErr("WKV7Out", "state %v offset %d not a multiple of 4 elements", s, s.Offset)
		}
		// y, s, WKVIn{r, w, k, a, b, v}, O7Args{D, G, RK, LW, LB}, C, eps.
		b.argsStart().ptr(ps[0]).ptr(ps[1]).raw(ps[2:8]).raw(ps[8:13]).i32(C).f32(o.Eps)
		return b.launchPDL(b.k.wkv7out, [3]uint32{uint32(C / wkvHead), 1, 1}, [3]uint32{256, 1, 1})
	})
}

var _ kernels.Fused = (*Backend)(nil)
