package cpu

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goose-rwkv/goose/internal/memfault"
)

// spinFor is how long an idle worker (or the caller waiting for workers)
// busy-waits before parking. Decode issues a burst of small parallel calls
// separated by a few microseconds of serial work; spinning across those gaps
// avoids a futex wake-up (several µs) per call, and the bound keeps an idle
// backend from burning a core.
const spinFor = 50 * time.Microsecond

// pool runs index ranges on a fixed number of goroutines: the caller plus
// threads-1 persistent workers, started on first use. It also carries the
// matrix kernel implementation (ks) and reusable scratch memory for it.
//
// For may be called from several goroutines at once and from inside fn:
// one call at a time uses the persistent workers, any other runs on fresh
// goroutines.
type pool struct {
	threads int
	ks      *kernelSet
	team    *team
	scratch sync.Pool // *[]float32 tiles for the GEMM kernels
	digits  sync.Pool // *actDigits for the integer int8 products
}

// team is the pool's persistent workers. It is a separate object so that a
// cleanup attached to the pool can stop the workers once the pool is
// unreachable; the workers themselves only reference the team.
type team struct {
	mu      sync.Mutex // held by the For call that owns the workers
	started bool
	closed  bool
	workers []*worker

	job  atomic.Pointer[job] // the latest job
	done chan struct{}       // cap 1: finishing a job wakes a parked caller
}

// job is one For call. Its chunks are claimed through next by whoever is
// free, the caller included, so a worker that is slow to wake (say its
// thread was descheduled) delays nothing: the caller runs the chunk itself.
type job struct {
	fn       func(c, lo, hi int) // read only by a goroutine holding a chunk
	exit     bool                // tells the workers to return
	n        int
	chunks   int32
	next     atomic.Int32 // next chunk to claim
	finished atomic.Int32 // chunks completed
	parked   atomic.Int32 // 1 while the caller is parked on team.done
	fault    atomic.Pointer[memfault.Error]
}

// worker is one persistent goroutine.
type worker struct {
	parked atomic.Int32  // 1 while parked on wake
	wake   chan struct{} // cap 1
	_      [56]byte      // keep workers on separate cache lines
}

// newPool returns a pool running on threads goroutines (all CPUs if
// threads <= 0) with the fastest matrix kernels this CPU supports.
func newPool(threads int) *pool {
	return newPoolWith(threads, bestKernels())
}

// newPoolWith is newPool with an explicit kernel implementation; tests use
// it to run every implementation on one machine.
func newPoolWith(threads int, ks *kernelSet) *pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	t := &team{done: make(chan struct{}, 1)}
	p := &pool{threads: threads, ks: ks, team: t}
	runtime.AddCleanup(p, func(t *team) { t.close() }, t)
	return p
}

// Close stops the pool's worker goroutines. The pool stays usable: later
// calls to For run on fresh goroutines.
func (p *pool) Close() {
	p.team.close()
}

// For calls fn on disjoint ranges covering [0, n), in parallel, each range
// at least grain long (except the last), and returns when all are done.
func (p *pool) For(n, grain int, fn func(lo, hi int)) {
	p.forChunks(n, grain, func(_, lo, hi int) { fn(lo, hi) })
}

// chunks is the number of ranges For(n, grain, ...) splits [0, n) into.
func (p *pool) chunks(n, grain int) int {
	grain = max(grain, 1)
	return max(0, min(p.threads, (n+grain-1)/grain))
}

