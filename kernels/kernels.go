// Package kernels defines the seam between the RWKV-7 math and the hardware
// it runs on: a Backend that owns memory and runs a small set of coarse,
// eager operations on Tensors.
//
// Every op writes into a destination the caller allocated, runs in issue
// order, and never panics across the package boundary. Ops do not return
// errors one by one: a backend records the first failure and reports it from
// Sync (and from every later Sync), the way bufio.Writer reports a failed
// write at Flush. This keeps model code readable and lets an asynchronous
// device (CUDA) queue work without a round trip per op.
//
// Layout is fixed: a Tensor is a row-major matrix [Rows, Cols]. Activations
// are always F32. Weights may be F32, F16 or BF16 and stay in that dtype in
// backend memory; only MatMul, Linear and Embed read them.
package kernels

import (
	"fmt"

	"github.com/goose-rwkv/goose/internal/half"
)

// DType is the element type of a Tensor.
type DType uint8

// The element types a checkpoint may hold.
const (
	F32 DType = iota
	F16
	BF16
	I32 // token ids
	// I8 is an int8 weight matrix with one float32 scale per output
	// channel (a Linear weight's row): see QuantizeI8 for its layout.
	I8
)

// Size returns the size in bytes of one element (for I8, without the
// scales: see I8Bytes).
func (d DType) Size() int {
	switch d {
	case F32, I32:
		return 4
	case F16, BF16:
		return 2
	case I8:
		return 1
	}
	return 0
}

// Decode converts the little-endian elements of dtype d in src to float32
// in dst; src must hold exactly len(dst) elements.
func (d DType) Decode(dst []float32, src []byte) error {
	if d == I32 || d == I8 || d.Size() == 0 {
		return fmt.Errorf("kernels: decode %v: not a float type", d)
	}
	if len(src) != len(dst)*d.Size() {
		return fmt.Errorf("kernels: decode %v: %d bytes for %d elements", d, len(src), len(dst))
	}
	switch d {
	case BF16:
		half.DecodeBF16(dst, src)
	case F16:
		half.DecodeF16(dst, src)
	default:
		half.DecodeF32(dst, src)
	}
	return nil
}

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case I32:
		return "i32"
	case I8:
		return "i8"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// Buffer is backend-owned memory behind a Tensor. Each backend defines its
// own concrete type and recognises only its own buffers.
type Buffer interface {
	// Bytes is the buffer's size in bytes.
	Bytes() int64
}

// Tensor is a small value handle to a row-major [Rows, Cols] matrix in a
// backend's memory. A vector of n elements is [1, n]. Copying a Tensor copies
// the handle, not the data.
type Tensor struct {
	Buf        Buffer
	DType      DType
	Rows, Cols int
	// Offset is the index of element [0,0] within Buf, in elements.
	Offset int
}

// Valid reports whether t refers to memory.
func (t Tensor) Valid() bool { return t.Buf != nil }

// Len is the number of elements.
func (t Tensor) Len() int { return t.Rows * t.Cols }

// Row returns the view of row i as a [1, Cols] tensor.
func (t Tensor) Row(i int) Tensor { return t.Slice(i, i+1) }

// Slice returns the view of rows [i, j).
func (t Tensor) Slice(i, j int) Tensor {
	if i < 0 || j > t.Rows || i > j {
		panic(fmt.Sprintf("kernels: rows [%d,%d) out of range [0,%d)", i, j, t.Rows))
	}
	return Tensor{Buf: t.Buf, DType: t.DType, Rows: j - i, Cols: t.Cols, Offset: t.Offset + i*t.Cols}
}

// Reshape returns the same elements viewed as [rows, cols].
func (t Tensor) Reshape(rows, cols int) Tensor {
	if rows*cols != t.Rows*t.Cols {
		panic(fmt.Sprintf("kernels: reshape [%d,%d] to [%d,%d]", t.Rows, t.Cols, rows, cols))
	}
	t.Rows, t.Cols = rows, cols
	return t
}

func (t Tensor) String() string {
	return fmt.Sprintf("%s[%d,%d]", t.DType, t.Rows, t.Cols)
}

// Activation selects the function Act applies.
type Activation uint8

// Element-wise functions.
const (
	Tanh Activation = iota
	Sigmoid
	ReLUSquared // max(x,0)²
)

// DeviceInfo describes where a backend computes.
type DeviceInfo struct {
	Name        string // "CPU (16 threads)", "NVIDIA H100 80GB HBM3"
	TotalMemory int64  // bytes; 0 when unknown
	FreeMemory  int64  // bytes; 0 when unknown
	Compute     string // e.g. "sm_90"; empty on CPU
	Driver      string // driver version; empty on CPU
}

