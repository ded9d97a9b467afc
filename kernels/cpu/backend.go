// Package cpu is Goose's pure-Go compute backend: multi-threaded, with
// weights kept in their checkpoint dtype (bf16, f16 or f32) and converted on
// the fly inside the matrix kernels.
package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
)

// Options configure a CPU backend.
type Options struct {
	// Threads is the number of worker goroutines; 0 means all cores.
	Threads int
}

// Backend runs kernels.Ops on the CPU. Its methods may be called from
// several goroutines at once as long as they touch different tensors.
type Backend struct {
	pool    *pool
	threads int

	mu  sync.Mutex
	err error // first failure, reported by Sync
}

// buffer is CPU memory: F32 activations, I32 ids, or raw little-endian
// weight bytes (possibly a slice of a memory-mapped file).
type buffer struct {
	f32 []float32
	i32 []int32
	raw []byte
	// scale holds an I8 weight's per-row scales (raw holds the int8
	// values and the scales as given).
	scale []float32
	// sums holds an I8 weight's row sums for the integer kernels, made
	// on first use.
	sums rowSums
}

func (b *buffer) Bytes() int64 {
	return int64(len(b.f32))*4 + int64(len(b.i32))*4 + int64(len(b.raw)) + int64(len(b.scale))*4
}

// New returns a CPU backend.
func New(opts Options) (*Backend, error) {
	t := opts.Threads
	if t <= 0 {
		t = runtime.NumCPU()
	}
	return &Backend{pool: newPool(t), threads: t}, nil
}

// Name returns "cpu".
func (b *Backend) Name() string { return "cpu" }

// Capabilities: prompts in chunks of 256 tokens (the GEMMs' blocking is
// saturated well before that), fed 64 at a time by callers that want a
// cancellation to take effect within a fraction of a second.
func (b *Backend) Capabilities() kernels.Capabilities {
	return kernels.Capabilities{PrefillChunk: 256, InterruptChunk: 64, Quant: []kernels.DType{kernels.I8}}
}

// Threads is the number of worker goroutines.
func (b *Backend) Threads() int { return b.threads }

// Device describes the CPU.
func (b *Backend) Device() kernels.DeviceInfo {
	return kernels.DeviceInfo{Name: fmt.Sprintf("CPU (%d threads, %s)", b.threads, runtime.GOARCH)}
}

// Alloc returns a zeroed tensor.
func (b *Backend) Alloc(dt kernels.DType, rows, cols int) (kernels.Tensor, error) {
	if rows < 0 || cols < 0 {
		return kernels.Tensor{}, fmt.Errorf("cpu: alloc [%d,%d]: negative size", rows, cols)
	}
	n := rows * cols
	buf := &buffer{}
	switch dt {
	case kernels.F32:
		buf.f32 = make([]float32, n)
	case kernels.I32:
		buf.i32 = make([]int32, n)
	case kernels.F16, kernels.BF16:
		buf.raw = make([]byte, 2*n)
	default:
		return kernels.Tensor{}, fmt.Errorf("cpu: alloc: unsupported dtype %v", dt)
	}
	return kernels.Tensor{Buf: buf, DType: dt, Rows: rows, Cols: cols}, nil
}

// Weight wraps data without copying it.
func (b *Backend) Weight(dt kernels.DType, rows, cols int, data []byte) (kernels.Tensor, error) {
	if dt.Size() == 0 || dt == kernels.I32 {
		return kernels.Tensor{}, fmt.Errorf("cpu: weight: unsupported dtype %v", dt)
	}
	want := rows * cols * dt.Size()
	if dt == kernels.I8 {
		want = kernels.I8Bytes(rows, cols)
	}
	if len(data) != want {
		return kernels.Tensor{}, fmt.Errorf("cpu: weight [%d,%d] %v: have %d bytes, want %d", rows, cols, dt, len(data), want)
	}
	buf := &buffer{raw: data}
	if dt == kernels.I8 {
		buf.raw = data[:rows*cols]
		buf.scale = make([]float32, rows)
		for i := range buf.scale {
			buf.scale[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[rows*cols+4*i:]))
		}
		if b.pool.ks.dotQ4 != nil && rows > 0 && cols > 0 && cols <= qMaxK {
			// Now rather than in the first product: one pass over
			// the weight while it is being loaded.
			buf.sums.get(b.pool, buf.raw, rows, cols)
		}
	}
	return kernels.Tensor{Buf: buf, DType: dt, Rows: rows, Cols: cols}, nil
}

