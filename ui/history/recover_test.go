package history

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestOpenOrRecover: a damaged database used to stop the app at start.
// Now it is moved aside (never deleted) and a fresh history starts; a
// folder that cannot be used gives an in-memory history; both say why.
func TestOpenOrRecover(t *testing.T) {
	dir := t.TempDir()

	// A good database with a conversation, then damaged in two ways.
	good := filepath.Join(dir, "good.db")
	s, err := Open(good)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.CreateConversation("kept", "", DefaultSampling())
	for range 200 {
		if _, err := s.AddMessage(Message{Conversation: c.ID, Role: RoleUser, Content: string(bytes.Repeat([]byte("x"), 2000))}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte("this is not a database "), 100)
	scrambled := bytes.Clone(raw)
	for i := 4096; i < len(scrambled); i += 7 {
		scrambled[i] ^= 0x5a // every page after the first
	}

	tests := []struct {
		name     string
		content  []byte
		moved    bool
		inMemory bool
	}{
		{"garbage", garbage, true, false},
		{"scrambled pages", scrambled, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			if err := os.WriteFile(path, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			s, rec, err := OpenOrRecover(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if rec == nil {
				t.Fatal("no recovery reported")
			}
			t.Log(rec)
			if (rec.MovedTo != "") != tc.moved || rec.InMemory != tc.inMemory || s.InMemory() != tc.inMemory {
				t.Fatalf("recovery %+v", rec)
			}
			if b, err := os.ReadFile(rec.MovedTo); err != nil || len(b) != len(tc.content) {
				t.Errorf("the damaged file was not kept at %s: %v", rec.MovedTo, err)
			} else {
				// SQLite may have bumped the header's change counter
				// (bytes 24-27, 92-95) before it met the damage.
				for i := 100; i < len(b); i++ {
					if b[i] != tc.content[i] {
						t.Errorf("byte %d changed: %#x -> %#x", i, tc.content[i], b[i])
					}
				}
			}
			// The fresh store works and is on disk.
			if _, err := s.CreateConversation("new", "", DefaultSampling()); err != nil {
				t.Fatal(err)
			}
			s.Close()
			s2, rec2, err := OpenOrRecover(path)
			if err != nil || rec2 != nil {
				t.Fatalf("reopen: %v %v", rec2, err)
			}
			cs, _ := s2.Conversations("")
			s2.Close()
			if len(cs) != 1 || cs[0].Title != "new" {
				t.Errorf("reopened history: %+v", cs)
			}
		})
	}

	// A data folder that cannot be created: a file stands in its way.
	blocker := filepath.Join(dir, "blocker")
	os.WriteFile(blocker, []byte("x"), 0o644)
	s, rec, err := OpenOrRecover(filepath.Join(blocker, "goose", "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil || !rec.InMemory || rec.MovedTo != "" || !s.InMemory() {
		t.Fatalf("unusable folder: %+v", rec)
	}
	t.Log(rec)
	if _, err := s.CreateConversation("in memory", "", DefaultSampling()); err != nil {
		t.Fatal(err)
	}
	if cs, err := s.Conversations(""); err != nil || len(cs) != 1 {
		t.Fatalf("in-memory store: %v %v", cs, err)
	}
	// Recordings and images work in memory too.
	if _, err := s.AddRecording(Recording{Name: "in memory", Path: "/d/a.wav"}); err != nil {
		t.Errorf("in-memory store: %v", err)
	}
	if rs, err := s.Recordings(""); err != nil || len(rs) != 1 {
		t.Errorf("in-memory store: recordings %v %v", rs, err)
	}
	if _, err := s.PutImage("cat.png", []byte("png")); err != nil {
		t.Errorf("in-memory store: %v", err)
	}
	s.Close()
	if b, _ := os.ReadFile(blocker); string(b) != "x" {
		t.Error("the file in the way was changed")
	}
	var r *Recovery
	if !errors.As(error(rec), &r) {
		t.Error("Recovery is not an error")
	}
}
