package cuda

import (
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// TestCaptureIO checks a graph that carries its input and output: each
// Step must see the id it is given and return the row it selects (doubled
// by an op in the graph), also after a Launch, without an input, and with
// a nil output; wrong sizes and a freed graph are errors.
func TestCaptureIO(t *testing.T) {
	g := newGPU(t)
	const V, C = 16, 8
	table := make([]float32, V*C)
	for i := range table {
		table[i] = float32(i) + 0.25
	}
	tab, err := g.Weight(kernels.F32, V, C, kernelstest.F32Bytes(table))
	if err != nil {
		t.Fatal(err)
	}
	alloc := func(dt kernels.DType, rows, cols int) kernels.Tensor {
		x, err := g.Alloc(dt, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	ids, x, y := alloc(kernels.I32, 1, 1), alloc(kernels.F32, 1, C), alloc(kernels.F32, 1, C)
	run := func() {
		g.Embed(x, tab, ids)
		g.Add(y, x, x)
	}
	want := func(id int) []float32 {
		w := make([]float32, C)
		for j := range w {
			w[j] = 2 * table[id*C+j]
		}
		return w
	}
	idBytes := func(id int) []byte { return binary.LittleEndian.AppendUint32(nil, uint32(id)) }

	gr, err := g.CaptureIO(recording(g, run), ids, y)
	if err != nil {
		t.Fatal(err)
	}
	step, ok := gr.(interface{ Step(in, out []byte) error })
	if !ok {
		t.Fatalf("CaptureIO returned %T without Step", gr)
	}
	out := make([]byte, 4*C)
	for _, id := range []int{3, 0, 15, 7, 7, 1} {
		if err := step.Step(idBytes(id), out); err != nil {
			t.Fatal(err)
		}
		if got := kernelstest.BytesF32(out); !slices.Equal(got, want(id)) {
			t.Fatalf("Step(%d) = %v, want %v", id, got, want(id))
		}
	}
	// Launch replays the recorded ops only; the next Step sees its own input.
	for range 3 {
		if err := gr.Launch(); err != nil {
			t.Fatal(err)
		}
	}
	if err := step.Step(idBytes(9), out); err != nil {
		t.Fatal(err)
	}
	if got := kernelstest.BytesF32(out); !slices.Equal(got, want(9)) {
		t.Fatalf("Step(9) after Launch = %v, want %v", got, want(9))
	}
	// out has now come to several Steps in a row: it is registered and
	// written by DMA directly (or its registration failed, which is
	// logged). A second buffer is staged until it too comes twice, and
	// then replaces the first.
	if s := g.reg.state; s == nil || (s.buf == nil && s.err == nil) {
		t.Fatal("the output buffer of repeated Steps was never registered")
	} else if s.err != nil {
		t.Logf("registration failed, outputs staged: %v", s.err)
	}
	other := make([]byte, 4*C)
	for i, c := range []struct {
		buf []byte
		id  int
	}{{out, 2}, {other, 6}, {out, 11}, {other, 13}, {other, 14}, {out, 8}, {other, 10}} {
		clear(c.buf)
		if err := step.Step(idBytes(c.id), c.buf); err != nil {
			t.Fatal(err)
		}
		if got := kernelstest.BytesF32(c.buf); !slices.Equal(got, want(c.id)) {
			t.Fatalf("call %d: Step(%d) = %v, want %v", i, c.id, got, want(c.id))
		}
	}
	if s := g.reg.state; s.err == nil && (len(s.buf) == 0 || &s.buf[0] != &other[0]) {
		t.Error("the second buffer did not replace the first after two Steps in a row")
	}
	// A nil output skips the copy; the device result is still there.
	if err := step.Step(idBytes(4), nil); err != nil {
		t.Fatal(err)
	}
	if err := g.Download(out, y); err != nil {
		t.Fatal(err)
	}
	if got := kernelstest.BytesF32(out); !slices.Equal(got, want(4)) {
		t.Fatalf("Step(4, nil) left %v on the device, want %v", got, want(4))
	}
	if err := step.Step(nil, out); err == nil {
		t.Error("Step with no input bytes: no error")
	}
	if err := step.Step(idBytes(1), out[:4]); err == nil {
		t.Error("Step with a short output: no error")
	}
	gr.Free()
	if err := step.Step(idBytes(1), out); err == nil {
		t.Error("Step of a freed graph: no error")
	}
	if err := g.Sync(); err != nil {
		t.Fatalf("the rejected calls poisoned the backend: %v", err)
	}

	// Output only: the input is uploaded the ordinary way.
	gr, err = g.CaptureIO(recording(g, run), kernels.Tensor{}, y)
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Free()
	step = gr.(interface{ Step(in, out []byte) error })
	if err := g.Upload(ids, idBytes(12)); err != nil {
		t.Fatal(err)
	}
	if err := step.Step(nil, out); err != nil {
		t.Fatal(err)
	}
	if got := kernelstest.BytesF32(out); !slices.Equal(got, want(12)) {
		t.Fatalf("output-only Step = %v, want %v", got, want(12))
	}

	// A tensor of another backend is refused before capturing.
	c, err := cpu.New(cpu.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	foreign, err := c.Alloc(kernels.I32, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.CaptureIO(recording(g, run), foreign, y); err == nil {
		t.Error("CaptureIO with a foreign input: no error")
	}
	if err := g.Sync(); err != nil {
		t.Fatalf("a refused CaptureIO poisoned the backend: %v", err)
	}
}

// recording adapts fn, which issues its ops on g itself, to Capture: while
// fn runs, g acts as the capture's recorder (the tests and benchmarks of
// this package write their op sequences against one *Backend).
func recording(g *Backend, fn func()) func(kernels.Backend) {
	return func(rec kernels.Backend) {
		g.rec = rec.(*Backend).rec
		defer func() { g.rec = nil }()
		fn()
	}
}

// TestCaptureExclusive captures a graph in one goroutine, slowly, while
// another issues eager ops and reads their results. The eager ops must run
// (not be recorded into the graph) and give their own results, and the
// graph, replayed afterwards, must do only what its function issued.
func TestCaptureExclusive(t *testing.T) {
	g := newGPU(t)
	const C = 256
	alloc := func(v float32) kernels.Tensor {
		x, err := g.Alloc(kernels.F32, 1, C)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Upload(x, kernelstest.F32Bytes(slices.Repeat([]float32{v}, C))); err != nil {
			t.Fatal(err)
		}
		return x
	}
	one := alloc(1)
	gx, gy := alloc(0), alloc(0) // the graph's
	ex, ey := alloc(0), alloc(0) // the eager goroutine's
	read := func(x kernels.Tensor) (float32, error) {
		out := make([]byte, 4*C)
		if err := g.Download(out, x); err != nil {
			return 0, err
		}
		v := kernelstest.BytesF32(out)
		for _, e := range v {
			if e != v[0] {
				return 0, fmt.Errorf("uneven tensor %v", v)
			}
		}
		return v[0], nil
	}
	started := make(chan struct{})
	var wg sync.WaitGroup
	var eagerErr error
	wg.Go(func() {
		<-started
		for i := range 20 {
			g.Add(ex, ex, one) // ex = i+1
			g.Mul(ey, ex, one) // ey = ex
			v, err := read(ey)
			if err == nil && v != float32(i+1) {
				err = fmt.Errorf("eager step %d: %v, want %d", i, v, i+1)
			}
			if err != nil {
				eagerErr = err
				return
			}
		}
	})
	gr, err := g.Capture(func(rec kernels.Backend) {
		close(started)
		for range 10 {
			rec.Add(gx, gx, one)
			time.Sleep(2 * time.Millisecond) // the other goroutine tries to run now
		}
		rec.Mul(gy, gx, one)
	})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	defer gr.Free()
	if eagerErr != nil {
		t.Fatalf("eager ops during a capture: %v", eagerErr)
	}
	for _, c := range []struct {
		x    kernels.Tensor
		want float32
	}{{gx, 0}, {gy, 0}, {ex, 20}, {ey, 20}} {
		if v, err := read(c.x); err != nil || v != c.want {
			t.Fatalf("after the capture: %v (%v), want %v", v, err, c.want)
		}
	}
	for i := range 2 {
		if err := gr.Launch(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			x    kernels.Tensor
			want float32
		}{{gx, float32(10 * (i + 1))}, {gy, float32(10 * (i + 1))}, {ex, 20}, {ey, 20}} {
			if v, err := read(c.x); err != nil || v != c.want {
				t.Fatalf("replay %d: %v (%v), want %v", i, v, err, c.want)
			}
		}
	}
	// The recorder is dead after its capture.
	var kept kernels.Backend
	gr2, err := g.Capture(func(rec kernels.Backend) { kept = rec })
	if err != nil {
		t.Fatal(err)
	}
	gr2.Free()
	kept.Add(gx, gx, one)
	if err := g.Sync(); err == nil {
		t.Fatal("an op on a recorder after its capture: no error")
	}
}
