package cuda

import (
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// smallT is the most tokens a Linear or MatMul runs in this package's
// vector kernels; longer inputs go to cuBLAS.
const smallT = 16

func weightOK(d kernels.DType) bool {
	return d == kernels.F32 || d == kernels.F16 || d == kernels.BF16
}

// linearOK reports whether Linear reads weights of dtype d (int8 too).
func linearOK(d kernels.DType) bool { return weightOK(d) || d == kernels.I8 }

func sameShape(a, b kernels.Tensor) bool { return a.Rows == b.Rows && a.Cols == b.Cols }

// Embed sets dst[t] = table[ids[t]] as F32.
func (b *Backend) Embed(dst, table, ids kernels.Tensor) {
	b.run("Embed", func() error {
		T, C := dst.Rows, dst.Cols
		if ids.DType != kernels.I32 || ids.Len() != T || table.Cols != C || !weightOK(table.DType) {
			return shapeErr("Embed", "dst %v, table %v, ids %v", dst, table, ids)
		}
		ps, err := b.f32Ptrs("Embed", dst)
		if err != nil {
			return err
		}
		tp, err := b.devPtr(table)
		if err != nil {
			return shapeErr("Embed", "table: %v", err)
		}
		ip, err := b.devPtr(ids)
		if err != nil {
			return shapeErr("Embed", "ids: %v", err)
		}
		b.argsStart().ptr(ps[0]).ptr(tp).ptr(ip).i32(table.Rows).i32(C)
		cy := min((C+255)/256, 8)
		return b.launch(b.k.embed[table.DType], [3]uint32{uint32(T), uint32(cy), 1}, [3]uint32{256, 1, 1})
	})
}

// Linear sets dst = x·wᵀ.
func (b *Backend) Linear(dst, x, w kernels.Tensor) {
	b.run("Linear", func() error { return b.product("Linear", dst, x, w, true, false) })
}

// MatMul sets dst = x·w.
func (b *Backend) MatMul(dst, x, w kernels.Tensor) {
	b.run("MatMul", func() error { return b.product("MatMul", dst, x, w, false, false) })
}

// product sets dst = x·wᵀ (linear) or x·w; with accumulate (cuBLAS sizes
// only, T > smallT) it adds the product to dst.
func (b *Backend) product(op string, dst, x, w kernels.Tensor, linear, accumulate bool) error {
	T, K := x.Rows, x.Cols
	N, wk := w.Cols, w.Rows
	if linear {
		N, wk = w.Rows, w.Cols
	}
	if wk != K || dst.Rows != T || dst.Cols != N || !weightOK(w.DType) && !(linear && w.DType == kernels.I8) {
		return shapeErr(op, "dst %v, x %v, w %v", dst, x, w)
	}
	ps, err := b.f32Ptrs(op, dst, x)
	if err != nil {
		return err
	}
	wp, err := b.devPtr(w)
	if err != nil {
		return shapeErr(op, "w: %v", err)
	}
	if T == 0 || N == 0 {
		return nil
	}
	if accumulate && T <= smallT {
		return shapeErr(op, "accumulating product of %d tokens (only above %d)", T, smallT)
	}
	if w.DType == kernels.I8 {
		sp, err := b.scalePtr(w)
		if err != nil {
			return shapeErr(op, "w: %v", err)
		}
		return b.linearI8(ps[0], ps[1], wp, sp, T, K, N, accumulate, false)
	}
	return b.productPtr(ps[0], ps[1], wp, T, K, N, w.DType, linear, accumulate, false)
}

// linearI8 is Linear with an I8 weight (values at w, scales at sp): the
// int8 vector kernels for a few tokens; for more, the values widened to
// bf16 (exactly) in scratch, the bf16 GEMMs, then the columns scaled. With
// round the GEMM may round x to bf16 (LinearItem.Round).
func (b *Backend) linearI8(dst, x, w, sp uint64, T, K, N int, accumulate, round bool) error {
	if K == 0 {
		if accumulate {
			return nil
		}
		return b.drv.MemsetD8Async(dst, 0, int64(T*N*4), b.stream)
	}
	if T <= smallT {
		for t0 := 0; t0 < T; t0 += maxSmallT {
			nt := min(maxSmallT, T-t0)
			if err := b.gemvScaled(dst+uint64(t0*N*4), x+uint64(t0*K*4), w, sp, nt, K, N, kernels.I8); err != nil {
				return err
			}
		}
		return nil
	}
	nw := int64(N) * int64(K)
	wb, err := b.grow(&b.fused.deq, 2*nw+int64(T*N*4))
	if err != nil {
		return err
	}
	tmp := wb + uint64((2*nw+15)&^15)
	b.argsStart().ptr(wb).ptr(w).raw([]uint64{uint64(nw)})
	if err := b.launch(b.k.i8ToBF16, b.grid1D(int(min(nw, 1<<30))), [3]uint32{256, 1, 1}); err != nil {
		return err
	}
	if err := b.gemm(tmp, x, wb, T, K, N, kernels.BF16, true, false, round); err != nil {
		return err
	}
	b.argsStart().ptr(dst).ptr(tmp).ptr(sp).i32(T).i32(N).i32(int(boolInt(accumulate)))
	return b.launch(b.k.scaleCols, b.grid1D(T*N), [3]uint32{256, 1, 1})
}

// productPtr is product on checked device pointers; round as for gemm.
func (b *Backend) productPtr(dst, x, wp uint64, T, K, N int, dt kernels.DType, linear, accumulate, round bool) error {
	if K == 0 {
		if accumulate {
			return nil
		}
		return b.drv.MemsetD8Async(dst, 0, int64(T*N*4), b.stream)
	}
	if T > smallT {
		return b.gemm(dst, x, wp, T, K, N, dt, linear, accumulate, round)
	}
	for t0 := 0; t0 < T; t0 += maxSmallT {
		nt := min(maxSmallT, T-t0)
		dp, xp := dst+uint64(t0*N*4), x+uint64(t0*K*4)
		var err error
		if linear {
			err = b.gemv(dp, xp, wp, nt, K, N, dt)
		} else {
			err = b.vecmat(dp, xp, wp, nt, K, N, dt)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// gemv: one warp per output row, 8 rows per block.
func (b *Backend) gemv(dst, x, w uint64, nt, K, N int, dt kernels.DType) error {
	return b.gemvScaled(dst, x, w, 0, nt, K, N, dt)
}

// gemvScaled is gemv with per-row scales at sp (I8 weights; 0: none).
func (b *Backend) gemvScaled(dst, x, w, sp uint64, nt, K, N int, dt kernels.DType) error {
	vec := 0
	if K%8 == 0 && w%16 == 0 && x%16 == 0 {
		vec = 1
	}
	b.argsStart().ptr(dst).ptr(x).ptr(w).i32(N).i32(K).i32(vec).ptr(sp)
	return b.launch(b.k.gemv[dt][nt], [3]uint32{uint32((N + 7) / 8), 1, 1}, [3]uint32{256, 1, 1})
}

// vecmat: 64 columns per block; K is split over blocks when there are too
// few column blocks to fill the GPU, and the partial sums added in order.
func (b *Backend) vecmat(dst, x, w uint64, nt, K, N int, dt kernels.DType) error {
	vec := 0
	if N%8 == 0 && w%16 == 0 {
		vec = 1
	}
	bx := (N + 63) / 64
	splits := 1
	if want := (2*b.sms + bx - 1) / bx; want > 1 {
		splits = max(1, min(want, K/128))
	}
	kchunk := (K + splits - 1) / splits
	splits = (K + kchunk - 1) / kchunk
	var part uint64
	if splits > 1 {
		var err error
		if part, err = b.scratchFor(int64(splits * nt * N * 4)); err != nil {
			return err
		}
	}
	b.argsStart().ptr(dst).ptr(x).ptr(w).i32(N).i32(K).i32(kchunk).ptr(part).i32(vec)
	if err := b.launch(b.k.mm[dt][nt], [3]uint32{uint32(bx), uint32(splits), 1}, [3]uint32{256, 1, 1}); err != nil {
		return err
	}
	if splits == 1 {
		return nil
	}
	n := nt * N
	b.argsStart().ptr(dst).ptr(part).i32(n).i32(splits)
	return b.launch(b.k.mmReduce, [3]uint32{uint32((n + 255) / 256), 1, 1}, [3]uint32{256, 1, 1})
}

// gemm runs a long input through cuBLAS (column-major, so the row-major
// dst [T,N] is the column-major N×T product wᵀ-or-w × xᵀ). With accumulate
// it adds the product to dst.
//
// F16/BF16 weights need activations of the same dtype. Rounding x to 8
// (bf16) or 11 (f16) significant bits costs ~2⁻⁹ relative error per
// product term, visible in the logits; so x is split into x_hi = round(x)
// and x_lo = round(x − x_hi), and dst = w·x_lo + w·x_hi (two GEMMs with
// fp32 accumulation). x_hi + x_lo equals x to ~2⁻¹⁷ relative (bf16), so the
// products are as exact as fp32 activations would give, for twice the
// tensor-core work. With round (LinearItem.Round) only x_hi is multiplied:
// one GEMM, at about 2⁻⁹ relative error a product term.
func (b *Backend) gemm(dst, x, w uint64, T, K, N int, dt kernels.DType, linear, accumulate, round bool) error {
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	opA, lda := cu.OpN, N
	if linear {
		opA, lda = cu.OpT, K
	}
	if dt == kernels.F32 {
		return b.blas.GemmEx(b.handle, opA, cu.OpN, N, T, K, w, cu.R32F, lda, x, cu.R32F, K, beta, dst, cu.R32F, N)
	}
	typ := cu.R16BF
	if dt == kernels.F16 {
		typ = cu.R16F
	}
	n := T * K
	s, err := b.scratchFor(int64(n * 4))
	if err != nil {
		return err
	}
	hi, lo := s, s+uint64(n*2)
	if round {
		lo = 0
	}
	b.argsStart().ptr(hi).ptr(lo).ptr(x).i32(n)
	if err := b.launch(b.k.split[dt], b.grid1D(n), [3]uint32{256, 1, 1}); err != nil {
		return err
	}
	if round {
		return b.blas.GemmEx(b.handle, opA, cu.OpN, N, T, K, w, typ, lda, hi, typ, K, beta, dst, cu.R32F, N)
	}
	if err := b.blas.GemmEx(b.handle, opA, cu.OpN, N, T, K, w, typ, lda, lo, typ, K, beta, dst, cu.R32F, N); err != nil {
		return err
	}
	return b.blas.GemmEx(b.handle, opA, cu.OpN, N, T, K, w, typ, lda, hi, typ, K, 1, dst, cu.R32F, N)
}

// LayerNorm normalises each row of x and applies w, bias.
func (b *Backend) LayerNorm(dst, x, w, bias kernels.Tensor, eps float32) {
	b.run("LayerNorm", func() error { return b.layerNorm(dst, x, w, bias, eps) })
}

func (b *Backend) layerNorm(dst, x, w, bias kernels.Tensor, eps float32) error {
	C := x.Cols
	affine := w.Valid() || bias.Valid()
	if !sameShape(dst, x) || affine && (w.Len() != C || bias.Len() != C) {
		return shapeErr("LayerNorm", "dst %v, x %v, w %v, b %v", dst, x, w, bias)
	}
	ps, err := b.f32Ptrs("LayerNorm", dst, x)
	if err != nil {
		return err
	}
	var wp, bp uint64
	if affine {
		ab, err := b.f32Ptrs("LayerNorm", w, bias)
		if err != nil {
			return err
		}
		wp, bp = ab[0], ab[1]
	}
	b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(wp).ptr(bp).i32(C).f32(eps)
	return b.launch(b.k.layernorm, [3]uint32{uint32(x.Rows), 1, 1}, [3]uint32{256, 1, 1})
}

// maxMix is the most mixes one ShiftMix handles.
const maxMix = 8

// mixShapesOK reports whether dst and mix are the operand lists of a
// token-shift op on x: as many of each, at most maxMix, every dst shaped
// as x and every mix of x's width.
func mixShapesOK(dst []kernels.Tensor, x kernels.Tensor, mix []kernels.Tensor) bool {
	ok := len(dst) == len(mix) && len(dst) <= maxMix
	for i := range dst {
		ok = ok && sameShape(dst[i], x) && mix[i].Len() == x.Cols
	}
	return ok
}

// mixArgs returns the device addresses of dst and mix as the kernels'
// MixArgs (maxMix of each).
func (b *Backend) mixArgs(op string, dst, mix []kernels.Tensor) (words [2 * maxMix]uint64, err error) {
	ds, err := b.f32Ptrs(op, dst...)
	if err != nil {
		return words, err
	}
	ms, err := b.f32Ptrs(op, mix...)
	if err != nil {
		return words, err
	}
	copy(words[:maxMix], ds)
	copy(words[maxMix:], ms)
	return words, nil
}

// ShiftMix forms token-shifted mixes of x and stores x's last row in state.
func (b *Backend) ShiftMix(dst []kernels.Tensor, x, state kernels.Tensor, mix []kernels.Tensor) {
	b.run("ShiftMix", func() error { return b.shiftMix(dst, x, state, mix) })
}

func (b *Backend) shiftMix(dst []kernels.Tensor, x, state kernels.Tensor, mix []kernels.Tensor) error {
	T, C := x.Rows, x.Cols
	if !mixShapesOK(dst, x, mix) || state.Len() != C {
		return shapeErr("ShiftMix", "x %v, state %v, %d dst, %d mix (at most %d)", x, state, len(dst), len(mix), maxMix)
	}
	ps, err := b.f32Ptrs("ShiftMix", x, state)
	if err != nil {
		return err
	}
	words, err := b.mixArgs("ShiftMix", dst, mix)
	if err != nil {
		return err
	}
	if T == 0 {
		return nil
	}
	b.argsStart().raw(words[:]).i32(len(dst)).ptr(ps[0]).ptr(ps[1]).i32(T).i32(C)
	return b.launch(b.k.shiftmix, b.grid1D(T*C), [3]uint32{256, 1, 1})
}

// Act applies f element-wise.
func (b *Backend) Act(dst, x kernels.Tensor, f kernels.Activation) {
	b.run("Act", func() error { return b.act(dst, x, f) })
}

func (b *Backend) act(dst, x kernels.Tensor, f kernels.Activation) error {
	if f == kernels.GELU || f == kernels.GELUTanh {
		return b.biasAct(dst, x, kernels.Tensor{}, f)
	}
	if dst.Len() != x.Len() || f > kernels.ReLUSquared {
		return shapeErr("Act", "dst %v, x %v, function %d", dst, x, f)
	}
	ps, err := b.f32Ptrs("Act", dst, x)
	if err != nil {
		return err
	}
	n := x.Len()
	b.argsStart().ptr(ps[0]).ptr(ps[1]).i32(n).i32(int(f))
	return b.launch(b.k.act, b.grid1D(n), [3]uint32{256, 1, 1})
}

// Add sets dst = a + c; c may be one row broadcast over a's rows.
func (b *Backend) Add(dst, a, c kernels.Tensor) { b.binop("Add", dst, a, c, 0) }

// Mul sets dst = a ⊙ c element-wise.
func (b *Backend) Mul(dst, a, c kernels.Tensor) { b.binop("Mul", dst, a, c, 1) }

func (b *Backend) binop(op string, dst, a, c kernels.Tensor, code int) {
	b.run(op, func() error {
		n := a.Len()
		bcols := 0
		switch {
		case dst.Len() != n:
			return shapeErr(op, "dst %v, a %v", dst, a)
		case c.Len() == n:
		case code == 0 && c.Rows == 1 && c.Cols == a.Cols:
			bcols = a.Cols
		default:
			return shapeErr(op, "a %v, b %v", a, c)
		}
		ps, err := b.f32Ptrs(op, dst, a, c)
		if err != nil {
			return err
		}
		b.argsStart().ptr(ps[0]).ptr(ps[1]).ptr(ps[2]).i32(n).i32(bcols).i32(code)
		return b.launch(b.k.binop, b.grid1D(n), [3]uint32{256, 1, 1})
	})
}

// Copy copies src into dst.
func (b *Backend) Copy(dst, src kernels.Tensor) {
	b.run("Copy", func() error { return b.copy(dst, src) })
}

// CopyList copies src[i] into dst[i] in order, in one call
// (kernels.CopyLister).
func (b *Backend) CopyList(dst, src []kernels.Tensor) {
	b.run("CopyList", func() error {
		if len(dst) != len(src) {
			return shapeErr("CopyList", "%d destinations for %d sources", len(dst), len(src))
		}
		for i := range dst {
			if err := b.copy(dst[i], src[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// copy issues one device-to-device copy. The caller holds the lock.
func (b *Backend) copy(dst, src kernels.Tensor) error {
	if dst.DType != src.DType || dst.Len() != src.Len() {
		return shapeErr("Copy", "dst %v, src %v", dst, src)
	}
	dp, err := b.devPtr(dst)
	if err != nil {
		return shapeErr("Copy", "dst: %v", err)
	}
	sp, err := b.devPtr(src)
	if err != nil {
		return shapeErr("Copy", "src: %v", err)
	}
	if n := int64(src.Len() * src.DType.Size()); n > 0 && dp != sp {
		return b.drv.MemcpyDtoDAsync(dp, sp, n, b.stream)
	}
	return nil
}

var _ kernels.CopyLister = (*Backend)(nil)

// headGrid checks a head size and returns the (token, head) grid.
func headGrid(op string, T, C, hs int) ([3]uint32, error) {
	if hs <= 0 || hs%32 != 0 || hs > 1024 || C%hs != 0 {
		return [3]uint32{}, shapeErr(op, "head size %d with %d channels (need a multiple of 32 dividing C)", hs, C)
	}
	return [3]uint32{uint32(T), uint32(C / hs), 1}, nil
}

// Prep7 computes the WKV inputs; see kernels.Prep7.
func (b *Backend) Prep7(p kernels.Prep7) {
	b.run("Prep7", func() error { return b.prep7(p) })
}

func (b *Backend) prep7(p kernels.Prep7) error {
	T, C := p.K.Rows, p.K.Cols
	grid, err := headGrid("Prep7", T, C, p.HeadSize)
	if err != nil {
		return err
	}
	acts := []kernels.Tensor{p.K, p.V, p.VFirst, p.W, p.A, p.B}
	params := []kernels.Tensor{p.W0, p.A0, p.KK, p.KA}
	hasZV := p.ZV.Valid()
	if hasZV {
		acts = append(acts, p.ZV)
		params = append(params, p.V0)
	}
	for _, t := range acts {
		if !sameShape(t, p.K) {
			return shapeErr("Prep7", "operand %v, k %v", t, p.K)
		}
	}
	for _, t := range params {
		if t.Len() != C {
			return shapeErr("Prep7", "parameter %v, want %d elements", t, C)
		}
	}
	ap, err := b.f32Ptrs("Prep7", acts...)
	if err != nil {
		return err
	}
	pp, err := b.f32Ptrs("Prep7", params...)
	if err != nil {
		return err
	}
	var zv, v0 uint64
	z := 0
	if hasZV {
		zv, v0, z = ap[6], pp[4], 1
	}
	b.argsStart().ptr(ap[0]).ptr(ap[1]).ptr(ap[2]).ptr(zv).ptr(ap[3]).ptr(ap[4]).ptr(ap[5]).
		ptr(pp[0]).ptr(pp[1]).ptr(v0).ptr(pp[2]).ptr(pp[3]).i32(C).i32(z)
	return b.launch(b.k.prep7, grid, [3]uint32{uint32(p.HeadSize), 1, 1})
}

// Out7 computes group norm, bonus and gate; see kernels.Out7.
func (b *Backend) Out7(o kernels.Out7) {
	b.run("Out7", func() error { return b.out7(o) })
}

func (b *Backend) out7(o kernels.Out7) error {
	T, C := o.Y.Rows, o.Y.Cols
	grid, err := headGrid("Out7", T, C, o.HeadSize)
	if err != nil {
		return err
	}
	for _, t := range []kernels.Tensor{o.Dst, o.R, o.K, o.V, o.G} {
		if !sameShape(t, o.Y) {
			return shapeErr("Out7", "operand %v, y %v", t, o.Y)
		}
	}
	for _, t := range []kernels.Tensor{o.RK, o.LnW, o.LnB} {
		if t.Len() != C {
			return shapeErr("Out7", "parameter %v, want %d elements", t, C)
		}
	}
	ps, err := b.f32Ptrs("Out7", o.Dst, o.Y, o.R, o.K, o.V, o.G, o.RK, o.LnW, o.LnB)
	if err != nil {
		return err
	}
	a := b.argsStart()
	for _, p := range ps {
		a.ptr(p)
	}
	a.i32(C).f32(o.Eps)
	return b.launch(b.k.out7, grid, [3]uint32{uint32(o.HeadSize), 1, 1})
}

// wkvHead is the head size the WKV7 kernel is built for.
const wkvHead = 64

// defaultWKVTPR is the number of threads per state row WKV7 uses: on an
// H100, 4 was fastest both for one token and for 1024 (8 and 16 were no
// faster: the step is bound by shared-memory wavefronts, see PERF.md).
const defaultWKVTPR = 4

// defaultWKVRows is the row-split WKV7 kernel used for more than one
// token (tpr 0: the one-block-per-head kernel); see PERF.md.
func defaultWKVRows() wkvVariant { return wkvVariant{tpr: 8, warps: 4, stages: 4} }

// WKV7 runs the RWKV-7 recurrence over the rows of r; see kernels.Ops.
func (b *Backend) WKV7(y, s, r, w, k, v, a, bb kernels.Tensor) {
	b.run("WKV7", func() error { return b.wkv7(y, s, r, w, k, v, a, bb) })
}

func (b *Backend) wkv7(y, s, r, w, k, v, a, bb kernels.Tensor) error {
	T, C := r.Rows, r.Cols
	ok := C%wkvHead == 0 && C > 0 && s.Len() > 0 && s.Len()%(C*wkvHead) == 0
	seqs := 1
	if ok {
		seqs = s.Len() / (C * wkvHead)
		ok = T%seqs == 0
	}
	for _, t := range []kernels.Tensor{y, w, k, v, a, bb} {
		ok = ok && sameShape(t, r)
	}
	if !ok {
		return shapeErr("WKV7", "y %v, s %v, r %v (head size %d; the states must divide the rows)", y, s, r, wkvHead)
	}
	ps, err := b.f32Ptrs("WKV7", y, s, r, w, k, v, a, bb)
	if err != nil {
		return err
	}
	if ps[1]%16 != 0 {
		return shapeErr("WKV7", "state %v offset %d not a multiple of 4 elements", s, s.Offset)
	}
	if T == 0 {
		return nil
	}
	// Input order of the kernel's WKVIn: r, w, k, a, b, v.
	in := [6]uint64{ps[2], ps[3], ps[4], ps[6], ps[7], ps[5]}
	vec := 1
	for _, p := range in {
		if p%16 != 0 {
			vec = 0
		}
	}
	// Sequences run side by side as grid z (each kernel moves to its own).
	L := T / seqs
	b.argsStart().ptr(ps[0]).ptr(ps[1]).raw(in[:]).i32(L).i32(C).i32(vec)
	if v := b.wkvRows; L > 1 && v.tpr > 0 {
		// Rows spread over blocks of 32·warps/tpr rows.
		rows := 32 * v.warps / v.tpr
		return b.launch(b.k.wkv7g[v], [3]uint32{uint32(C / wkvHead), uint32(wkvHead / rows), uint32(seqs)}, [3]uint32{uint32(32 * v.warps), 1, 1})
	}
	tpr := b.wkvTPR
	return b.launch(b.k.wkv7[tpr], [3]uint32{uint32(C / wkvHead), 1, uint32(seqs)}, [3]uint32{uint32(tpr * wkvHead), 1, 1})
}
