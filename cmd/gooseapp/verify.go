package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// verifyFile checks a checkpoint's language model whole (core.Model.Verify:
// .pth checksums and finite weights), printing progress to stderr. The
// CPU backend reads the weights in place, so this loads nothing extra.
func verifyFile(f *checkpoint.File, stderr io.Writer) error {
	be, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		return err
	}
	defer be.Close()
	m, err := core.Load(core.LanguageModel(f), core.LoadOptions{Backend: be})
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path(), err)
	}
	defer m.Close()
	last := time.Now()
	err = m.Verify(context.Background(), func(frac float64) {
		if time.Since(last) > time.Second {
			last = time.Now()
			fmt.Fprintf(stderr, "verifying %s: %.0f%%\n", f.Path(), 100*frac)
		}
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	return nil
}

// verifyInBackground runs m.Verify on its own goroutine and reports a
// damaged file on stderr (the serve command; the app shows a dialog). It
// stops when ctx ends or the model is closed.
func verifyInBackground(ctx context.Context, m *core.Model, stderr io.Writer, prefix string) {
	go func() {
		err := m.Verify(ctx, nil)
		if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, core.ErrClosed) {
			fmt.Fprintf(stderr, "%s: WARNING: the model file is damaged, its replies cannot be trusted: %v\n", prefix, err)
		}
	}()
}
