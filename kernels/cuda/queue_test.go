package cuda

import (
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// TestQueues runs two chains of products and attentions side by side on
// two queues (each split activation and packed operand in its own queue's
// scratch) from two goroutines, joins them on the device's own queue with
// Order and compares the sum with the CPU; then checks the ordering the
// other way (a queue reading what the device's queue wrote), Free while
// another queue works, and closing.
func TestQueues(t *testing.T) {
	h := newHarness(t)
	var qs [2]kernels.Backend
	for i := range qs {
		q, err := h.g.NewQueue()
		if err != nil {
			t.Fatal(err)
		}
		qs[i] = q
	}
	const T, D = 1024, 512
	w, _ := h.weight(kernels.BF16, D, D, 0.05)
	w3, _ := h.weight(kernels.BF16, 3*D, D, 0.05)
	var ins, outs [2]pair
	var qkv, att [2]pair
	for i := range qs {
		ins[i] = h.act(T, D, 1)
		outs[i] = h.out(T, D)
		qkv[i] = h.out(T, 3*D)
		att[i] = h.out(T, D)
	}
	// chain is one queue's work: a few products and attentions.
	chain := func(be kernels.Backend, x, y, qkv, att kernels.Tensor, w, w3 kernels.Tensor) {
		be.Linear(y, x, w)
		for range 3 {
			be.Linear(qkv, y, w3)
			be.Attention(kernels.Attention{Dst: att, QKV: qkv, Heads: 8, Scale: 0.125})
			be.Linear(y, att, w)
		}
	}
	done := make(chan struct{})
	for i := range qs {
		go func() {
			defer func() { done <- struct{}{} }()
			chain(qs[i], ins[i].g, outs[i].g, qkv[i].g, att[i].g, w.g, w3.g)
		}()
	}
	for i := range qs {
		chain(h.c, ins[i].c, outs[i].c, qkv[i].c, att[i].c, w.c, w3.c)
	}
	<-done
	<-done
	for _, q := range qs {
		if err := h.g.Order(q, h.g); err != nil {
			t.Fatal(err)
		}
	}
	sum := h.out(T, D)
	h.g.Add(sum.g, outs[0].g, outs[1].g)
	h.c.Add(sum.c, outs[0].c, outs[1].c)
	h.check("two queues joined", sum, 1e-4)

	// The other way: queue 0 reads what the device's own queue wrote.
	x := h.act(T, D, 1)
	y := h.out(T, D)
	tmp := h.out(T, D)
	h.g.Linear(y.g, x.g, w.g)
	for range 4 { // intermediate values in y, then its final one
		h.g.Linear(tmp.g, y.g, w.g)
		h.g.Linear(y.g, tmp.g, w.g)
	}
	h.g.Linear(y.g, x.g, w.g)
	h.c.Linear(y.c, x.c, w.c)
	if err := h.g.Order(h.g, qs[0]); err != nil {
		t.Fatal(err)
	}
	z := h.out(T, D)
	qs[0].Add(z.g, y.g, y.g)
	h.c.Add(z.c, y.c, y.c)
	if err := h.g.Order(qs[0], h.g); err != nil {
		t.Fatal(err)
	}
	h.check("queue after the device's queue", z, 1e-5)

	// Free on the device's queue waits for the other queues' work.
	big := h.out(T, 3*D)
	qs[1].Linear(big.g, x.g, w3.g)
	h.g.Free(big.g)
	if err := qs[1].Sync(); err != nil {
		t.Fatal(err)
	}

	// Closing twice is harmless; Order refuses a closed queue.
	if err := qs[1].Close(); err != nil {
		t.Fatal(err)
	}
	if err := qs[1].Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.g.Order(qs[1], h.g); err == nil {
		t.Error("Order with a closed queue succeeded")
	}
	if err := qs[0].Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.g.Sync(); err != nil {
		t.Fatal(err)
	}
}
