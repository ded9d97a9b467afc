package history

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func add(t *testing.T, s *Store, conv, parent int64, role, content string) Message {
	t.Helper()
	m, err := s.AddMessage(Message{Conversation: conv, Parent: parent, Role: role, Content: content})
	if err != nil {
		t.Fatalf("AddMessage: %v", err)
	}
	return m
}

func contents(ms []Message) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, m.Content)
	}
	return strings.Join(parts, "|")
}

func TestConversationCRUD(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	a, err := s.CreateConversation("First", "Be brief.", DefaultSampling())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.CreateConversation("Second about 100% cats", "", Sampling{Temperature: 0.5, TopK: 40})
	time.Sleep(5 * time.Millisecond) // updated times are in milliseconds
	add(t, s, a.ID, 0, RoleUser, "tell me about penguins")

	list, err := s.Conversations("")
	if err != nil || len(list) != 2 {
		t.Fatalf("Conversations = %v, %v", list, err)
	}
	if list[0].ID != a.ID {
		t.Errorf("most recently updated should be first: %v", list)
	}
	tests := []struct {
		query string
		want  []int64
	}{
		{"", []int64{a.ID, b.ID}},
		{"PENGUIN", []int64{a.ID}},
		{"second", []int64{b.ID}},
		{"100%", []int64{b.ID}},
		{"%", []int64{b.ID}},
		{"_", nil},
		{"zebra", nil},
	}
	for _, tt := range tests {
		got, err := s.Conversations(tt.query)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, c := range got {
			ids = append(ids, c.ID)
		}
		if len(ids) != len(tt.want) || (len(ids) > 0 && ids[0] != tt.want[0]) {
			t.Errorf("search %q = %v, want %v", tt.query, ids, tt.want)
		}
	}

	if err := s.Rename(b.ID, "Renamed"); err != nil {
		t.Fatal(err)
	}
	b.SystemPrompt = "You are a cat."
	b.Sampling.MaxTokens = 77
	b.Title = "Renamed"
	if err := s.UpdateConversation(b); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Conversation(b.ID)
	if got.Title != "Renamed" || got.SystemPrompt != "You are a cat." || got.Sampling.MaxTokens != 77 || got.Sampling.TopK != 40 {
		t.Errorf("after update: %+v", got)
	}
	if err := s.DeleteConversation(a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conversation(a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted conversation: %v", err)
	}
	if n, _ := s.Children(a.ID, 0); len(n) != 0 {
		t.Errorf("messages of a deleted conversation remain: %v", n)
	}
	for _, err := range []error{s.Rename(999, "x"), s.DeleteConversation(999), s.UpdateContent(999, "", StatusDone)} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("missing id: %v, want ErrNotFound", err)
		}
	}
	if _, err := s.AddMessage(Message{Conversation: b.ID, Role: "system"}); err == nil {
		t.Error("bad role accepted")
	}
	if _, err := s.AddMessage(Message{Conversation: b.ID, Parent: 12345, Role: RoleUser}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing parent: %v", err)
	}
}