// forChunks is For, also passing fn the index c < p.chunks(n, grain) of
// each range, for callers that keep per-range results.
func (p *pool) forChunks(n, grain int, fn func(c, lo, hi int)) {
	chunks := p.chunks(n, grain)
	if chunks <= 1 {
		if n > 0 {
			fn(0, 0, n)
		}
		return
	}
	t := p.team
	if !t.mu.TryLock() {
		spawn(n, chunks, fn)
		return
	}
	defer t.mu.Unlock()
	if t.closed {
		spawn(n, chunks, fn)
		return
	}
	if !t.started {
		t.start(p.threads - 1)
	}
	j := &job{fn: fn, n: n, chunks: int32(chunks)}
	t.job.Store(j)
	for _, w := range t.workers[:chunks-1] {
		if w.parked.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
	j.work()
	j.wait(t.done)
	// Drop fn so the finished job, which stays reachable from the team,
	// keeps nothing alive (the pool itself, through fn, included).
	j.fn = nil
	if e := j.fault.Load(); e != nil {
		memfault.Repanic(e)
	}
}

// wait returns once every chunk of j has finished.
func (j *job) wait(done chan struct{}) {
	if spin(func() bool { return j.finished.Load() == j.chunks }) {
		return
	}
	j.parked.Store(1)
	if j.finished.Load() == j.chunks && j.parked.CompareAndSwap(1, 0) {
		return
	}
	<-done
}

// work runs unclaimed chunks of j until none is left and reports whether
// it finished the job's last chunk.
func (j *job) work() (last bool) {
	for {
		c := j.next.Add(1) - 1
		if c >= j.chunks {
			return last
		}
		n, k := j.n, int(j.chunks)
		guard(&j.fault, j.fn, int(c), int(c)*n/k, int(c+1)*n/k)
		last = j.finished.Add(1) == j.chunks
	}
}

// guard runs fn(c, lo, hi), recovering a memory fault (a truncated
// memory-mapped weights file) into *fault so that the chunk still counts
// as finished and the For call can re-raise it on its caller's goroutine
// (see internal/memfault). Other panics go on.
func guard(fault *atomic.Pointer[memfault.Error], fn func(c, lo, hi int), c, lo, hi int) {
	defer func() {
		if r := recover(); r != nil {
			e, ok := memfault.Recovered(r)
			if !ok {
				panic(r)
			}
			fault.CompareAndSwap(nil, e)
		}
	}()
	fn(c, lo, hi)
}

// spawn runs chunks ranges of [0, n) on new goroutines and the caller.
func spawn(n, chunks int, fn func(c, lo, hi int)) {
	var wg sync.WaitGroup
	var fault atomic.Pointer[memfault.Error]
	for c := 1; c < chunks; c++ {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		wg.Go(func() {
			memfault.Enable()
			guard(&fault, fn, c, lo, hi)
		})
	}
	guard(&fault, fn, 0, 0, n/chunks)
	wg.Wait()
	if e := fault.Load(); e != nil {
		memfault.Repanic(e)
	}
}

func (t *team) start(k int) {
	t.started = true
	t.workers = make([]*worker, k)
	for i := range t.workers {
		w := &worker{wake: make(chan struct{}, 1)}
		t.workers[i] = w
		go t.run(w)
	}
}

func (t *team) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	t.job.Store(&job{exit: true})
	for _, w := range t.workers {
		if w.parked.CompareAndSwap(1, 0) {
			w.wake <- struct{}{}
		}
	}
}

// run is a worker's loop: wait for a new job, help with it, repeat.
func (t *team) run(w *worker) {
	memfault.Enable() // faults in a chunk are recovered by guard
	var last *job
	for {
		j := t.job.Load()
		if j == last {
			if !spin(func() bool { return t.job.Load() != last }) {
				w.parked.Store(1)
				if t.job.Load() == last || !w.parked.CompareAndSwap(1, 0) {
					// Either no job yet, or a poster saw us parked
					// and is sending a wake-up: receive it.
					<-w.wake
				}
			}
			j = t.job.Load()
		}
		last = j
		if j.exit {
			return
		}
		if j.work() && j.parked.CompareAndSwap(1, 0) {
			t.done <- struct{}{}
		}
	}
}

// spin busy-waits up to spinFor for cond, yielding now and then so that it
// cannot starve the goroutine it waits for when GOMAXPROCS is small. It
// reports whether cond became true.
func spin(cond func() bool) bool {
	var start time.Time
	for i := 1; ; i++ {
		if cond() {
			return true
		}
		if i&255 == 0 {
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > spinFor {
				return false
			}
			runtime.Gosched()
		}
	}
}

// getScratch returns a float32 buffer of at least n elements for one
// kernel call; give it back with putScratch.
func (p *pool) getScratch(n int) *[]float32 {
	if b, ok := p.scratch.Get().(*[]float32); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]float32, n)
	return &b
}

func (p *pool) putScratch(b *[]float32) { p.scratch.Put(b) }
