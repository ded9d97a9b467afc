package cpu

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/kernels"
)

// coverage runs For and reports how many times each index was visited
// and the ranges fn saw.
func coverage(p *pool, n, grain int) ([]int32, [][2]int) {
	hits := make([]int32, n)
	var mu sync.Mutex
	var ranges [][2]int
	p.For(n, grain, func(lo, hi int) {
		mu.Lock()
		ranges = append(ranges, [2]int{lo, hi})
		mu.Unlock()
		for i := lo; i < hi; i++ {
			atomic.AddInt32(&hits[i], 1)
		}
	})
	return hits, ranges
}

func TestPoolFor(t *testing.T) {
	tests := []struct{ threads, n, grain int }{
		{1, 10, 1}, {2, 0, 1}, {2, 1, 1}, {2, 2, 1}, {2, 7, 3}, {2, 100, 16},
		{3, 100, 1}, {4, 5, 1}, {8, 1000, 7}, {3, 10, 0}, {2, 5, 100},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("threads=%d/n=%d/grain=%d", tc.threads, tc.n, tc.grain), func(t *testing.T) {
			p := newPool(tc.threads)
			defer p.Close()
			for rep := range 50 { // reuse the persistent workers
				hits, ranges := coverage(p, tc.n, tc.grain)
				for i, h := range hits {
					if h != 1 {
						t.Fatalf("rep %d: index %d visited %d times", rep, i, h)
					}
				}
				if len(ranges) > tc.threads {
					t.Fatalf("rep %d: %d ranges for %d threads", rep, len(ranges), tc.threads)
				}
				g := max(tc.grain, 1)
				for _, r := range ranges {
					if r[1]-r[0] < g && len(ranges) > 1 {
						t.Fatalf("rep %d: range %v shorter than grain %d", rep, r, g)
					}
				}
			}
		})
	}
}

func TestPoolForChunks(t *testing.T) {
	p := newPool(3)
	defer p.Close()
	for _, n := range []int{0, 1, 2, 5, 100} {
		for _, grain := range []int{1, 3, 40} {
			chunks := p.chunks(n, grain)
			seen := make([]atomic.Int32, max(chunks, 1))
			var total atomic.Int64
			p.forChunks(n, grain, func(c, lo, hi int) {
				if c < 0 || c >= chunks || lo != c*n/chunks || hi != (c+1)*n/chunks {
					t.Errorf("n=%d grain=%d: chunk %d is [%d,%d) of %d", n, grain, c, lo, hi, chunks)
					return
				}
				seen[c].Add(1)
				total.Add(int64(hi - lo))
			})
			for c := range chunks {
				if seen[c].Load() != 1 {
					t.Errorf("n=%d grain=%d: chunk %d ran %d times", n, grain, c, seen[c].Load())
				}
			}
			if total.Load() != int64(n) {
				t.Errorf("n=%d grain=%d: covered %d", n, grain, total.Load())
			}
		}
	}
}

// TestPoolParks lets the workers go idle long enough to park, then checks
// they wake for the next call.
func TestPoolParks(t *testing.T) {
	p := newPool(3)
	defer p.Close()
	for range 3 {
		hits, _ := coverage(p, 30, 1)
		for i, h := range hits {
			if h != 1 {
				t.Fatalf("index %d visited %d times", i, h)
			}
		}
		time.Sleep(5 * spinFor)
	}
}

// TestPoolConcurrentAndNested calls For from several goroutines at once
// and from inside fn; calls that cannot get the workers run on fresh
// goroutines.
func TestPoolConcurrentAndNested(t *testing.T) {
	p := newPool(2)
	defer p.Close()
	var wg sync.WaitGroup
	var total atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 100 {
				p.For(8, 1, func(lo, hi int) {
					p.For(10, 1, func(lo2, hi2 int) {
						total.Add(int64((hi - lo) * (hi2 - lo2)))
					})
				})
			}
		})
	}
	wg.Wait()
	if got, want := total.Load(), int64(4*100*8*10); got != want {
		t.Fatalf("total work %d, want %d", got, want)
	}
}

func TestPoolClose(t *testing.T) {
	p := newPool(2)
	coverage(p, 10, 1)
	p.Close()
	p.Close()
	hits, _ := coverage(p, 10, 1)
	for i, h := range hits {
		if h != 1 {
			t.Fatalf("after Close: index %d visited %d times", i, h)
		}
	}
}

// BenchmarkPoolFor measures the per-call overhead of an (almost) empty
// parallel loop, the cost decode pays ~15 times per layer.
func BenchmarkPoolFor(b *testing.B) {
	for _, threads := range []int{2} {
		b.Run(fmt.Sprintf("persistent/threads=%d", threads), func(b *testing.B) {
			p := newPool(threads)
			defer p.Close()
			var sink [2][16]int64
			for b.Loop() {
				p.For(2, 1, func(lo, hi int) { sink[lo][0]++ })
			}
		})
		b.Run(fmt.Sprintf("spawn/threads=%d", threads), func(b *testing.B) {
			var sink [2][16]int64
			for b.Loop() {
				spawn(2, 2, func(_, lo, hi int) { sink[lo][0]++ })
			}
		})
	}
}

// TestPoolCleanup checks that an unreachable pool's workers exit without
// Close.
func TestPoolCleanup(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 4 {
		p := newPool(3)
		linear(p, make([]float32, 2*64), make([]float32, 2*8), 2, 8, make([]byte, 64*8*2), kernels.BF16, 64)
		p.For(10, 1, func(lo, hi int) { _ = p.threads }) // fn references p
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines left running, %d before", n, before)
	}
}
