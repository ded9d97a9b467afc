package history

import (
	"bytes"
	"path/filepath"
	"testing"
)

// FuzzImportJSON feeds arbitrary files to ImportJSON: it must either
// import a conversation that exports again, or return an error, never
// panic or leave a partial conversation.
func FuzzImportJSON(f *testing.F) {
	f.Add(`{"format":"goose-conversation","version":1,"title":"t","current_leaf":2,"messages":[{"id":1,"role":"user","content":"hi"},{"id":2,"parent":1,"role":"assistant","content":"yo"}]}`)
	f.Add(`{"format":"goose-conversation","version":1,"messages":[{"id":1,"parent":1,"role":"user","content":"x"}]}`)
	f.Add(`{"format":"goose-conversation","version":1,"messages":null}`)
	f.Add(`[]`)
	s, err := Open(filepath.Join(f.TempDir(), "h.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	f.Fuzz(func(t *testing.T, in string) {
		before, _ := s.Conversations("")
		c, err := s.ImportJSON(bytes.NewReader([]byte(in)))
		after, _ := s.Conversations("")
		if err != nil {
			if len(after) != len(before) {
				t.Fatalf("failed import left a conversation: %v", err)
			}
			return
		}
		var out bytes.Buffer
		if err := s.ExportJSON(c.ID, &out); err != nil {
			t.Fatalf("export of an imported conversation: %v", err)
		}
		if _, err := s.Thread(c.ID); err != nil {
			t.Fatal(err)
		}
	})
}
