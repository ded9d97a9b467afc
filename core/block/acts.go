package block

import (
	"fmt"

	"github.com/goose-rwkv/goose/kernels"
)

// Acts are the activations of a block for up to T rows, allocated once
// (per model and row count) and reused by every layer and call, so their
// addresses stay fixed (a captured decode step replays them). Tensors are
// F32 [T, C] unless noted.
type Acts struct {
	T int
	// X is the residual stream, updated in place by Forward; XA receives
	// its normalised rows; Tmp is scratch.
	X, XA, Tmp kernels.Tensor
	// The time mix's projections and WKV inputs, its recurrence output Y,
	// its output O before the projection, the first layer's values and
	// the value-residual LoRA output.
	R, K, V, W, A, B, G, Y, O, VFirst, ZV kernels.Tensor
	// Mix are the six lerps of the time mix (the channel mix uses Mix[0]).
	Mix [6]kernels.Tensor
	// LoRA hidden activations [T, rank] and the channel mix's hidden
	// layer [T, FFN].
	HW, HA, HV, HG, FFH kernels.Tensor
	// Round lets the large products (r, k, v, the output projection and
	// the channel mix) round their inputs to the weights' dtype
	// (kernels.LinearItem.Round); the LoRA products stay exact.
	Round bool
	// Stack holds R, W, K, V, A, B and Y as allocated, with Stack rows
	// per row of the fields above (which view its first T rows); see
	// NewActs.
	Stack [7]kernels.Tensor

	stack int // rows of Stack per row of the fields
	owned []kernels.Tensor
	views *Acts // views for viewsN rows
	// Operand lists of the fused ops, kept here so that a decode step
	// allocates nothing.
	items  [7]kernels.LinearItem
	one    [1]kernels.LinearItem
	ffnMix [1]kernels.Tensor
}

// NewActs allocates the activations for T rows of a block of dims d. With
// stack > 1 the recurrence's inputs and output (R, W, K, V, A, B, Y) get
// stack·T rows, of which the fields view the first T: room for a model to
// lay further sequences beside them (A-RWKV's time-reversed copy).
func NewActs(be kernels.Backend, T int, d Dims, stack int) (*Acts, error) {
	C := d.Width
	stack = max(stack, 1)
	a := &Acts{T: T, stack: stack}
	var err error
	alloc := func(rows, cols int) kernels.Tensor {
		if err != nil {
			return kernels.Tensor{}
		}
		var t kernels.Tensor
		t, err = be.Alloc(kernels.F32, rows, cols)
		if err == nil {
			a.owned = append(a.owned, t)
		}
		return t
	}
	for i, p := range []*kernels.Tensor{&a.R, &a.W, &a.K, &a.V, &a.A, &a.B, &a.Y} {
		a.Stack[i] = alloc(stack*T, C)
		if err == nil {
			*p = a.Stack[i].Slice(0, T)
		}
	}
	for _, p := range []*kernels.Tensor{&a.X, &a.XA, &a.Tmp, &a.G, &a.O, &a.VFirst, &a.ZV} {
		*p = alloc(T, C)
	}
	for i := range a.Mix {
		a.Mix[i] = alloc(T, C)
	}
	a.HW = alloc(T, d.DecayLoRA)
	a.HA = alloc(T, d.AlphaLoRA)
	a.HV = alloc(T, max(d.ValueLoRA, 1))
	a.HG = alloc(T, d.GateLoRA)
	a.FFH = alloc(T, d.FFN)
	if err != nil {
		a.Free(be)
		return nil, fmt.Errorf("allocate activations for %d rows: %w", T, err)
	}
	return a, nil
}

// Rows returns views of the first n rows (n <= T), the same value for
// the same n until another n is asked for. Its Stack holds stack·n rows,
// laid out as NewActs lays them for n (the fields view the first n).
func (a *Acts) Rows(n int) *Acts {
	if n == a.T {
		return a
	}
	if a.views != nil && a.views.T == n {
		return a.views
	}
	r := func(t kernels.Tensor) kernels.Tensor { return t.Slice(0, n) }
	v := &Acts{T: n, stack: a.stack, Round: a.Round, X: r(a.X), XA: r(a.XA), Tmp: r(a.Tmp),
		G: r(a.G), O: r(a.O), VFirst: r(a.VFirst), ZV: r(a.ZV),
		HW: r(a.HW), HA: r(a.HA), HV: r(a.HV), HG: r(a.HG), FFH: r(a.FFH)}
	for i := range a.Mix {
		v.Mix[i] = r(a.Mix[i])
	}
	for i, p := range []*kernels.Tensor{&v.R, &v.W, &v.K, &v.V, &v.A, &v.B, &v.Y} {
		v.Stack[i] = a.Stack[i].Slice(0, a.stack*n)
		*p = v.Stack[i].Slice(0, n)
	}
	a.views = v
	return v
}

// Bytes is the size of the tensors NewActs allocated.
func (a *Acts) Bytes() int64 {
	var n int64
	for _, t := range a.owned {
		n += int64(t.Len()) * int64(t.DType.Size())
	}
	return n
}

// Free releases the tensors NewActs allocated.
func (a *Acts) Free(be kernels.Backend) {
	for _, t := range a.owned {
		be.Free(t)
	}
	a.owned = nil
}
