package vision

import (
	"bytes"
	"context"
	"image"
	"slices"
	"sync"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/vision/internal/nn"
)

// lazyQueues is a CPU backend that has queues (kernels.Queuer) as a GPU
// does, in a form that makes a missing Order visible: a queue holds back
// its ops until they must have run (its Sync or Download, or an Order that
// puts them before other work), so work that reads a queue's results
// without being ordered after it reads stale values. The parent runs its
// ops at once.
type lazyQueues struct {
	*cpu.Backend
	mu     sync.Mutex
	queues []*lazyQueue
	orders int
}

func (l *lazyQueues) NewQueue() (kernels.Backend, error) {
	q := &lazyQueue{Backend: l.Backend}
	l.mu.Lock()
	l.queues = append(l.queues, q)
	l.mu.Unlock()
	return q, nil
}

func (l *lazyQueues) Order(before, after kernels.Backend) error {
	l.mu.Lock()
	l.orders++
	l.mu.Unlock()
	if q, ok := before.(*lazyQueue); ok {
		q.flush()
	}
	return nil
}

// lazyQueue is one of lazyQueues' queues: the ops the image towers use are
// held back; any other op fails the test (it would run out of order).
type lazyQueue struct {
	*cpu.Backend
	mu      sync.Mutex
	pending []func()
	closed  bool
}

func (q *lazyQueue) later(f func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		panic("op on a closed queue")
	}
	q.pending = append(q.pending, f)
}

func (q *lazyQueue) flush() {
	q.mu.Lock()
	ops := q.pending
	q.pending = nil
	q.mu.Unlock()
	for _, f := range ops {
		f()
	}
}

func (q *lazyQueue) Sync() error { q.flush(); return q.Backend.Sync() }
func (q *lazyQueue) Close() error {
	q.flush()
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	return nil
}
func (q *lazyQueue) Download(dst []byte, t kernels.Tensor) error {
	q.flush()
	return q.Backend.Download(dst, t)
}
func (q *lazyQueue) Upload(t kernels.Tensor, src []byte) error {
	b := bytes.Clone(src) // the caller may reuse src at once
	q.later(func() { q.Backend.Upload(t, b) })
	return nil
}
func (q *lazyQueue) Linear(d, x, w kernels.Tensor) { q.later(func() { q.Backend.Linear(d, x, w) }) }
func (q *lazyQueue) MatMul(d, x, w kernels.Tensor) { q.later(func() { q.Backend.MatMul(d, x, w) }) }
func (q *lazyQueue) LayerNorm(d, x, w, b kernels.Tensor, eps float32) {
	q.later(func() { q.Backend.LayerNorm(d, x, w, b, eps) })
}
func (q *lazyQueue) Act(d, x kernels.Tensor, f kernels.Activation) {
	q.later(func() { q.Backend.Act(d, x, f) })
}
func (q *lazyQueue) Add(d, a, b kernels.Tensor)    { q.later(func() { q.Backend.Add(d, a, b) }) }
func (q *lazyQueue) Mul(d, a, b kernels.Tensor)    { q.later(func() { q.Backend.Mul(d, a, b) }) }
func (q *lazyQueue) Copy(d, s kernels.Tensor)      { q.later(func() { q.Backend.Copy(d, s) }) }
func (q *lazyQueue) Attention(a kernels.Attention) { q.later(func() { q.Backend.Attention(a) }) }
func (q *lazyQueue) Im2Col(d, s kernels.Tensor, c kernels.Conv) {
	q.later(func() { q.Backend.Im2Col(d, s, c) })
}
func (q *lazyQueue) WindowPartition(d, s kernels.Tensor, w kernels.Window) {
	q.later(func() { q.Backend.WindowPartition(d, s, w) })
}
func (q *lazyQueue) WindowMerge(d, s kernels.Tensor, w kernels.Window) {
	q.later(func() { q.Backend.WindowMerge(d, s, w) })
}
func (q *lazyQueue) Residual(d, x, y, b, g kernels.Tensor) {
	q.later(func() { q.Backend.Residual(d, x, y, b, g) })
}
func (q *lazyQueue) BiasAct(d, x, b kernels.Tensor, f kernels.Activation) {
	q.later(func() { q.Backend.BiasAct(d, x, b, f) })
}
func (q *lazyQueue) SpaceToDepth(d, s kernels.Tensor, h, w, f int) {
	q.later(func() { q.Backend.SpaceToDepth(d, s, h, w, f) })
}
func (q *lazyQueue) CopyCols(d, s kernels.Tensor, col int) {
	q.later(func() { q.Backend.CopyCols(d, s, col) })
}
func (q *lazyQueue) Embed(d, t, i kernels.Tensor) { panic("Embed on a tower queue") }
func (q *lazyQueue) ShiftMix([]kernels.Tensor, kernels.Tensor, kernels.Tensor, []kernels.Tensor) {
	panic("ShiftMix on a tower queue")
}
func (q *lazyQueue) Prep7(kernels.Prep7) { panic("Prep7 on a tower queue") }
func (q *lazyQueue) WKV7(y, s, r, w, k, v, a, b kernels.Tensor) {
	panic("WKV7 on a tower queue")
}
func (q *lazyQueue) Out7(kernels.Out7) { panic("Out7 on a tower queue") }
func (q *lazyQueue) DepthwiseConv3(d, x, k kernels.Tensor, h, w int) {
	panic("DepthwiseConv3 on a tower queue")
}
func (q *lazyQueue) Lerp([]kernels.Tensor, kernels.Tensor, kernels.Tensor, []kernels.Tensor) {
	panic("Lerp on a tower queue")
}
func (q *lazyQueue) FlipRows(d, x kernels.Tensor, n int) { panic("FlipRows on a tower queue") }
func (q *lazyQueue) GateMix(d, a, b, g kernels.Tensor)   { panic("GateMix on a tower queue") }
func (q *lazyQueue) MeanRows(d, x kernels.Tensor)        { panic("MeanRows on a tower queue") }