// TestBranches builds a conversation with an edited user message and a
// regenerated reply and checks every branch stays reachable.
func TestBranches(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	c, _ := s.CreateConversation("Branches", "", DefaultSampling())
	u1 := add(t, s, c.ID, 0, RoleUser, "hi")
	a1 := add(t, s, c.ID, u1.ID, RoleAssistant, "hello")
	u2 := add(t, s, c.ID, a1.ID, RoleUser, "what is 2+2")
	a2 := add(t, s, c.ID, u2.ID, RoleAssistant, "5")
	// Regenerate: a sibling of a2.
	a2b := add(t, s, c.ID, u2.ID, RoleAssistant, "4")
	// Edit u2 and resend: a sibling of u2 with its own reply.
	u2e := add(t, s, c.ID, a1.ID, RoleUser, "what is 3+3")
	a2e := add(t, s, c.ID, u2e.ID, RoleAssistant, "6")

	th, err := s.Thread(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(th); got != "hi|hello|what is 3+3|6" {
		t.Errorf("current thread %q", got)
	}
	sibs, idx, err := s.Siblings(u2e.ID)
	if err != nil || len(sibs) != 2 || idx != 1 || sibs[0].ID != u2.ID {
		t.Fatalf("Siblings(u2e) = %v, %d, %v", sibs, idx, err)
	}
	// Switch back to the old branch: its latest leaf is the regenerated reply.
	leaf, err := s.LatestLeaf(u2.ID)
	if err != nil || leaf != a2b.ID {
		t.Fatalf("LatestLeaf(u2) = %d, %v; want %d", leaf, err, a2b.ID)
	}
	if err := s.SetLeaf(c.ID, leaf); err != nil {
		t.Fatal(err)
	}
	th, _ = s.Thread(c.ID)
	if got := contents(th); got != "hi|hello|what is 2+2|4" {
		t.Errorf("old branch %q", got)
	}
	if b, _ := s.Branch(a2.ID); contents(b) != "hi|hello|what is 2+2|5" {
		t.Errorf("first reply's branch %q", contents(b))
	}
	if leaf, _ := s.LatestLeaf(a2e.ID); leaf != a2e.ID {
		t.Errorf("LatestLeaf of a leaf = %d", leaf)
	}
	other, _ := s.CreateConversation("Other", "", DefaultSampling())
	if err := s.SetLeaf(other.ID, a2.ID); err == nil {
		t.Error("SetLeaf accepted a message of another conversation")
	}
}

// TestReopen checks history, streamed content, states and branches survive
// closing and reopening the database, and that a reply left streaming (a
// crash) is kept and marked interrupted.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "h.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.CreateConversation("Keep me", "sys", DefaultSampling())
	u := add(t, s, c.ID, 0, RoleUser, "question")
	a := add(t, s, c.ID, u.ID, RoleAssistant, "")
	state := bytes.Repeat([]byte{1, 2, 3}, 1000)
	if err := s.Finish(a.ID, "answer", StatusDone, 12, 34.5, state, "model-A"); err != nil {
		t.Fatal(err)
	}
	u2 := add(t, s, c.ID, a.ID, RoleUser, "more")
	a2, _ := s.AddMessage(Message{Conversation: c.ID, Parent: u2.ID, Role: RoleAssistant, Status: StatusStreaming})
	if err := s.UpdateContent(a2.ID, "partial repl", StatusStreaming); err != nil {
		t.Fatal(err)
	}
	// No Finish: simulate a crash by closing.
	s.Close()

	s = open(t, path)
	th, err := s.Thread(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := contents(th); got != "question|answer|more|partial repl" {
		t.Fatalf("reopened thread %q", got)
	}
	if th[3].Status != StatusInterrupted {
		t.Errorf("streaming message status after reopen %q, want %q", th[3].Status, StatusInterrupted)
	}
	if th[1].Tokens != 12 || th[1].TokensPerSec != 34.5 || !th[1].HasState || th[0].HasState {
		t.Errorf("stats/state flags lost: %+v", th[1])
	}
	got, key, err := s.State(a.ID)
	if err != nil || !bytes.Equal(got, state) || key != "model-A" {
		t.Errorf("State = %d bytes, %q, %v", len(got), key, err)
	}
	if st, _, _ := s.State(u.ID); st != nil {
		t.Error("user message has a state")
	}
	if err := s.ClearConversationStates(c.ID + 1); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := s.State(a.ID); st == nil {
		t.Error("ClearConversationStates of another conversation cleared this one")
	}
	if err := s.ClearConversationStates(c.ID); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := s.State(a.ID); st != nil {
		t.Error("ClearConversationStates kept a state")
	}
	s.SetState(a.ID, state, "model-A")
	if err := s.ClearStates(); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := s.State(a.ID); st != nil {
		t.Error("ClearStates kept a state")
	}
}

func TestExportImport(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	c, _ := s.CreateConversation("Round *trip*", "Answer in French.", Sampling{Temperature: 0.7, TopP: 0.9, TopK: 50, MaxTokens: 300})
	u := add(t, s, c.ID, 0, RoleUser, "Bonjour ?")
	a := add(t, s, c.ID, u.ID, RoleAssistant, "Salut !\n\n```go\nfmt.Println(1)\n```")
	add(t, s, c.ID, u.ID, RoleAssistant, "Bonjour !")
	s.Finish(a.ID, "Salut !\n\n```go\nfmt.Println(1)\n```", StatusDone, 9, 21.5, []byte{9}, "m")
	s.SetLeaf(c.ID, a.ID)

	var js bytes.Buffer
	if err := s.ExportJSON(c.ID, &js); err != nil {
		t.Fatal(err)
	}
	imp, err := s.ImportJSON(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatalf("ImportJSON: %v\n%s", err, js.String())
	}
	if imp.ID == c.ID || imp.Title != c.Title || imp.SystemPrompt != c.SystemPrompt || imp.Sampling != c.Sampling {
		t.Errorf("imported conversation %+v, want a copy of %+v", imp, c)
	}
	orig, _ := s.Thread(c.ID)
	copyTh, _ := s.Thread(imp.ID)
	if contents(orig) != contents(copyTh) {
		t.Errorf("thread %q, imported %q", contents(orig), contents(copyTh))
	}
	if copyTh[1].Tokens != 9 || copyTh[1].TokensPerSec != 21.5 || copyTh[1].HasState {
		t.Errorf("imported reply %+v (stats kept, no state)", copyTh[1])
	}
	sibs, _, _ := s.Siblings(copyTh[1].ID)
	if len(sibs) != 2 {
		t.Errorf("imported branches: %d siblings, want 2", len(sibs))
	}
	// Exporting the copy gives the same JSON apart from ids.
	var js2 bytes.Buffer
	s.ExportJSON(imp.ID, &js2)
	if strings.Count(js2.String(), "\"role\"") != 3 {
		t.Errorf("re-export lost messages:\n%s", js2.String())
	}

	var md bytes.Buffer
	if err := s.ExportMarkdown(c.ID, &md); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Round *trip*", "**System:** Answer in French.", "## User\n\nBonjour ?", "## Assistant\n\nSalut !", "```go"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Contains(md.String(), "Bonjour !") {
		t.Error("Markdown export includes a message from another branch")
	}
}

