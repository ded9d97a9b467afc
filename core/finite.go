package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
)

// ErrNotFinite reports weights or a state holding NaN or ±Inf: a corrupt
// file. Every error that wraps it names the tensor (or the state part).
var ErrNotFinite = errors.New("not a finite number")

// firstNonFinite returns the index of the first NaN or ±Inf element of b,
// little-endian elements of type dt, or -1 when there is none. It tests
// exponent bits, four 16-bit (or two 32-bit) elements per 64-bit word.
func firstNonFinite(dt kernels.DType, b []byte) int {
	var mask, ones uint64
	var size int
	switch dt {
	case kernels.BF16:
		mask, ones, size = 0x7f807f807f807f80, 0x0001000100010001, 2
	case kernels.F16:
		mask, ones, size = 0x7c007c007c007c00, 0x0001000100010001, 2
	case kernels.F32:
		mask, ones, size = 0x7f8000007f800000, 0x0000000100000001, 4
	default:
		return -1
	}
	high := ones << (8*size - 1) // the top bit of each lane
	n := len(b) &^ 7
	for i := 0; i < n; i += 8 {
		// A lane is all exponent bits (Inf or NaN) iff (v&mask)^mask is
		// zero there; the classic has-a-zero-lane test sees that.
		x := binary.LittleEndian.Uint64(b[i:])&mask ^ mask
		if (x-ones)&^x&high != 0 {
			return i/size + lanes(b[i:i+8], dt)
		}
	}
	if i := lanes(b[n:], dt); i >= 0 {
		return n/size + i
	}
	return -1
}

// lanes is firstNonFinite element by element, for a few bytes.
func lanes(b []byte, dt kernels.DType) int {
	switch dt {
	case kernels.BF16, kernels.F16:
		m := uint16(0x7f80)
		if dt == kernels.F16 {
			m = 0x7c00
		}
		for i := 0; i+2 <= len(b); i += 2 {
			if binary.LittleEndian.Uint16(b[i:])&m == m {
				return i / 2
			}
		}
	case kernels.F32:
		for i := 0; i+4 <= len(b); i += 4 {
			if binary.LittleEndian.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	}
	return -1
}

// describe names the non-finite element i of b (NaN, +Inf or -Inf).
func describe(dt kernels.DType, b []byte, i int) string {
	v := make([]float32, 1)
	if err := dt.Decode(v, b[i*dt.Size():(i+1)*dt.Size()]); err != nil {
		return "not finite"
	}
	switch {
	case math.IsNaN(float64(v[0])):
		return "NaN"
	case v[0] > 0:
		return "+Inf"
	}
	return "-Inf"
}

// checkFinite returns an error wrapping ErrNotFinite, naming the tensor,
// the element and its row (for a matrix of width cols), when b holds NaN
// or ±Inf.
func checkFinite(name string, dt kernels.DType, b []byte, cols, row0 int) error {
	i := firstNonFinite(dt, b)
	if i < 0 {
		return nil
	}
	where := fmt.Sprintf("element %d", i)
	if cols > 0 {
		where = fmt.Sprintf("row %d, column %d", row0+i/cols, i%cols)
	}
	return fmt.Errorf("tensor %s: %s is %s: %w (the weights are corrupt)", name, where, describe(dt, b, i), ErrNotFinite)
}

// sampleRows is how many rows of each matrix Load checks for NaN and Inf
// (the first, the last and evenly spaced ones between); Verify checks all.
const sampleRows = 8

// checkSample checks sampleRows rows of a rows×cols matrix.
func checkSample(name string, dt kernels.DType, data []byte, rows, cols int) error {
	rowBytes := cols * dt.Size()
	n := min(sampleRows, rows)
	for k := range n {
		r := 0
		if n > 1 {
			r = k * (rows - 1) / (n - 1)
		}
		if err := checkFinite(name, dt, data[r*rowBytes:(r+1)*rowBytes], cols, r); err != nil {
			return err
		}
	}
	return nil
}

// Verify checks the whole of the model's weights file: its checksums (for
// a .pth file, every storage's CRC-32; see checkpoint.File.Verify) and that
// no weight is NaN or ±Inf (Load checks every vector but only a sample of
// each matrix's rows). It reads every byte of the weights once — seconds
// for a multi-gigabyte model — so the app and the server run it in the
// background after loading, and `gooseapp info --verify` on request.
// progress, if set, receives the fraction done. Verify may run while the
// model generates; Close waits for it to stop (cancelling it).
func (m *Model) Verify(ctx context.Context, progress func(frac float64)) (err error) {
	ctx, done, err := m.startVerify(ctx)
	if err != nil {
		return err
	}
	defer done()
	defer nameFault(m.path, &err)
	defer memfault.Catch(&err)()
	report := func(f float64) {
		if progress != nil {
			progress(f)
		}
	}
	// Checksums first (half the work for a .pth file), then finiteness.
	if v, ok := m.src.(interface {
		Verify(context.Context, func(done, total int64)) error
	}); ok {
		if err := v.Verify(ctx, func(d, t int64) { report(0.5 * float64(d) / float64(max(t, 1))) }); err != nil {
			return err
		}
	}
	names := weightNames(m.cfg)
	for i, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		info, _ := m.src.Lookup(name)
		data, err := m.src.Bytes(name)
		if err != nil {
			return fmt.Errorf("tensor %s: %w", name, err)
		}
		cols := 0
		if len(info.Shape) == 2 {
			cols = info.Shape[1]
		}
		if err := checkFinite(name, info.DType, data, cols, 0); err != nil {
			if m.path != "" {
				return fmt.Errorf("%s: %w", m.path, err)
			}
			return err
		}
		report(0.5 + 0.5*float64(i+1)/float64(len(names)))
	}
	return nil
}

// startVerify registers a running Verify so that Close can cancel it and
// wait for it.
func (m *Model) startVerify(ctx context.Context) (context.Context, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	m.verifying.Add(1)
	m.stopVerify = append(m.stopVerify, cancel)
	return ctx, func() { cancel(); m.verifying.Done() }, nil
}