// TestEncodeQueues runs the towers side by side, each issuing its ops on a
// queue of its own from its own goroutine (the path a GPU's streams take),
// and checks that the embeddings are those of the towers run one after
// another: every queue is ordered before the projector reads the features,
// and the towers' concurrent issue does not mix their working memory.
func TestEncodeQueues(t *testing.T) {
	f, cfg := fixture(t)
	encode := func(be kernels.Backend, img image.Image) ([]float32, bool) {
		e, err := LoadEncoder(f, be, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		var out []float32
		for range 2 { // a second image reuses the working memory
			err = e.Encode(context.Background(), img, nil, func(rows kernels.Tensor) error {
				var err error
				out, err = nn.Download(be, rows)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		return out, e.Concurrent()
	}
	img := image.NewRGBA(image.Rect(0, 0, 70, 50))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*7 + i/13)
	}
	plain, _ := cpu.New(cpu.Options{Threads: 2})
	defer plain.Close()
	want, conc := encode(plain, img)
	if conc {
		t.Fatal("a CPU backend without queues runs the towers side by side")
	}
	lazyCPU, _ := cpu.New(cpu.Options{Threads: 2})
	defer lazyCPU.Close()
	lazy := &lazyQueues{Backend: lazyCPU}
	got, conc := encode(lazy, img)
	if !conc || len(lazy.queues) != 3 || lazy.orders == 0 {
		t.Fatalf("towers side by side: %v, %d queues, %d orders; want 3 queues, ordered", conc, len(lazy.queues), lazy.orders)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("embeddings with the towers on queues differ from those run one after another")
	}

	// Timed mode runs the towers one after another, on their queues.
	e, err := LoadEncoder(f, lazy, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var st Stages
	err = e.Encode(context.Background(), img, &st, func(rows kernels.Tensor) error {
		got, err = nn.Download(lazy, rows)
		return err
	})
	if err != nil || !slices.Equal(got, want) || st.SAM <= 0 || st.DINO <= 0 {
		t.Fatalf("timed encode on queues: %v, stages %+v, same embeddings %v", err, st, slices.Equal(got, want))
	}

	// GOOSE_VISION_STREAMS=0 keeps one queue.
	t.Setenv(streamsEnv, "0")
	if _, conc := encode(&lazyQueues{Backend: lazyCPU}, img); conc {
		t.Errorf("%s=0: the towers still run side by side", streamsEnv)
	}
}
