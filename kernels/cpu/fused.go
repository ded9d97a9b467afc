package cpu

import "github.com/goose-rwkv/goose/kernels"

// The CPU backend implements kernels.Fused by running each method's op
// sequence: there is no launch cost to save on a CPU, and this keeps the
// fused and the composed forward passes identical to the bit.

// LinearBatch runs each item's Linear or MatMul, then its Act or Add.
func (b *Backend) LinearBatch(items []kernels.LinearItem) {
	for _, it := range items {
		if !(!(it.Activate && it.Accumulate)) {
			b.fail("LinearBatch", "item %v·%v both activates and accumulates", it.X, it.W)
			return
		}
		if it.Accumulate {
			b.accumulate(it)
			continue
		}
		if it.NN {
			b.MatMul(it.Dst, it.X, it.W)
		} else {
			b.Linear(it.Dst, it.X, it.W)
		}
		if it.Activate {
			b.Act(it.Dst, it.Dst, it.Act)
		}
	}
}

// accumulate adds an item's product to its Dst: the product goes to a
// pooled temporary (the same values Linear or MatMul would write), then
// is added, as Add would.
func (b *Backend) accumulate(it kernels.LinearItem) {
	x, w, dst := it.X, it.W, it.Dst
	K, N := w.Cols, w.Rows
	if it.NN {
		K, N = w.Rows, w.Cols
	}
	if !(isF32(dst, x) && x.Cols == K && dst.Rows == x.Rows && dst.Cols == N) {
		b.fail("LinearBatch", "accumulate dst %v, x %v, w %v", dst, x, w)
		return
	}
	n := dst.Len()
	s := b.pool.getScratch(n)
	defer b.pool.putScratch(s)
	tmp := (*s)[:n]
	if !b.product("LinearBatch", tmp, x, w, it.NN) {
		return
	}
	d := b.f32(dst)
	add := b.pool.ks.add
	b.pool.For(n, 16384, func(lo, hi int) {
		add(d[lo:hi], d[lo:hi], tmp[lo:hi])
	})
}

// NormShiftMix runs LayerNorm then ShiftMix.
func (b *Backend) NormShiftMix(norm kernels.Tensor, dst []kernels.Tensor, x, w, bias kernels.Tensor, eps float32, state kernels.Tensor, mix []kernels.Tensor) {
	b.LayerNorm(norm, x, w, bias, eps)
	b.ShiftMix(dst, norm, state, mix)
}

// Prep7Up runs the LoRA up-projections, then Prep7.
func (b *Backend) Prep7Up(p kernels.Prep7, up kernels.Up7) {
	b.MatMul(p.W, up.HW, up.W2)
	b.MatMul(p.A, up.HA, up.A2)
	if p.ZV.Valid() {
		b.MatMul(p.ZV, up.HV, up.V2)
	}
	b.MatMul(up.G, up.HG, up.G2)
	b.Prep7(p)
}

// WKV7Out runs WKV7 then Out7.
func (b *Backend) WKV7Out(s, w, a, bb kernels.Tensor, o kernels.Out7) {
	b.WKV7(o.Y, s, o.R, w, o.K, o.V, a, bb)
	b.Out7(o)
}

var _ kernels.Fused = (*Backend)(nil)