// Prep7 holds the operands of Backend.Prep7, the element-wise preparation of
// one RWKV-7 time-mix step's WKV inputs. All activation tensors are F32
// [T, C]; parameter vectors are F32 [1, C].
type Prep7 struct {
	// K holds k on entry and k̃ = k·(1+(α−1)·k_a) on return.
	K Tensor
	// V holds v on entry. When ZV is valid (layers after the first), on
	// return V = v + (VFirst − v)·σ(V0 + ZV). When ZV is not valid (layer 0),
	// V is unchanged and copied into VFirst.
	V, VFirst, ZV Tensor
	// W holds the decay LoRA output on entry and the decay
	// exp(−e^{−1/2}·σ(W0 + W)) on return.
	W Tensor
	// A holds the in-context-rate LoRA output on entry and a = −κ̂ on return.
	A Tensor
	// B receives b = κ̂ ⊙ α.
	B Tensor
	// Parameters.
	W0, A0, V0, KK, KA Tensor
	// HeadSize is the width of a head (64 in every official model).
	HeadSize int
}

// Out7 holds the operands of Backend.Out7: per head,
// dst = (GroupNorm(y) + (Σ r·k̃·r_k)·v) ⊙ g.
type Out7 struct {
	Dst, Y, R, K, V, G Tensor // F32 [T, C]
	RK, LnW, LnB       Tensor // F32 [1, C]
	HeadSize           int
	Eps                float32
}

// Ops are the operations a backend runs. Shapes are [rows, cols]; T is the
// number of tokens (rows) of an activation.
type Ops interface {
	// Embed sets dst[t] = table[ids[t]] converted to F32. table is [V, C];
	// ids is I32 [1, T]. Ids out of range give a zero row (and no error):
	// callers validate ids before uploading them.
	Embed(dst, table, ids Tensor)
	// Linear sets dst = x·wᵀ: x [T,K] F32, w [N,K] any dtype (a PyTorch
	// nn.Linear weight; I8 weights too, which only Linear reads), dst
	// [T,N] F32.
	Linear(dst, x, w Tensor)
	// MatMul sets dst = x·w: x [T,K] F32, w [K,N] any dtype, dst [T,N] F32.
	MatMul(dst, x, w Tensor)
	// LayerNorm normalises each row of x (biased variance) and applies w, b
	// ([1, C]); when both are invalid (zero Tensors) it applies no affine.
	LayerNorm(dst, x, w, b Tensor, eps float32)
	// ShiftMix forms the token-shifted mixes of x: with prev(x)[0] = state
	// and prev(x)[t] = x[t−1], dst[i] = x + (prev(x) − x)·mix[i]. It then
	// stores x's last row in state. state is [1, C].
	ShiftMix(dst []Tensor, x, state Tensor, mix []Tensor)
	// Act applies an element-wise function: dst = f(x).
	Act(dst, x Tensor, f Activation)
	// Add sets dst = a + b element-wise; b may be [1, C] and then broadcasts
	// over rows.
	Add(dst, a, b Tensor)
	// Mul sets dst = a ⊙ b element-wise.
	Mul(dst, a, b Tensor)
	// Copy copies src into dst (same dtype and element count).
	Copy(dst, src Tensor)
	// Prep7 computes the WKV inputs; see Prep7.
	Prep7(p Prep7)
	// WKV7 runs the RWKV-7 recurrence over the T rows in order. s is the
	// F32 state [H·64, 64] laid out [head][value row i][key column j] and is
	// updated in place; y [T, C] receives S_t·r_t per head.
	//   S ← S·diag(w) + (S·a)·bᵀ + v·kᵀ ;  y = S·r
	// s may also hold n such states one after another ([n·H·64, 64]): the
	// rows then form n sequences of T/n rows (n must divide T), sequence i
	// running from state i, all of them independent (batched windows, the
	// two directions of a bidirectional WKV).
	WKV7(y, s, r, w, k, v, a, b Tensor)
	// Out7 computes the time-mix output before its projection; see Out7.
	Out7(o Out7)
	// VisionOps are the image towers' ops (vision.go).
	VisionOps

	// The ops below serve models whose token shift and recurrence are not
	// the language model's (A-RWKV: a 2-D shift over a patch grid and a
	// bidirectional WKV).

	// DepthwiseConv3 sets dst to the 3×3 depthwise convolution (zero
	// padding 1, stride 1, no bias) of x viewed as images of h×w pixels
	// with C channels: x and dst are F32 [n·h·w, C], rows in the order
	// (image, pixel row, pixel column); k is F32 [C, 9], channel c's
	// kernel row-major in row c. dst must not overlap x.
	DepthwiseConv3(dst, x, k Tensor, h, w int)
	// Lerp sets dst[i] = x + d ⊙ mix[i] for each i; x, d and dst[i] are
	// [T, C], mix[i] is [1, C] broadcast over rows. (ShiftMix is Lerp with
	// d = prev(x) − x.)
	Lerp(dst []Tensor, x, d Tensor, mix []Tensor)
	// FlipRows sets dst to x with the order of the rows reversed within
	// each group of n consecutive rows (n must divide x.Rows). dst must
	// not overlap x.
	FlipRows(dst, x Tensor, n int)
	// GateMix sets dst = g·a + (1−g)·b per row and head: a, b and dst are
	// [T, C], g is [T, H] and head h covers channels [h·C/H, (h+1)·C/H).
	GateMix(dst, a, b, g Tensor)
	// MeanRows sets row i of dst [m, C] to the mean of rows
	// [i·n, (i+1)·n) of x [m·n, C].
	MeanRows(dst, x Tensor)
}

