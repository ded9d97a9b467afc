package history

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// fakeState is a serialized state's worth of float32 values that look like
// a model's: mostly small, of varied magnitude.
func fakeState(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, 4*n)
	for i := range n {
		v := float32(r.NormFloat64() * math.Exp(r.NormFloat64()))
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestPackState(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 5, 1000, 1 << 16} {
		b := fakeState(n/4+1, uint64(n))[:n]
		p, err := packState(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := unpackState(p)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("n=%d: round trip failed: %v", n, err)
		}
	}
	raw := fakeState(1<<18, 7)
	p, _ := packState(raw)
	t.Logf("a 1 MiB state packs to %.1f%% of its size", 100*float64(len(p))/float64(len(raw)))
	// Blobs stored before compression come back as they are.
	if got, err := unpackState(raw); err != nil || !bytes.Equal(got, raw) {
		t.Fatal("an unpacked blob changed")
	}
	// A crafted header cannot make unpackState allocate without limit.
	bomb := append(append([]byte{}, packMagic...), binary.LittleEndian.AppendUint64(nil, 1<<40)...)
	if _, err := unpackState(bomb); err == nil {
		t.Fatal("a 1 TB packed state was accepted")
	}
	if _, err := unpackState(p[:len(p)/2]); err == nil {
		t.Fatal("a truncated packed state was accepted")
	}
}

// TestStatesKeptWherePay: each reply used to keep its whole state (21.6 MB
// at 2.9B), so a long conversation grew without bound. Now only the last
// reply of each branch and the one before it keep theirs, compressed.
func TestStatesKeptWherePay(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, _ := s.CreateConversation("c", "", DefaultSampling())
	state := fakeState(1<<16, 1) // 256 KiB
	parent := int64(0)
	var replies []int64
	turn := func(parent int64) (user, reply int64) {
		u, err := s.AddMessage(Message{Conversation: c.ID, Parent: parent, Role: RoleUser, Content: "q"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.AddMessage(Message{Conversation: c.ID, Parent: u.ID, Role: RoleAssistant, Status: StatusStreaming})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(a.ID, "a", StatusDone, 1, 1, state, "k"); err != nil {
			t.Fatal(err)
		}
		return u.ID, a.ID
	}
	has := func(id int64) bool {
		b, _, err := s.State(id)
		if err != nil {
			t.Fatal(err)
		}
		if b != nil && !bytes.Equal(b, state) {
			t.Fatalf("message %d: state changed", id)
		}
		return b != nil
	}
	for range 100 {
		_, a := turn(parent)
		replies = append(replies, a)
		parent = a
	}
	u, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after 100 replies with 256 KiB states: %d states, %d KiB of states, file %d KiB", u.States, u.StateBytes>>10, u.FileBytes>>10)
	if u.States != 2 || !has(replies[99]) || !has(replies[98]) || has(replies[97]) {
		t.Errorf("%d states kept; want the last reply's and the one before", u.States)
	}
	// The write-ahead log takes up to 1000 pages (4 MiB) before SQLite
	// copies it into the database.
	if u.FileBytes > 4<<20+16*int64(len(state)) {
		t.Errorf("history file of %d KiB after 100 replies", u.FileBytes>>10)
	}

	// Regenerating the last reply (a sibling under the same user message)
	// keeps the old reply's state (a leaf of the other branch) and the
	// one before.
	last, _ := s.Message(replies[99])
	a2, _ := s.AddMessage(Message{Conversation: c.ID, Parent: last.Parent, Role: RoleAssistant})
	if err := s.Finish(a2.ID, "b", StatusDone, 1, 1, state, "k"); err != nil {
		t.Fatal(err)
	}
	if !has(a2.ID) || !has(replies[99]) || !has(replies[98]) {
		t.Error("regenerating lost a state that pays")
	}
	// An older reply that another branch's last turn starts from keeps
	// its state while the main branch grows.
	_, side := turn(replies[98]) // edit of the last question: a new branch off replies[98]
	parent = a2.ID
	for range 5 {
		_, parent = turn(parent)
	}
	if !has(replies[98]) || !has(side) {
		t.Error("the state another branch's last turn needs was dropped")
	}

	// A budget drops whole conversations' states, oldest first.
	c2, _ := s.CreateConversation("newer", "", DefaultSampling())
	c = c2
	_, newest := turn(0)
	if err := s.PruneStates(int64(len(state))); err != nil {
		t.Fatal(err)
	}
	if u, _ = s.Usage(); u.StateBytes > int64(len(state)) || !has(newest) {
		t.Errorf("after pruning to one state: %+v, newest kept %v", u, has(newest))
	}
	if err := s.Compact(); err != nil {
		t.Fatal(err)
	}
}