// Upload copies little-endian bytes into t.
func (b *Backend) Upload(t kernels.Tensor, src []byte) error {
	buf, ok := t.Buf.(*buffer)
	if !ok {
		return fmt.Errorf("cpu: upload: tensor not from the cpu backend")
	}
	if want := t.Len() * t.DType.Size(); len(src) != want {
		return fmt.Errorf("cpu: upload %v: have %d bytes, want %d", t, len(src), want)
	}
	switch {
	case buf.f32 != nil:
		d := buf.f32[t.Offset : t.Offset+t.Len()]
		for i := range d {
			d[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case buf.i32 != nil:
		d := buf.i32[t.Offset : t.Offset+t.Len()]
		for i := range d {
			d[i] = int32(binary.LittleEndian.Uint32(src[4*i:]))
		}
	default:
		sz := t.DType.Size()
		copy(buf.raw[t.Offset*sz:], src)
	}
	return nil
}

// Download copies an F32 tensor out as little-endian bytes.
func (b *Backend) Download(dst []byte, t kernels.Tensor) error {
	if t.DType != kernels.F32 && t.DType != kernels.I32 {
		return fmt.Errorf("cpu: download %v: not f32 or i32", t)
	}
	if len(dst) != 4*t.Len() {
		return fmt.Errorf("cpu: download %v: have %d bytes, want %d", t, len(dst), 4*t.Len())
	}
	if t.DType == kernels.I32 {
		for i, v := range t.Buf.(*buffer).i32[t.Offset : t.Offset+t.Len()] {
			binary.LittleEndian.PutUint32(dst[4*i:], uint32(v))
		}
		return nil
	}
	s := b.f32(t)
	for i, v := range s {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
	return nil
}

// Free drops the backend's reference; the garbage collector reclaims it.
func (b *Backend) Free(kernels.Tensor) {}

// Sync returns the first error an op hit.
func (b *Backend) Sync() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// Close releases the worker pool.
func (b *Backend) Close() error {
	b.pool.Close()
	return nil
}

func (b *Backend) fail(op, format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = &kernels.ShapeError{Op: op, Detail: fmt.Sprintf(format, args...)}
	}
}

// f32 returns the elements of an F32 tensor.
func (b *Backend) f32(t kernels.Tensor) []float32 {
	buf := t.Buf.(*buffer)
	return buf.f32[t.Offset : t.Offset+t.Len() : t.Offset+t.Len()]
}

// weightBytes returns a matrix operand's raw bytes and dtype; F32 tensors
// from Alloc are viewed as bytes.
func weightBytes(t kernels.Tensor) ([]byte, kernels.DType) {
	buf := t.Buf.(*buffer)
	if buf.raw != nil {
		sz := t.DType.Size()
		return buf.raw[t.Offset*sz : (t.Offset+t.Len())*sz], t.DType
	}
	s := buf.f32[t.Offset : t.Offset+t.Len()]
	if len(s) == 0 {
		return nil, kernels.F32
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), 4*len(s)), kernels.F32
}

// CopyBandwidth measures memory copy bandwidth with all threads: bytes
// copied per second, best of five runs.
func (b *Backend) CopyBandwidth(n int64) (float64, error) {
	src := make([]byte, n)
	dst := make([]byte, n)
	for i := range src {
		src[i] = byte(i)
	}
	best := 0.0
	for range 5 {
		start := time.Now()
		b.pool.For(int(n>>16), 1, func(lo, hi int) {
			copy(dst[lo<<16:hi<<16], src[lo<<16:hi<<16])
		})
		if s := time.Since(start).Seconds(); s > 0 {
			best = max(best, float64(n&^(1<<16-1))/s)
		}
	}
	return best, nil
}

// MatMulRate times Linear on random operands.
func (b *Backend) MatMulRate(t, k, n int, dt kernels.DType) (float64, error) {
	w := make([]byte, n*k*dt.Size())
	for i := range w {
		w[i] = byte(i * 7)
	}
	if dt != kernels.F32 { // keep bf16/f16 values finite
		for i := 1; i < len(w); i += 2 {
			w[i] = 0x3c
		}
	} else {
		for i := 3; i < len(w); i += 4 {
			w[i] = 0x3c
		}
	}
	x := make([]float32, t*k)
	for i := range x {
		x[i] = float32(i%13) / 13
	}
	dst := make([]float32, t*n)
	best := 0.0
	for range 3 {
		start := time.Now()
		linear(b.pool, dst, x, t, k, w, dt, n)
		if s := time.Since(start).Seconds(); s > 0 {
			best = max(best, 2*float64(t)*float64(k)*float64(n)/s)
		}
	}
	return best, nil
}

var _ kernels.Prober = (*Backend)(nil)
