package kernels

// Fused is implemented by backends that can run some op sequences of an
// RWKV-7 step as single operations (on a GPU: one kernel launch instead of
// several, which is most of the cost of a one-token step). It is optional:
// callers find it by type assertion, like Grapher, and otherwise issue the
// ops one by one.
//
// Each method is defined as the op sequence in its comment and computes the
// same values up to rounding; a backend may run exactly that sequence (the
// CPU backend does). Errors are recorded and reported by Sync, as for Ops.
// Operands follow the rules of the ops they stand for; in addition, no
// output may overlap an input of the same call unless the composed ops
// allow it.
type Fused interface {
	// LinearBatch runs independent products: for each item, in any
	// order, Dst = X·Wᵀ (Linear) or X·W (MatMul, with NN), then
	// Act(Dst, Dst, item.Act) when Activate is set, or, with Accumulate,
	// Dst += X·Wᵀ (or X·W). Activate and Accumulate do not combine. No
	// item may write a tensor another item reads.
	LinearBatch(items []LinearItem)
	// NormShiftMix runs LayerNorm(norm, x, w, b, eps) then
	// ShiftMix(dst, norm, state, mix).
	NormShiftMix(norm Tensor, dst []Tensor, x, w, b Tensor, eps float32, state Tensor, mix []Tensor)
	// Prep7Up computes the time mix's LoRA up-projections into the
	// inputs of Prep7, then runs it: MatMul(p.W, up.HW, up.W2),
	// MatMul(p.A, up.HA, up.A2), MatMul(p.ZV, up.HV, up.V2) when p.ZV is
	// valid, MatMul(up.G, up.HG, up.G2), then Prep7(p).
	Prep7Up(p Prep7, up Up7)
	// WKV7Out runs WKV7(o.Y, s, o.R, w, o.K, o.V, a, b) then Out7(o).
	WKV7Out(s, w, a, b Tensor, o Out7)
}

// LinearItem is one product of Fused.LinearBatch.
type LinearItem struct {
	Dst, X, W Tensor
	// NN multiplies by W as stored (X·W, W [K, N], a LoRA matrix) instead
	// of by its transpose (X·Wᵀ, W [N, K], a PyTorch nn.Linear weight).
	NN bool
	// Activate applies Act to the product.
	Activate bool
	Act      Activation
	// Accumulate adds the product to Dst instead of overwriting it.
	Accumulate bool
	// Round lets the product round X to W's dtype (bf16 or f16) before
	// multiplying, as bf16 inference in the reference implementations
	// does: about 2⁻⁹ relative error a term instead of fp32's. A backend
	// whose exact product of a long input costs two tensor-core passes
	// (X split into a high and a low half) then runs one. Backends may
	// ignore it: the CPU backend and the one-token kernels always multiply
	// fp32 activations.
	Round bool
}

// Up7 holds the LoRA operands of Fused.Prep7Up: the hidden activations
// (HW after tanh, HA, HV, HG after sigmoid; F32 [T, D]) and the up matrices
// ([D, C], weight dtype). HV and V2 are used only when Prep7.ZV is valid.
// G receives the gate, F32 [T, C].
type Up7 struct {
	HW, W2 Tensor
	HA, A2 Tensor
	HV, V2 Tensor
	HG, G2 Tensor
	G      Tensor
}

// RowShift is implemented by backends that run the token shift of a
// batched decode step (rows of independent sequences, one token each, as
// core.Batch steps them) as one op. It is optional, found by type
// assertion; callers otherwise compose it of LayerNorm, Lerp and Copy.
type RowShift interface {
	// NormShiftRows sets norm = LayerNorm(x; w, b) (eps) and, for each
	// row t, dst[i][t] = norm[t] + (state[t] − norm[t]) ⊙ mix[i], then
	// state[t] = norm[t]: NormShiftMix with every row its own sequence,
	// whose previous token is its row of state [T, C]. At most 8 mixes.
	NormShiftRows(norm Tensor, dst []Tensor, x, w, b Tensor, eps float32, state Tensor, mix []Tensor)
}

// BiWKV is implemented by backends that run a bidirectional WKV (A-RWKV's
// Bi-WKV) without materialising the reversed sequences. It is optional,
// found by type assertion like Fused; callers otherwise flip the rows with
// FlipRows and run WKV7 on the stacked sequences.
type BiWKV interface {
	// WKV7Bi runs WKV7 on each group of n consecutive rows of r, w, k, v,
	// a, b twice: in order, from the states of the first half of s, into
	// yf, and in reverse row order, from the second half, into yb, whose
	// rows keep the input's order. With x′ the rows of x flipped within
	// groups of n and x₂ = x stacked over x′ (2T rows), it computes what
	//
	//	WKV7(y₂, s, r₂, w₂, k₂, v₂, a₂, b₂)
	//	yf = y₂[:T]; FlipRows(yb, y₂[T:], n)
	//
	// computes: s holds 2·(T/n)·H·64 rows of 64, sequence q's heads at
	// rows [q·H·64, (q+1)·H·64), the reversed copies' after the T/n
	// forward ones. yf and yb must not overlap each other or the inputs.
	WKV7Bi(yf, yb, s, r, w, k, v, a, b Tensor, n int)
}