// Backend owns device memory and runs Ops on it.
type Backend interface {
	Ops
	// Name is the backend's short name: "cpu", "cuda". It is for people
	// (reports, logs); code chooses by Capabilities and by the optional
	// interfaces (Grapher, StepGrapher, Fused, Prober), never by name.
	Name() string
	// Capabilities declares how the backend prefers to be driven.
	Capabilities() Capabilities
	// Device describes the hardware.
	Device() DeviceInfo
	// Alloc returns a zeroed tensor.
	Alloc(dtype DType, rows, cols int) (Tensor, error)
	// Weight returns a read-only tensor holding data, little-endian
	// elements of dtype (for I8, the layout of QuantizeI8: the int8 values,
	// then one float32 scale per row). A backend may keep a reference to data instead of
	// copying it (the CPU backend does, so a memory-mapped checkpoint is
	// never copied): the caller must keep data unchanged while the tensor
	// lives.
	Weight(dtype DType, rows, cols int, data []byte) (Tensor, error)
	// Upload copies little-endian bytes into t.
	Upload(t Tensor, src []byte) error
	// Download copies t into dst as little-endian bytes; t must be F32 or
	// I32 and dst must hold exactly t.Len()*4 bytes. It waits for queued
	// work.
	Download(dst []byte, t Tensor) error
	// Free releases the memory of a tensor from Alloc or Weight.
	Free(t Tensor)
	// Sync waits for queued work and returns the first error any op hit.
	Sync() error
	// Close releases everything the backend holds.
	Close() error
}

// Capabilities are what a backend declares about itself so that model code
// can choose how to drive it without knowing which backend it is. A new
// backend fills in what it supports; the zero value describes a plain eager
// backend (no graphs) that runs prompts in
// the model's default chunks.
//
// What a backend can do beyond Ops is also declared by the optional
// interfaces it implements: Grapher (record and replay a decode step),
// StepGrapher (a recorded step that takes its input and returns its output
// in one call), Fused (fused one-token ops), RowShift (the token shift of
// many rows in one op), Greedy (each row's largest logit picked where the
// logits are), Drawer (each row's token drawn there by the sampler's
// rules), Prober (its own ceilings), Queuer (independent queues of ops
// that run side by side). A model
// drives a backend without one of them the plain way (ops in issue
// order), so every backend runs every model.
type Capabilities struct {
	// PrefillChunk is the number of tokens per sequence-mode call at which
	// the backend's products reach their rate (larger chunks cost memory
	// and gain little). 0 means the model's default.
	PrefillChunk int
	// InterruptChunk, when positive, is the most prompt tokens a caller
	// should feed per call when it wants a cancellation to take effect
	// quickly (a slow backend, where a full chunk can take seconds).
	InterruptChunk int
	// Quant lists the weight encodings beyond F32, F16 and BF16 that
	// Weight accepts (and Linear reads): I8 for int8 with per-output-
	// channel scales. Empty when none.
	Quant []DType
}

// Grapher is implemented by backends that can record a fixed sequence of
// ops once and replay it with less overhead (CUDA graphs). The recorded ops
// keep their operands: replaying reads whatever those tensors hold then, so a
// caller changes inputs with Upload before Launch.
type Grapher interface {
	// Capture runs fn, recording the ops fn issues on rec instead of
	// running them. The capture is exclusive: while fn runs, ops that
	// other goroutines issue on the backend wait until it ends, so they
	// are neither recorded into the graph nor run in between. rec is
	// valid only inside fn and only on fn's goroutine; fn must issue its
	// ops on rec (an op on the backend itself from inside fn would wait
	// for the capture to end, forever). Only ops may be called on rec:
	// its Alloc, Weight, Upload, Download, Free and Sync return errors.
	Capture(fn func(rec Backend)) (Graph, error)
}

