package cpu

import (
	"runtime"
	"sync"
)

// pool runs index ranges on a fixed number of goroutines.
type pool struct {
	threads int
}

func newPool(threads int) *pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	return &pool{threads: threads}
}

// Close releases the pool's workers. The naive pool has none.
func (p *pool) Close() {}

// For calls fn on disjoint ranges covering [0, n), in parallel, each range
// at least grain long (except the last), and returns when all are done.
func (p *pool) For(n, grain int, fn func(lo, hi int)) {
	if grain < 1 {
		grain = 1
	}
	chunks := (n + grain - 1) / grain
	if chunks > p.threads {
		chunks = p.threads
	}
	if chunks <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	for c := range chunks {
		lo, hi := c*n/chunks, (c+1)*n/chunks
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
