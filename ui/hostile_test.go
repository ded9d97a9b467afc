package ui

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core"
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
			// Recordings go beside the database, or to the temporary folder
			// with an in-memory history — never the working directory.
			want := filepath.Join(filepath.Dir(hp), "recordings")
			if !tc.moved {
				want = filepath.Join(os.TempDir(), "goose-recordings")
			}
			if got := h.a.audio.recordingsDir(); got != want {
				t.Errorf("recordings go to %q, want %q", got, want)
			}
		})
	}
}

// TestSettingsHistoryUsage: the settings show how much disk the history
// takes and remove the saved states on request.
func TestSettingsHistoryUsage(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	st := h.a.store
	c, _ := st.CreateConversation("c", "", history.DefaultSampling())
	parent := int64(0)
	for range 3 {
		u, _ := st.AddMessage(history.Message{Conversation: c.ID, Parent: parent, Role: history.RoleUser, Content: "q"})
		r, _ := st.AddMessage(history.Message{Conversation: c.ID, Parent: u.ID, Role: history.RoleAssistant})
		if err := st.Finish(r.ID, "a", history.StatusDone, 1, 1, make([]byte, 1<<20), "k"); err != nil {
			t.Fatal(err)
		}
		parent = r.ID
	}
	h.ui(func() { h.a.show("settings") })
	var remove []*widget.Button
	h.ui(func() {
		s := texts(h.a.prefs.root)
		if !strings.Contains(s, "on disk") || !strings.Contains(s, "saved model states (2)") {
			t.Errorf("settings do not show the history's disk use:\n%s", s)
		}
		remove = buttons(h.a.prefs.root, "Remove saved states")
	})
	h.ui(func() { h.a.cfg.Theme = "dark"; h.a.applyTheme() })
	shot(t, h, filepath.Join("testdata", "screens", "settings-history.png"))
	h.ui(func() { remove = buttons(h.a.prefs.root, "Remove saved states") })
	if len(remove) != 1 {
		t.Fatalf("%d Remove saved states buttons", len(remove))
	}
	h.ui(func() { test.Tap(remove[0]) })
	h.ui(h.confirm)
	h.waitFor("the states to be removed", func() bool {
		u, err := st.Usage()
		return err == nil && u.States == 0 && strings.Contains(texts(h.a.prefs.root), "saved model states (0)")
	})
}

// TestDamagedModelReported: a model file with a NaN weight past the rows
// the loader samples loads, and the background check that follows says
// the file is damaged, naming the tensor.
func TestDamagedModelReported(t *testing.T) {
	h := realHarness(t)
	path := tinyModel(t, h.dir)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var hdr map[string]struct {
		DType   string   `json:"dtype"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(raw[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	emb := hdr["emb.weight"]
	at := 8 + int64(n) + emb.Offsets[0]
	switch emb.DType { // a NaN at row 3, column 1
	case "F32":
		binary.LittleEndian.PutUint32(raw[at+4*(3*64+1):], 0x7fc00000)
	case "BF16":
		binary.LittleEndian.PutUint16(raw[at+2*(3*64+1):], 0x7fc0)
	default:
		t.Fatalf("emb.weight is %s", emb.DType)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	h.load(path)
	h.waitFor("the damaged file to be reported", func() bool { return len(h.errs()) > 0 })
	err = h.errs()[0]
	if !errors.Is(err, core.ErrNotFinite) || !strings.Contains(err.Error(), "emb.weight: row 3, column 1 is NaN") {
		t.Fatalf("reported %v", err)
	}
	if title, _, _ := explain(err); !strings.Contains(title, "is damaged") {
		t.Errorf("dialog title %q", title)
	}
}
