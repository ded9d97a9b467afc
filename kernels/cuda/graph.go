package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda/internal/cu"
)

// graph is a captured CUDA graph. A graph from CaptureIO also knows its
// input and output tensors and owns page-locked staging for them.
type graph struct {
	b       *Backend
	g, exec uintptr
	freed   bool

	inPtr, outPtr uint64 // device addresses of the input and output (CaptureIO)
	in, out       []byte // page-locked staging; nil when absent
}

// Capture runs fn with the backend's stream in capture mode, so the ops fn
// issues on rec are recorded instead of run, and returns them as a CUDA
// graph. The capture holds the backend for its whole duration: ops other
// goroutines issue meanwhile wait until it ends, so they are neither
// recorded into this graph nor run in between (kernels.Grapher). On rec
// only ops may be called: Alloc, Weight, Upload, Download, Free and Sync
// return an error. An op failing inside fn fails the capture (and, like any
// op failure, is reported by later Syncs).
func (b *Backend) Capture(fn func(rec kernels.Backend)) (kernels.Graph, error) {
	g, err := b.capture(fn)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// CaptureIO is Capture for a graph that is replayed with a new input and a
// result to read back each time, as a decode step is
// (kernels.StepGrapher). The returned graph also has the method
//
//	Step(in, out []byte) error
//
// which, in one call and with one wait, copies in to the input tensor
// (through page-locked staging, so the copy is asynchronous), launches the
// graph, copies the output tensor into out and waits. Out is copied by
// DMA straight into the caller's memory once the same out has been passed
// to two Steps in a row (the memory is then page-locked in place, and kept
// alive and registered until another out takes its place or the backend
// closes); otherwise it goes through page-locked staging. A zero Tensor
// for in or out means none. Launch replays the recorded ops only.
func (b *Backend) CaptureIO(fn func(rec kernels.Backend), in, out kernels.Tensor) (kernels.Graph, error) {
	var inPtr, outPtr uint64
	var inHost, outHost []byte
	free := func() {
		for _, h := range [][]byte{inHost, outHost} {
			if h != nil {
				b.drv.MemFreeHost(h)
			}
		}
	}
	err := b.idle("CaptureIO", func() error {
		stage := func(what string, t kernels.Tensor, ptr *uint64, host *[]byte) error {
			if t.Buf == nil || t.Len() == 0 {
				return nil
			}
			p, err := b.devPtr(t)
			if err != nil {
				return fmt.Errorf("cuda: capture: %s: %w", what, err)
			}
			h, err := b.drv.MemAllocHost(int64(t.Len() * t.DType.Size()))
			if err != nil {
				return fmt.Errorf("cuda: capture: %s staging: %w", what, err)
			}
			*ptr, *host = p, h
			return nil
		}
		if err := stage("input", in, &inPtr, &inHost); err != nil {
			return err
		}
		if err := stage("output", out, &outPtr, &outHost); err != nil {
			free()
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	g, err := b.capture(fn)
	if err != nil {
		b.locked(func() error { free(); return nil })
		return nil, err
	}
	g.inPtr, g.outPtr, g.in, g.out = inPtr, outPtr, inHost, outHost
	return g, nil
}

// capture records fn's ops holding the backend (mutex, OS thread, current
// context) from the start of the capture to its end.
func (b *Backend) capture(fn func(kernels.Backend)) (*graph, error) {
	if b.rec != nil {
		return nil, errors.New("cuda: capture inside a capture")
	}
	var out *graph
	err := b.locked(func() error {
		if b.err != nil {
			return b.err
		}
		if err := b.drv.BeginCapture(b.stream, cu.CaptureRelaxed); err != nil {
			return fmt.Errorf("cuda: capture: %w", err)
		}
		b.capturing = true
		rec := &Backend{device: b.device, queue: b.queue, rec: &recorder{}}
		ended := false
		defer func() {
			rec.rec.done = true
			if !ended { // fn panicked: leave capture mode before unwinding
				b.endCapture()
			}
		}()
		fn(rec)
		ended = true
		var err error
		out, err = b.endCapture()
		return err
	})
	return out, err
}

// endCapture ends the stream's capture and instantiates the graph. The
// caller holds the lock.
func (b *Backend) endCapture() (*graph, error) {
	b.capturing = false
	g, err := b.drv.EndCapture(b.stream)
	if err != nil {
		if b.err == nil {
			b.err = fmt.Errorf("cuda: capture: %w", err)
		}
		return nil, b.err
	}
	if b.err != nil {
		b.drv.GraphDestroy(g)
		return nil, fmt.Errorf("cuda: capture: %w", b.err)
	}
	exec, err := b.drv.GraphInstantiate(g)
	if err != nil {
		b.drv.GraphDestroy(g)
		return nil, fmt.Errorf("cuda: capture: %w", err)
	}
	return &graph{b: b, g: g, exec: exec}, nil
}

// check reports why g cannot be launched now. The caller holds the lock.
func (g *graph) check() error {
	switch {
	case g.freed:
		return errors.New("cuda: launch of a freed graph")
	case g.b.capturing:
		return errors.New("cuda: graph launch while capturing")
	}
	return g.b.err
}

// Launch queues the recorded ops on the backend's stream.
func (g *graph) Launch() error {
	return g.b.locked(func() error {
		if err := g.check(); err != nil {
			return err
		}
		if err := g.b.drv.GraphLaunch(g.exec, g.b.stream); err != nil {
			return fmt.Errorf("cuda: %w", err)
		}
		return nil
	})
}

// Step copies in to the graph's input tensor, launches the graph, copies
// its output tensor into out (nil: no copy) and waits for all of it (and
// for the work queued before). len(in) must be the input's size in bytes
// (0 for a graph without one) and a non-nil out the output's. Like Sync,
// it reports the first error of any op.
func (g *graph) Step(in, out []byte) error {
	b := g.b
	return b.locked(func() error {
		if err := g.check(); err != nil {
			return err
		}
		if len(in) != len(g.in) {
			return fmt.Errorf("cuda: graph step: %d input bytes, want %d", len(in), len(g.in))
		}
		if out != nil && len(out) != len(g.out) {
			return fmt.Errorf("cuda: graph step: %d bytes of output room, want %d", len(out), len(g.out))
		}
		if len(in) > 0 {
			// The previous Step waited, so no queued copy still reads the
			// staging.
			copy(g.in, in)
			if err := b.drv.MemcpyHtoDAsync(g.inPtr, g.in, b.stream); err != nil {
				return fmt.Errorf("cuda: graph step: %w", err)
			}
		}
		if err := b.drv.GraphLaunch(g.exec, b.stream); err != nil {
			return fmt.Errorf("cuda: %w", err)
		}
		direct := false
		if len(out) > 0 {
			dst := g.out
			if direct = b.reg.direct(b, out); direct {
				dst = out
			}
			if err := b.drv.MemcpyDtoHAsync(dst, g.outPtr, b.stream); err != nil {
				b.err = fmt.Errorf("cuda: graph step: %w", err)
				return b.err
			}
		}
		if err := b.drv.StreamSynchronize(b.stream); err != nil {
			b.err = fmt.Errorf("cuda: %w", err)
			return b.err
		}
		if !direct {
			copy(out, g.out)
		}
		return nil
	})
}

// Free releases the graph and its staging.
func (g *graph) Free() {
	g.b.locked(func() error {
		if g.freed {
			return nil
		}
		g.freed = true
		g.b.drv.StreamSynchronize(g.b.stream)
		g.b.drv.GraphExecDestroy(g.exec)
		g.b.drv.GraphDestroy(g.g)
		for _, h := range [][]byte{g.in, g.out} {
			if h != nil {
				g.b.drv.MemFreeHost(h)
			}
		}
		g.in, g.out = nil, nil
		return nil
	})
}

// hostReg is the caller memory that Step copies outputs into directly:
// a Go buffer pinned (runtime.Pinner) and page-locked in place
// (cuMemHostRegister), so the device writes it by DMA and the copy out of
// staging (~20 µs for 256 KB of logits that the DMA left outside the CPU
// caches) goes away. One buffer at a time, registered when it comes to two
// Steps in a row: a caller passing a new buffer every time never pays
// for registration.
type hostReg struct {
	state *regState
	off   bool // never register (tests and benchmarks compare)
}

// regState is held apart from the Backend so that a cleanup can unpin
// the buffer of a backend dropped without Close.
type regState struct {
	buf    []byte // registered; nil when none
	pin    runtime.Pinner
	lastP  uintptr // the previous Step's unregistered out, by address
	lastN  int
	failed uintptr // an address whose registration failed: not retried
	err    error   // that failure
}

// direct reports whether out can be the target of the output copy,
// registering it when it was also the previous Step's. The caller holds
// the backend's lock.
func (r *hostReg) direct(b *Backend, out []byte) bool {
	if r.off {
		return false
	}
	if r.state == nil {
		r.state = &regState{}
		runtime.AddCleanup(b, func(s *regState) { s.pin.Unpin() }, r.state)
	}
	s := r.state
	p := uintptr(unsafe.Pointer(&out[0]))
	again := p == s.lastP && len(out) == s.lastN
	s.lastP, s.lastN = p, len(out)
	if s.buf != nil && unsafe.Pointer(&s.buf[0]) == unsafe.Pointer(&out[0]) && len(s.buf) == len(out) {
		return true
	}
	if !again || p == s.failed {
		return false
	}
	r.release(b)
	s.pin.Pin(&out[0])
	if err := b.drv.MemHostRegister(out); err != nil {
		s.pin.Unpin()
		s.failed, s.err = p, err
		return false
	}
	s.buf = out
	return true
}

// release unregisters and unpins the registered buffer, if any, after the
// copies queued into it. The caller holds the backend's lock.
func (r *hostReg) release(b *Backend) {
	s := r.state
	if s == nil || s.buf == nil {
		return
	}
	b.drv.StreamSynchronize(b.stream)
	b.drv.MemHostUnregister(s.buf)
	s.pin.Unpin()
	s.buf = nil
}
