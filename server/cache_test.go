package server

import (
	"context"
	"slices"
	"testing"

	"github.com/goose-rwkv/goose/core"
)

// prefilled returns a session whose state is the state after ids.
func prefilled(t *testing.T, m *core.Model, ids []int32) *core.Session {
	t.Helper()
	s, err := core.NewSession(m, world(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.PrefillTokens(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	return s
}

func stateFloats(t *testing.T, s *core.Session) []float32 {
	t.Helper()
	st, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Free()
	f, err := st.Floats()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestCacheLongestPrefix(t *testing.T) {
	m := loadModel(t, tinyConfig(), 3)
	stateBytes := m.Config().StateBytes()
	c := newPrefixCache(10 * stateBytes)
	keys := [][]int32{{10, 20}, {10, 20, 30, 40}, {50}, {10, 21, 30}}
	want := map[string][]float32{}
	for _, k := range keys {
		s := prefilled(t, m, k)
		if err := c.store(k, s); err != nil {
			t.Fatal(err)
		}
		want[mustJSON(t, k)] = stateFloats(t, s)
	}
	if err := c.store(keys[0], prefilled(t, m, keys[0])); err != nil { // a duplicate is not stored twice
		t.Fatal(err)
	}
	if st := c.stats(); st.Entries != len(keys) || st.Inserts != uint64(len(keys)) {
		t.Fatalf("stats %+v, want %d entries", st, len(keys))
	}
	sess := prefilled(t, m, []int32{99, 98}) // holds some unrelated state
	tests := []struct {
		ids  []int32
		want int
	}{
		{[]int32{10, 20, 30, 40, 50}, 4},
		{[]int32{10, 20, 30, 40}, 4},
		{[]int32{10, 20, 30}, 2},
		{[]int32{10, 21, 30, 1}, 3},
		{[]int32{10, 21}, 0},
		{[]int32{50, 50}, 1},
		{[]int32{10}, 0},
		{[]int32{7, 10, 20}, 0},
		{nil, 0},
	}
	for _, tc := range tests {
		n, err := c.restore(tc.ids, sess)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Fatalf("restore %v: %d, want %d", tc.ids, n, tc.want)
		}
		got := stateFloats(t, sess)
		if n == 0 {
			if slices.ContainsFunc(got, func(x float32) bool { return x != 0 }) {
				t.Fatalf("restore %v: a miss must leave the zero state", tc.ids)
			}
			continue
		}
		if !slices.Equal(got, want[mustJSON(t, tc.ids[:n])]) {
			t.Fatalf("restore %v: the state is not the cached one", tc.ids)
		}
	}
	if st := c.stats(); st.Lookups != uint64(len(tests)-1) || st.Hits != 5 || st.HitTokens != 4+4+2+3+1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCacheVerifiesTokens: an entry found by hash is used only if its tokens
// are equal, so a hash collision cannot restore a wrong state.
func TestCacheVerifiesTokens(t *testing.T) {
	m := loadModel(t, tinyConfig(), 3)
	c := newPrefixCache(10 * m.Config().StateBytes())
	a, b := []int32{1, 2, 3}, []int32{4, 5, 6}
	st, err := prefilled(t, m, a).State()
	if err != nil {
		t.Fatal(err)
	}
	c.put(a, c.hash(b), st) // forge a collision: a's state filed under b's hash
	sess := prefilled(t, m, nil)
	if n, _ := c.restore(b, sess); n != 0 {
		t.Fatalf("restore %v found %d tokens through a colliding entry", b, n)
	}
	if n, _ := c.restore(slices.Concat(b, a), sess); n != 0 {
		t.Fatalf("restore found %d tokens through a colliding entry", n)
	}
}

func TestCacheEvictsLeastRecentlyUsed(t *testing.T) {
	m := loadModel(t, tinyConfig(), 3)
	size := m.Config().StateBytes() + 4*2 // a state and a key of two tokens
	c := newPrefixCache(3 * size)
	sess := prefilled(t, m, nil)
	store := func(ids ...int32) {
		t.Helper()
		if err := c.store(ids, prefilled(t, m, ids)); err != nil {
			t.Fatal(err)
		}
	}
	has := func(ids ...int32) bool {
		n, err := c.restore(append(ids, 0), sess)
		if err != nil {
			t.Fatal(err)
		}
		return n == len(ids)
	}
	store(1, 1)
	store(2, 2)
	store(3, 3)
	if !has(1, 1) { // 1 becomes the most recent; 2 is now the oldest
		t.Fatal("1 missing")
	}
	store(4, 4)
	if has(2, 2) || !has(1, 1) || !has(3, 3) || !has(4, 4) {
		t.Fatal("wrong entry evicted: want 2 gone, 1, 3, 4 kept")
	}
	st := c.stats()
	if st.Entries != 3 || st.Bytes != 3*size || st.Evictions != 1 || st.Bytes > st.Capacity {
		t.Fatalf("stats %+v", st)
	}
	// A state larger than the capacity is not stored.
	small := newPrefixCache(size / 2)
	if err := small.store([]int32{1}, sess); err != nil {
		t.Fatal(err)
	}
	if st := small.stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("oversized entry stored: %+v", st)
	}
	c.close()
	if st := c.stats(); st.Entries != 0 || st.Bytes != 0 {
		t.Fatalf("after close: %+v", st)
	}
}

func TestCacheDisabled(t *testing.T) {
	m := loadModel(t, tinyConfig(), 3)
	c := newPrefixCache(-1)
	sess := prefilled(t, m, []int32{1, 2})
	if err := c.store([]int32{1, 2}, sess); err != nil {
		t.Fatal(err)
	}
	n, err := c.restore([]int32{1, 2, 3}, sess)
	if err != nil || n != 0 {
		t.Fatalf("disabled cache restored %d (%v)", n, err)
	}
	if slices.ContainsFunc(stateFloats(t, sess), func(x float32) bool { return x != 0 }) {
		t.Fatal("a miss must reset the session")
	}
}
