// Package nn holds what the vision towers share: a loader that places a
// tower's tensors on a compute backend (checking every shape, naming every
// missing or misshapen tensor), the Linear layer, and the bounds and error
// type of their configurations' validation.
package nn

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// Dense is one Linear layer on a backend: its weight [out, in] in the
// checkpoint's dtype and its bias, F32 [1, out] (invalid for none). The
// product runs as kernels.Ops.Linear; the bias is added by the op that
// follows (Residual, BiasAct or Add), so that no pass is spent on it alone.
type Dense struct {
	W, B kernels.Tensor
}

// In is the width of an input row.
func (d Dense) In() int { return d.W.Cols }

// Out is the width of an output row.
func (d Dense) Out() int { return d.W.Rows }

// Loader reads tensors named Prefix+name from Src and places them on Be.
// It keeps the first error (later calls do nothing and return zero
// values) and every tensor it placed, which Free releases.
type Loader struct {
	Src    core.Source
	Prefix string
	Be     kernels.Backend

	err   error
	owned []kernels.Tensor
}

// Err returns the first error.
func (l *Loader) Err() error { return l.err }

// Fail records err unless an error is already recorded.
func (l *Loader) Fail(err error) {
	if l.err == nil {
		l.err = err
	}
}

// Free releases every tensor the loader placed.
func (l *Loader) Free() {
	for _, t := range l.owned {
		l.Be.Free(t)
	}
	l.owned = nil
}

// Has reports whether the tensor Prefix+name exists.
func (l *Loader) Has(name string) bool {
	_, ok := l.Src.Lookup(l.Prefix + name)
	return ok
}

// Shape returns the shape of Prefix+name, or nil when it is missing.
func (l *Loader) Shape(name string) []int {
	info, ok := l.Src.Lookup(l.Prefix + name)
	if !ok {
		return nil
	}
	return info.Shape
}

// lookup finds Prefix+name and checks its shape against want, where a
// negative dimension accepts any positive size.
func (l *Loader) lookup(name string, want []int) (checkpoint.Info, bool) {
	if l.err != nil {
		return checkpoint.Info{}, false
	}
	full := l.Prefix + name
	info, ok := l.Src.Lookup(full)
	if !ok {
		l.err = fmt.Errorf("missing tensor %s", full)
		return info, false
	}
	match := len(info.Shape) == len(want)
	for i := 0; match && i < len(want); i++ {
		match = info.Shape[i] == want[i] || want[i] < 0 && info.Shape[i] > 0
	}
	if !match {
		l.err = fmt.Errorf("tensor %s has shape %v, want %v", full, info.Shape, want)
		return info, false
	}
	return info, true
}

// Floats returns Prefix+name, which must have shape want, decoded to
// float32 on the host, and its shape.
func (l *Loader) Floats(name string, want ...int) ([]float32, []int) {
	info, ok := l.lookup(name, want)
	if !ok {
		return nil, nil
	}
	full := l.Prefix + name
	b, err := l.Src.Bytes(full)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nil, nil
	}
	f := make([]float32, info.Len())
	if err := info.DType.Decode(f, b); err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return nil, nil
	}
	for i, v := range f {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			l.err = fmt.Errorf("tensor %s: element %d is %v", full, i, v)
			return nil, nil
		}
	}
	return f, info.Shape
}

// Matrix places Prefix+name, which must have shape want, on the backend
// in its checkpoint dtype, viewed as [rows, cols].
func (l *Loader) Matrix(name string, rows, cols int, want ...int) kernels.Tensor {
	info, ok := l.lookup(name, want)
	if !ok {
		return kernels.Tensor{}
	}
	full := l.Prefix + name
	if info.Len() != rows*cols {
		l.err = fmt.Errorf("tensor %s has shape %v, not %d×%d elements", full, info.Shape, rows, cols)
		return kernels.Tensor{}
	}
	b, err := l.Src.Bytes(full)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return kernels.Tensor{}
	}
	t, err := l.Be.Weight(info.DType, rows, cols, b)
	if err != nil {
		l.err = fmt.Errorf("tensor %s: %w", full, err)
		return kernels.Tensor{}
	}
	l.owned = append(l.owned, t)
	return t
}

