package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSchedulerFIFO: waiting requests get the worker in arrival order.
func TestSchedulerFIFO(t *testing.T) {
	s := newScheduler([]*worker{{id: 0}}, 10)
	ctx := context.Background()
	w, err := s.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	order := make(chan int, n)
	for i := range n {
		go func() {
			w, err := s.acquire(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			order <- i
			s.release(w)
		}()
		// Let request i queue before request i+1 arrives.
		waitFor(t, 2*time.Second, "a request to queue", func() bool { _, q := s.load(); return q == i+1 })
	}
	s.release(w)
	for want := range n {
		select {
		case got := <-order:
			if got != want {
				t.Fatalf("request %d got the worker in turn %d", got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("queue stalled")
		}
	}
	if a, q := s.load(); a != 0 || q != 0 {
		t.Fatalf("after all: %d active, %d waiting", a, q)
	}
}

func TestSchedulerBusyAndCancel(t *testing.T) {
	s := newScheduler([]*worker{{id: 0}, {id: 1}}, 1)
	ctx := context.Background()
	w0, _ := s.acquire(ctx)
	w1, _ := s.acquire(ctx)
	if w0 == nil || w1 == nil || w0 == w1 {
		t.Fatal("two workers not handed out")
	}
	cctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		w, err := s.acquire(cctx)
		if w != nil {
			s.release(w)
		}
		got <- err
	}()
	waitFor(t, 2*time.Second, "the request to queue", func() bool { _, q := s.load(); return q == 1 })
	if _, err := s.acquire(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("full queue: %v, want errBusy", err)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	if _, q := s.load(); q != 0 {
		t.Fatalf("%d waiting after cancel", q)
	}
	s.release(w0)
	s.release(w1)
	if a, _ := s.load(); a != 0 {
		t.Fatalf("%d active after release", a)
	}
	// Zero queue: the third request is refused at once.
	s0 := newScheduler([]*worker{{id: 0}}, 0)
	w, _ := s0.acquire(ctx)
	if _, err := s0.acquire(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("no queue: %v, want errBusy", err)
	}
	s0.release(w)
}

// TestSchedulerCancelRace: a waiter cancelled while the worker is being
// handed to it passes the worker on; no worker is ever lost.
func TestSchedulerCancelRace(t *testing.T) {
	s := newScheduler([]*worker{{id: 0}}, 100)
	for range 200 {
		w, err := s.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			if w, err := s.acquire(ctx); err == nil {
				s.release(w)
			}
			close(done)
		}()
		waitFor(t, 2*time.Second, "queue", func() bool { _, q := s.load(); return q == 1 })
		go cancel()
		s.release(w)
		<-done
	}
	if a, q := s.load(); a != 0 || q != 0 {
		t.Fatalf("%d active, %d waiting: a worker was lost", a, q)
	}
	if w, err := s.acquire(context.Background()); err != nil || w == nil {
		t.Fatalf("acquire after the race: %v", err)
	}
}

func TestSchedulerClose(t *testing.T) {
	s := newScheduler([]*worker{{id: 0}}, 5)
	w, _ := s.acquire(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := s.acquire(context.Background())
		got <- err
	}()
	waitFor(t, 2*time.Second, "queue", func() bool { _, q := s.load(); return q == 1 })
	s.close()
	if err := <-got; !errors.Is(err, errClosed) {
		t.Fatalf("waiter at close: %v", err)
	}
	if _, err := s.acquire(context.Background()); !errors.Is(err, errClosed) {
		t.Fatalf("acquire after close: %v", err)
	}
	s.release(w)
}