// StepGrapher is implemented by backends whose graphs can also carry a
// step's input and output through host staging (a decode step is then one
// call with one wait).
type StepGrapher interface {
	// CaptureIO is Capture for a graph replayed with a new input and a
	// result to read back each time; the graph it returns is a StepGraph.
	// A zero Tensor for in or out means none.
	CaptureIO(fn func(rec Backend), in, out Tensor) (Graph, error)
}

// StepGraph is a Graph from StepGrapher.CaptureIO.
type StepGraph interface {
	Graph
	// Step copies in into the input tensor, replays the graph, copies the
	// output tensor into out (nil: no copy) and waits for all of it. len(in)
	// must be the input's size in bytes and a non-nil out the output's.
	Step(in, out []byte) error
}

// Graph is a recorded sequence of ops.
type Graph interface {
	// Launch queues the recorded ops.
	Launch() error
	// Free releases the graph.
	Free()
}

// CopyLister is implemented by backends that copy a list of tensors in
// one call, where each call has a cost of its own (the CUDA backend takes
// its lock and switches context per call): a batch's Join and Leave copy
// three tensors a layer. Use CopyList, which falls back to Copy.
type CopyLister interface {
	// CopyList copies src[i] into dst[i] for each i, in order (len(dst)
	// must equal len(src); each pair as Copy requires).
	CopyList(dst, src []Tensor)
}

// CopyList copies src[i] into dst[i] in order, in one call on a
// CopyLister and with Copy otherwise.
func CopyList(be Ops, dst, src []Tensor) {
	if cl, ok := be.(CopyLister); ok {
		cl.CopyList(dst, src)
		return
	}
	for i := range min(len(dst), len(src)) {
		be.Copy(dst[i], src[i])
	}
}

// Greedy is implemented by backends that pick each row's token on the
// device (greedy decoding), so that only the token ids come back instead
// of the logits.
type Greedy interface {
	// Argmax sets dst[t] (I32 [1, T]) to the index of the largest element
	// of row t of x (F32 [T, V]): the lowest index among ties, NaN
	// ignored, −1 for a row of NaN only.
	Argmax(dst, x Tensor)
	// ArgmaxChecked sets dst[2t] (dst I32 with 2T elements) to Argmax's
	// index for row t and dst[2t+1] to 1 when the row holds a NaN or an
	// infinity, or an element other than that index within margin
	// (≥ 0) of the largest, else 0. A 0 says the index is the row's
	// greedy token by any rule that ranks by value (a sampler's
	// probabilities rounded from the logits included), so the row itself
	// need not leave the device; a 1 says the caller must look at it.
	ArgmaxChecked(dst, x Tensor, margin float32)
}

// Queuer is implemented by backends that can run independent sequences of
// ops side by side on one device (CUDA streams): a model whose parts do
// not depend on each other (the three image towers) issues each part on
// its own queue and joins them with Order. On a backend without it the
// parts simply run one after another.
type Queuer interface {
	// NewQueue returns a backend on the same device and memory whose ops
	// run in their own queue: in issue order among themselves, side by
	// side with the ops of every other queue (the parent's included).
	// Tensors of the parent and of all its queues may be used on any of
	// them; the order between queues is the caller's, through Order
	// (Alloc's zeroing runs on the allocating queue). The queue's Sync
	// waits for its own ops and reports the device's first error; Free,
	// on any of them, waits for all of them; the queue's Close releases
	// the queue only, and must come before the parent's. A queue may be
	// used by one goroutine while others use the parent or other queues.
	NewQueue() (Backend, error)
	// Order makes the ops issued on after from now on wait until the ops
	// issued on before until now have finished; the host does not wait.
	// before and after are this backend or its queues.
	Order(before, after Backend) error
}

// Prober is implemented by backends that can measure their own ceilings,
// the floors benchmarks compare against.
type Prober interface {
	// CopyBandwidth copies a buffer of n bytes within the backend's memory
	// and returns bytes copied per second (bytes read; the same number are
	// written), the best of several runs.
	CopyBandwidth(n int64) (float64, error)
	// MatMulRate times Linear with a [t,k] activation and an [n,k] weight
	// of dtype dt and returns floating-point operations per second (2·t·n·k
	// per product), the best of several runs.
	MatMulRate(t, k, n int, dt DType) (float64, error)
}

// UnavailableError says why a backend cannot run on this machine: the
// reason is meant for the user ("no libcuda.so.1", "compute capability 5.2
// unsupported").
type UnavailableError struct {
	Backend string
	Reason  string
}

func (e *UnavailableError) Error() string {
	return "kernels: " + e.Backend + " unavailable: " + e.Reason
}

// ShapeError reports operands of an op that do not fit together.
type ShapeError struct {
	Op     string
	Detail string
}

func (e *ShapeError) Error() string { return "kernels: " + e.Op + ": " + e.Detail }
