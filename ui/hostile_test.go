package ui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/ui/history"
)

// TestDamagedHistoryStarts: the app used to print an error and exit when
// its history database was damaged. Now the window opens, a dialog says
// what happened, the damaged file is moved aside, and chats work. An
// unusable data folder gives an in-memory history, also with a dialog.
func TestDamagedHistoryStarts(t *testing.T) {
	for _, tc := range []struct {
		name   string
		setup  func(dir string) string // returns the history path
		moved  bool
		advice string
	}{
		{"damaged database", func(dir string) string {
			p := filepath.Join(dir, "history.db")
			os.WriteFile(p, []byte(strings.Repeat("not a database ", 200)), 0o644)
			return p
		}, true, "moved to"},
		{"unusable folder", func(dir string) string {
			blocker := filepath.Join(dir, "data")
			os.WriteFile(blocker, []byte("x"), 0o644)
			return filepath.Join(blocker, "goose", "history.db")
		}, false, "will not be saved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			hp := tc.setup(dir)
			h := newHarness(t, newFakeEngine(), dir, nil, func(o *Options) { o.HistoryPath = hp })
			h.ui(func() { h.a.start() })
			if !h.dialogShown() {
				t.Fatal("no dialog says what happened")
			}
			errs := h.errs()
			var rec *history.Recovery
			if len(errs) != 1 || !errors.As(errs[0], &rec) {
				t.Fatalf("errors shown: %v", errs)
			}
			if (rec.MovedTo != "") != tc.moved {
				t.Fatalf("recovery %+v", rec)
			}
			if tc.moved {
				if _, err := os.Stat(rec.MovedTo); err != nil {
					t.Errorf("damaged file not kept: %v", err)
				}
			}
			if _, sentence, _ := explain(errs[0]); !strings.Contains(sentence, tc.advice) {
				t.Errorf("dialog says %q, want %q", sentence, tc.advice)
			}
			if _, err := h.a.store.CreateConversation("works", "", history.DefaultSampling()); err != nil {
				t.Fatalf("history after recovery: %v", err)
			}
		})
	}
}
