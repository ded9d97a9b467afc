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
		dst := it.Dst
		if it.Accumulate {
			tmp, err := b.Alloc(kernels.F32, it.Dst.Rows, it.Dst.Cols)
			if err != nil {
				b.fail("LinearBatch", "temporary %v: %v", it.Dst, err)
				return
			}
			dst = tmp
		}
		if it.NN {
			b.MatMul(dst, it.X, it.W)
		} else {
			b.Linear(dst, it.X, it.W)
		}
		switch {
		case it.Accumulate:
			b.Add(it.Dst, it.Dst, dst)
		case it.Activate:
			b.Act(it.Dst, it.Dst, it.Act)
		}
	}
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
