package server

import (
	"container/list"
	"context"
	"errors"
	"sync"

	"github.com/goose-rwkv/goose/core"
)

// errBusy is returned by acquire when the wait queue is full.
var errBusy = errors.New("server busy: the request queue is full")

// errClosed is returned by acquire after close.
var errClosed = errors.New("server is shutting down")

// worker is one generation slot: a session of its own.
type worker struct {
	id   int
	sess *core.Session
}

// scheduler hands workers to requests first come, first served. At most
// maxWaiting requests wait for a worker; more are refused with errBusy.
type scheduler struct {
	mu         sync.Mutex
	free       []*worker
	waiting    list.List // of *waiter, oldest first
	maxWaiting int
	active     int
	closed     bool
	idle       *sync.Cond // signalled when active drops to 0
}

type waiter struct {
	ready chan *worker // receives the worker; buffered
	el    *list.Element
}

func newScheduler(workers []*worker, maxWaiting int) *scheduler {
	s := &scheduler{free: workers, maxWaiting: max(maxWaiting, 0)}
	s.idle = sync.NewCond(&s.mu)
	return s
}

// acquire returns a free worker, waiting in FIFO order for one. It returns
// errBusy at once when maxWaiting requests are already waiting, and ctx's
// error if ctx ends first.
func (s *scheduler) acquire(ctx context.Context) (*worker, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errClosed
	}
	if len(s.free) > 0 && s.waiting.Len() == 0 {
		w := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.active++
		s.mu.Unlock()
		return w, nil
	}
	if s.waiting.Len() >= s.maxWaiting {
		s.mu.Unlock()
		return nil, errBusy
	}
	wt := &waiter{ready: make(chan *worker, 1)}
	wt.el = s.waiting.PushBack(wt)
	s.mu.Unlock()

	select {
	case w := <-wt.ready:
		if w == nil {
			return nil, errClosed
		}
		return w, nil
	case <-ctx.Done():
		s.mu.Lock()
		if wt.el != nil { // still queued
			s.waiting.Remove(wt.el)
			wt.el = nil
			s.mu.Unlock()
			return nil, ctx.Err()
		}
		s.mu.Unlock()
		// A worker was handed over meanwhile: pass it on.
		if w := <-wt.ready; w != nil {
			s.release(w)
		}
		return nil, ctx.Err()
	}
}

// release returns w: to the oldest waiting request, or to the free list.
func (s *scheduler) release(w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if front := s.waiting.Front(); front != nil {
		wt := s.waiting.Remove(front).(*waiter)
		wt.el = nil
		wt.ready <- w
		return
	}
	s.active--
	s.free = append(s.free, w)
	if s.active == 0 {
		s.idle.Broadcast()
	}
}

// load returns the number of requests holding a worker and waiting.
func (s *scheduler) load() (active, waiting int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, s.waiting.Len()
}

// drain waits until no worker is in use. Call it after close.
func (s *scheduler) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.active > 0 {
		s.idle.Wait()
	}
}

// close refuses new requests and wakes every waiting one with errClosed.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for s.waiting.Len() > 0 {
		wt := s.waiting.Remove(s.waiting.Front()).(*waiter)
		wt.el = nil
		wt.ready <- nil
	}
}