func TestImportRejects(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	tests := []struct{ name, in, want string }{
		{"not json", "hello", "not a conversation file"},
		{"wrong format", `{"format":"chatgpt","version":1}`, "format"},
		{"future version", `{"format":"goose-conversation","version":2}`, "version 2"},
		{"bad role", `{"format":"goose-conversation","version":1,"messages":[{"id":1,"role":"system","content":"x"}]}`, "bad role"},
		{"orphan", `{"format":"goose-conversation","version":1,"messages":[{"id":1,"parent":5,"role":"user","content":"x"}]}`, "parent 5"},
		{"bad leaf", `{"format":"goose-conversation","version":1,"current_leaf":3,"messages":[]}`, "leaf 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ImportJSON(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ImportJSON error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if list, _ := s.Conversations(""); len(list) != 0 {
		t.Errorf("rejected imports left %d conversations", len(list))
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", "/data/x")
	if p, _ := DefaultPath(); p != "/data/x/goose/history.db" {
		t.Errorf("DefaultPath = %s", p)
	}
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("HOME", "/home/u")
	if p, _ := DefaultPath(); p != "/home/u/.local/share/goose/history.db" {
		t.Errorf("DefaultPath = %s", p)
	}
}

// TestImages stores images content-addressed and reads them back after
// the store is reopened.
func TestImages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	k1, err := s.PutImage("a.png", []byte("png bytes"))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.PutImage("copy.png", []byte("png bytes"))
	if err != nil || k2 != k1 || k1 != ImageKey([]byte("png bytes")) {
		t.Fatalf("same bytes: keys %q and %q (%v)", k1, k2, err)
	}
	if _, err := s.PutImage("empty.png", nil); err == nil {
		t.Error("empty image stored")
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	name, data, err := s.Image(k1)
	if err != nil || name != "a.png" || string(data) != "png bytes" {
		t.Errorf("Image = %q, %q, %v", name, data, err)
	}
	if _, _, err := s.Image("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing image: %v", err)
	}
}

// TestDeletePrunesImages: deleting the last conversation that refers to an
// image deletes the image; one still referred to stays.
func TestDeletePrunesImages(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "h.db"))
	kA, _ := s.PutImage("a.png", []byte("image a"))
	kB, _ := s.PutImage("b.png", []byte("image b"))
	c1, _ := s.CreateConversation("one", "", DefaultSampling())
	c2, _ := s.CreateConversation("two", "", DefaultSampling())
	for _, m := range []Message{
		{Conversation: c1.ID, Role: RoleUser, Content: "[image: a.png #" + kA + "]\n[image: b.png #" + kB + "]\nQ"},
		{Conversation: c2.ID, Role: RoleUser, Content: "[image: b.png #" + kB + "]\nQ"},
	} {
		if _, err := s.AddMessage(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteConversation(c1.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Image(kA); !errors.Is(err, ErrNotFound) {
		t.Errorf("image a after its only conversation was deleted: %v", err)
	}
	if _, _, err := s.Image(kB); err != nil {
		t.Errorf("image b, still in a conversation: %v", err)
	}
}

// TestExportImportImages: the images a conversation's messages refer to
// travel in its JSON, into another store; others stay behind, and a file
// whose image bytes do not match their key is refused whole.
func TestExportImportImages(t *testing.T) {
	src := open(t, filepath.Join(t.TempDir(), "a.db"))
	png := []byte("\x89PNG\r\n\x1a\n pretend pixels")
	jpg := []byte("\xff\xd8\xff other pixels")
	kp, err := src.PutImage("cat.png", png)
	if err != nil {
		t.Fatal(err)
	}
	kj, _ := src.PutImage("dog.jpg", jpg)
	c, _ := src.CreateConversation("Pictures", "", Sampling{})
	u := add(t, src, c.ID, 0, RoleUser, "[image: cat.png #"+kp+"]\nWhat is this?")
	a := add(t, src, c.ID, u.ID, RoleAssistant, "A cat.")
	src.SetLeaf(c.ID, a.ID)
	other, _ := src.CreateConversation("Other", "", Sampling{})
	add(t, src, other.ID, 0, RoleUser, "[image: dog.jpg #"+kj+"]\nAnd this?")

	var js bytes.Buffer
	if err := src.ExportJSON(c.ID, &js); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), kj) {
		t.Error("export carries an image no message of the conversation refers to")
	}
	dst := open(t, filepath.Join(t.TempDir(), "b.db"))
	imp, err := dst.ImportJSON(bytes.NewReader(js.Bytes()))
	if err != nil {
		t.Fatalf("ImportJSON: %v", err)
	}
	name, data, err := dst.Image(kp)
	if err != nil || name != "cat.png" || !bytes.Equal(data, png) {
		t.Fatalf("imported image %q, %q, %v; want cat.png and its bytes", name, data, err)
	}
	if _, _, err := dst.Image(kj); err == nil {
		t.Error("the other conversation's image was imported")
	}
	th, _ := dst.Thread(imp.ID)
	if len(th) != 2 || !strings.Contains(th[0].Content, kp) {
		t.Errorf("imported thread %q", contents(th))
	}
	// Importing again (the image is already there) keeps one copy.
	if _, err := dst.ImportJSON(bytes.NewReader(js.Bytes())); err != nil {
		t.Fatal(err)
	}

	// Bytes that are not those of the key: refused, nothing written.
	bad := strings.Replace(js.String(), `"data": "`, `"data": "AAAA`, 1)
	before, _ := dst.Conversations("")
	if _, err := dst.ImportJSON(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Errorf("tampered image imported (err %v)", err)
	}
	if after, _ := dst.Conversations(""); len(after) != len(before) {
		t.Error("a refused import left a conversation")
	}
	// Files written before images were exported still import.
	old := `{"format":"goose-conversation","version":1,"current_leaf":1,"messages":[{"id":1,"role":"user","content":"[image: x.png #` + kp + `]\nhi"}]}`
	if _, err := src.ImportJSON(strings.NewReader(old)); err != nil {
		t.Errorf("a file without images: %v", err)
	}
}
