// Package weights places a checkpoint's tensors on a compute backend with
// the shapes a model expects. Every model in Goose loads through a Loader:
// it looks each tensor up by name, checks its shape, and either keeps the
// matrix in its file dtype (Matrix) or converts a small tensor to float32
// (Vector, Floats). Failures do not stop the loading: the Loader collects
// every missing tensor, so that Err reports them all in one MissingError
// (or the first misshapen one as a ShapeError), naming each.
package weights

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
)

// Source provides a checkpoint's named tensors. *checkpoint.File
// implements it, and so do in-memory sources of random weights.
type Source interface {
	Tensors() []checkpoint.Info
	Lookup(name string) (checkpoint.Info, bool)
	Bytes(name string) ([]byte, error)
}

// MissingError lists tensors a checkpoint lacks.
type MissingError struct{ Names []string }

func (e *MissingError) Error() string { return "missing tensors " + ListNames(e.Names) }

// ShapeError reports a tensor whose shape does not fit the model.
type ShapeError struct {
	Name string
	Got  []int
	Want string
}

func (e *ShapeError) Error() string {
	return fmt.Sprintf("tensor %s has shape %v, want %s", e.Name, e.Got, e.Want)
}

// ListNames joins names for a message, eliding all but the first eight.
func ListNames(names []string) string {
	const show = 8
	if len(names) <= show {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}

// ShapeMatches compares a stored shape with the expected one, treating
// leading 1s as absent ([1,1,C] is a [C] vector). No dimension may be 0.
func ShapeMatches(got, want []int) bool {
	for len(got) > len(want) && got[0] == 1 {
		got = got[1:]
	}
	return slices.Equal(got, want) && !slices.Contains(want, 0)
}

// Loader places tensors from a Source on a backend.
type Loader struct {
	src Source
	be  kernels.Backend

	owned   []kernels.Tensor
	missing []string
	err     error // the first shape or read error
	params  int64
	bytes   int64

	// Placed, if set, is called after each tensor is placed.
	Placed func()
	// QuantizeLinear makes Linear place its weights as int8 with
	// per-output-channel scales (kernels.I8, kernels.QuantizeI8).
	QuantizeLinear bool
}

// NewLoader returns a Loader reading src onto be.
func NewLoader(src Source, be kernels.Backend) *Loader {
	return &Loader{src: src, be: be}
}

// Backend returns the backend tensors are placed on.
func (l *Loader) Backend() kernels.Backend { return l.be }

// Source returns the checkpoint tensors are read from.
func (l *Loader) Source() Source { return l.src }

// lookup finds name and checks its shape, recording a missing tensor or a
// shape error.
func (l *Loader) lookup(name string, shape []int) (checkpoint.Info, bool) {
	info, ok := l.src.Lookup(name)
	if !ok {
		l.missing = append(l.missing, name)
		return info, false
	}
	if l.err != nil {
		return info, false
	}
	if !ShapeMatches(info.Shape, shape) {
		l.err = &ShapeError{Name: name, Got: info.Shape, Want: fmt.Sprint(shape)}
		return info, false
	}
	return info, true
}

// read looks name up, checks its shape and reads its bytes, recording
// what went wrong when it returns false.
func (l *Loader) read(name string, shape []int) (checkpoint.Info, []byte, bool) {
	info, ok := l.lookup(name, shape)
	if !ok {
		return info, nil, false
	}
	data, err := l.src.Bytes(name)
	if err != nil {
		l.fail(name, err)
		return info, nil, false
	}
	return info, data, true
}

// fail records err, about tensor name, unless an error came first.
func (l *Loader) fail(name string, err error) {
	l.record(fmt.Errorf("tensor %s: %w", name, err))
}

// record keeps err (which names its tensor) unless an error came first.
func (l *Loader) record(err error) {
	if l.err == nil {
		l.err = err
	}
}

// Floats returns the named tensor as float32 after checking that its
// shape is shape (leading 1s aside). On failure it returns nil and Err
// reports why.
func (l *Loader) Floats(name string, shape ...int) []float32 {
	info, data, ok := l.read(name, shape)
	if !ok {
		return nil
	}
	f := make([]float32, info.Len())
	if err := info.DType.Decode(f, data); err != nil {
		l.fail(name, err)
		return nil
	}
	if err := CheckFinite(name, info.DType, data, 0, 0); err != nil {
		l.record(err)
		return nil
	}
	l.params += int64(info.Len())
	l.bytes += int64(info.Len()) * 4
	return f
}

// Vector places a small tensor of the given shape as F32 [1, n], n the
// product of shape (LayerNorm weights, mixes, biases).
func (l *Loader) Vector(name string, shape ...int) kernels.Tensor {
	f := l.Floats(name, shape...)
	if f == nil {
		return kernels.Tensor{}
	}
	return l.Upload(name, 1, len(f), f)
}

// Upload places data (computed from a checkpoint's tensors) as F32
// [rows, cols]; name is for errors.
func (l *Loader) Upload(name string, rows, cols int, data []float32) kernels.Tensor {
	if l.err != nil {
		return kernels.Tensor{}
	}
	t, err := l.be.Alloc(kernels.F32, rows, cols)
	if err != nil {
		l.fail(name, err)
		return kernels.Tensor{}
	}
	l.owned = append(l.owned, t)
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	if err := l.be.Upload(t, buf); err != nil {
		l.fail(name, err)
		return kernels.Tensor{}
	}
	l.placed()
	return t
}

// Matrix places a [rows, cols] tensor in its file dtype (the backend may
// keep a reference to the file's memory instead of copying it).
func (l *Loader) Matrix(name string, rows, cols int) kernels.Tensor {
	return l.MatrixAs(name, []int{rows, cols}, rows, cols)
}

// MatrixAs places a tensor stored with shape shape (a convolution kernel
// [C, 1, P, P], say) as the matrix [rows, cols] holding the same elements
// in the same order.
func (l *Loader) MatrixAs(name string, shape []int, rows, cols int) kernels.Tensor {
	info, data, ok := l.read(name, shape)
	if !ok {
		return kernels.Tensor{}
	}
	if err := CheckSample(name, info.DType, data, rows, cols); err != nil {
		l.record(err)
		return kernels.Tensor{}
	}
	return l.weight(name, info.DType, rows, cols, data, info.Len())
}

// Linear places a Linear weight [out, in] (the products' x·Wᵀ operand):
// as Matrix, or quantized to int8 with one scale per output row when
// QuantizeLinear is set.
func (l *Loader) Linear(name string, rows, cols int) kernels.Tensor {
	if !l.QuantizeLinear {
		return l.Matrix(name, rows, cols)
	}
	info, data, ok := l.read(name, []int{rows, cols})
	if !ok {
		return kernels.Tensor{}
	}
	// QuantizeI8 checks every element for NaN/Inf, naming the row.
	q, err := kernels.QuantizeI8(data, info.DType, rows, cols)
	if err != nil {
		l.fail(name, err)
		return kernels.Tensor{}
	}
	return l.weight(name, kernels.I8, rows, cols, q, info.Len())
}

// weight places data, params parameters stored as [rows, cols] of dtype
// dt, as a backend weight the loader owns.
func (l *Loader) weight(name string, dt kernels.DType, rows, cols int, data []byte, params int) kernels.Tensor {
	t, err := l.be.Weight(dt, rows, cols, data)
	if err != nil {
		l.fail(name, err)
		return kernels.Tensor{}
	}
	l.owned = append(l.owned, t)
	l.params += int64(params)
	l.bytes += int64(len(data))
	l.placed()
	return t
}

func (l *Loader) placed() {
	if l.Placed != nil {
		l.Placed()
	}
}

// Err reports what went wrong: a MissingError naming every tensor that was
// asked for and is absent, else the first shape or read error, else nil.
func (l *Loader) Err() error {
	if len(l.missing) > 0 {
		names := slices.Clone(l.missing)
		slices.Sort(names)
		return &MissingError{Names: slices.Compact(names)}
	}
	return l.err
}

// Params is the number of parameters placed; Bytes their size in backend
// memory.
func (l *Loader) Params() int64 { return l.params }

// Bytes is the size of the placed tensors in backend memory.
func (l *Loader) Bytes() int64 { return l.bytes }

// Owned returns the tensors placed so far, for the model to free.
func (l *Loader) Owned() []kernels.Tensor { return l.owned }

// Free frees every tensor placed so far (after a failed load).
func (l *Loader) Free() {
	for _, t := range l.owned {
		l.be.Free(t)
	}
	l.owned = nil
}
