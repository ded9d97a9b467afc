package core

import (
	"context"
	"fmt"

	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/memfault"
)

// ErrNotFinite reports weights or a state holding NaN or ±Inf: a corrupt
// file. Every error that wraps it names the tensor (or the state part).
var ErrNotFinite = weights.ErrNotFinite

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
	defer memfault.CatchFile(m.path, &err)()
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
		if err := weights.CheckFinite(name, info.DType, data, cols, 0); err != nil {
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
