package core

import "testing"

// TestScratchReuse checks which free scratch getScratch hands out and what
// putScratch keeps: a one-token scratch whose graphs run on the asking
// state comes back to that state, and the larger (prefill) scratch kept
// free stays within the model's limit.
func TestScratchReuse(t *testing.T) {
	m := randomModel(t)
	states := make([]*State, 3)
	for i := range states {
		st, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Free)
		states[i] = st
	}
	take := func(T int, st *State) *scratch {
		t.Helper()
		sc, err := m.getScratch(T, false, st)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	m.freeSteps = 2
	// Three one-token scratches, each marked as holding one state's
	// graph (as stateGraph.forState leaves it), returned in turn.
	held := make([]*scratch, len(states))
	for i, st := range states {
		held[i] = take(1, st)
	}
	for i, st := range states {
		held[i].step.st = st
	}
	for _, sc := range held {
		m.putScratch(sc)
	}
	// Two are kept (the newest); the first is released.
	for _, i := range []int{1, 2} {
		sc := take(1, states[i])
		if sc != held[i] {
			t.Errorf("state %d got another state's one-token scratch", i)
		}
		m.putScratch(sc)
	}
	if sc := take(1, states[0]); sc == held[0] || sc.holds(states[0]) {
		t.Errorf("the oldest one-token scratch was kept beyond freeSteps = %d", m.freeSteps)
	}
	if sc := take(1, nil); sc.T != 1 {
		t.Errorf("any one-token scratch: T = %d", sc.T)
	} else {
		m.putScratch(sc)
	}

	// Prefill scratch: as many as fit in freeSize stay free.
	big := take(64, states[0])
	per := big.bytes()
	if per <= 0 {
		t.Fatalf("scratch of 64 rows: %d bytes", per)
	}
	m.freeSize = 3*per + per/2
	want := 3
	n := want + 2
	out := []*scratch{big}
	for range n - 1 {
		out = append(out, take(64, states[0]))
	}
	for _, sc := range out {
		m.putScratch(sc)
	}
	free, size := 0, int64(0)
	for _, sc := range m.free {
		if sc.T == 64 {
			free++
			size += sc.bytes()
		}
	}
	if size > m.freeSize || free != want {
		t.Errorf("%d prefill scratch of %d bytes returned: %d kept (%d bytes), want %d within %d", n, per, free, size, want, m.freeSize)
	}
}