// Vector places Prefix+name, which must have shape want, on the backend as
// F32, viewed as [len/cols, cols] with cols the last dimension of want
// (a [1, n] row for a vector).
func (l *Loader) Vector(name string, want ...int) kernels.Tensor {
	f, shape := l.Floats(name, want...)
	if f == nil {
		return kernels.Tensor{}
	}
	cols := shape[len(shape)-1]
	return l.Upload(len(f)/cols, cols, f)
}

// Dense reads the Linear layer Prefix+name: ".weight" of shape want viewed
// as [rows, cols] and ".bias" of rows values.
func (l *Loader) Dense(name string, rows, cols int, want ...int) Dense {
	return Dense{W: l.Matrix(name+".weight", rows, cols, want...), B: l.Vector(name+".bias", rows)}
}

// Upload places v on the backend as an F32 [rows, cols] tensor.
func (l *Loader) Upload(rows, cols int, v []float32) kernels.Tensor {
	t := l.Alloc(rows, cols)
	if l.err != nil {
		return kernels.Tensor{}
	}
	if err := l.Be.Upload(t, half.Bytes(v)); err != nil {
		l.err = fmt.Errorf("upload %s[%d,%d]: %w", l.Prefix, rows, cols, err)
		return kernels.Tensor{}
	}
	return t
}

// Alloc allocates an F32 [rows, cols] tensor the loader owns.
func (l *Loader) Alloc(rows, cols int) kernels.Tensor {
	if l.err != nil {
		return kernels.Tensor{}
	}
	t, err := l.Be.Alloc(kernels.F32, rows, cols)
	if err != nil {
		l.err = fmt.Errorf("allocate [%d,%d]: %w", rows, cols, err)
		return kernels.Tensor{}
	}
	l.owned = append(l.owned, t)
	return t
}

// Scratch allocates a tower's working tensors, one F32 [rows, cols] per
// pair, freeing them all if one fails.
func Scratch(be kernels.Backend, dims ...[2]int) ([]kernels.Tensor, error) {
	out := make([]kernels.Tensor, 0, len(dims))
	for _, d := range dims {
		t, err := be.Alloc(kernels.F32, d[0], d[1])
		if err != nil {
			for _, o := range out {
				be.Free(o)
			}
			return nil, fmt.Errorf("allocate working memory [%d,%d]: %w", d[0], d[1], err)
		}
		out = append(out, t)
	}
	return out, nil
}

// Download copies an F32 tensor to the host after the queued work.
func Download(be kernels.Backend, t kernels.Tensor) ([]float32, error) {
	out := make([]float32, t.Len())
	if err := be.Download(half.Bytes(out), t); err != nil {
		return nil, err
	}
	return out, be.Sync()
}

// ErrNotFinite reports a NaN or infinite input value.
var ErrNotFinite = errors.New("value is not finite")

// CheckFinite returns an error naming the first NaN or infinite value of v.
func CheckFinite(v []float32) error {
	if i := slices.IndexFunc(v, func(x float32) bool { return math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) }); i >= 0 {
		return fmt.Errorf("element %d is %v: %w", i, v[i], ErrNotFinite)
	}
	return nil
}

// Bounds on tower sizes no real tower comes near, so that a hostile or
// mistyped configuration fails with an error instead of exhausting memory.
const (
	MaxPatch    = 64   // patch side in pixels
	MaxSide     = 4096 // image side in pixels
	MaxTokens   = 1 << 16
	MaxWidth    = 1 << 14
	MaxHeadDim  = 1024
	MaxMerge    = 16
	MaxLNEps    = 0.1
	MaxRegister = 64
)

// FieldError reports a configuration field out of range or inconsistent
// with the others; Field is the field's JSON name.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErr returns a *FieldError for field with a formatted message.
func FieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
