package cuda

import (
	"errors"
	"fmt"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// graph is a captured CUDA graph.
type graph struct {
	b       *Backend
	g, exec uintptr
	freed   bool
}

// Capture runs fn with the backend's stream in capture mode, so the ops fn
// issues are recorded instead of run, and returns them as a CUDA graph.
// While fn runs, only ops may be called: Alloc, Weight, Upload, Download,
// Free and Sync return an error. An op failing inside fn fails the capture
// (and, like any op failure, is reported by later Syncs).
func (b *Backend) Capture(fn func()) (kernels.Graph, error) {
	err := b.locked(func() error {
		if b.err != nil {
			return b.err
		}
		if b.capturing {
			return errors.New("cuda: capture: already capturing")
		}
		if err := b.drv.BeginCapture(b.stream, cu.CaptureRelaxed); err != nil {
			return fmt.Errorf("cuda: capture: %w", err)
		}
		b.capturing = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	ended := false
	defer func() {
		if !ended { // fn panicked: leave capture mode before unwinding
			b.endCapture()
		}
	}()
	fn()
	ended = true
	g, err := b.endCapture()
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (b *Backend) endCapture() (*graph, error) {
	var out *graph
	err := b.locked(func() error {
		b.capturing = false
		g, err := b.drv.EndCapture(b.stream)
		if err != nil {
			if b.err == nil {
				b.err = fmt.Errorf("cuda: capture: %w", err)
			}
			return b.err
		}
		if b.err != nil {
			b.drv.GraphDestroy(g)
			return fmt.Errorf("cuda: capture: %w", b.err)
		}
		exec, err := b.drv.GraphInstantiate(g)
		if err != nil {
			b.drv.GraphDestroy(g)
			return fmt.Errorf("cuda: capture: %w", err)
		}
		out = &graph{b: b, g: g, exec: exec}
		return nil
	})
	return out, err
}

// Launch queues the recorded ops on the backend's stream.
func (g *graph) Launch() error {
	return g.b.locked(func() error {
		if g.freed {
			return errors.New("cuda: launch of a freed graph")
		}
		if g.b.capturing {
			return errors.New("cuda: graph launch while capturing")
		}
		if g.b.err != nil {
			return g.b.err
		}
		if err := g.b.drv.GraphLaunch(g.exec, g.b.stream); err != nil {
			return fmt.Errorf("cuda: %w", err)
		}
		return nil
	})
}

// Free releases the graph.
func (g *graph) Free() {
	g.b.locked(func() error {
		if g.freed {
			return nil
		}
		g.freed = true
		g.b.drv.StreamSynchronize(g.b.stream)
		g.b.drv.GraphExecDestroy(g.exec)
		g.b.drv.GraphDestroy(g.g)
		return nil
	})
}
