package ui

import (
	"bytes"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/ui/history"
)

// walk calls f on obj and everything drawn inside it (not inside a
// label's own rendering).
func walk(obj fyne.CanvasObject, f func(fyne.CanvasObject)) {
	if obj == nil || !obj.Visible() {
		return
	}
	f(obj)
	if _, ok := obj.(*widget.Label); ok {
		return
	}
	switch o := obj.(type) {
	case *fyne.Container:
		for _, c := range o.Objects {
			walk(c, f)
		}
	case fyne.Widget:
		for _, c := range test.WidgetRenderer(o).Objects() {
			walk(c, f)
		}
	}
}

// buttons returns the visible buttons under obj whose text is text.
func buttons(obj fyne.CanvasObject, text string) []*widget.Button {
	var out []*widget.Button
	walk(obj, func(o fyne.CanvasObject) {
		if b, ok := o.(*widget.Button); ok && b.Text == text {
			out = append(out, b)
		}
	})
	return out
}

// texts returns every label and rich text under obj, joined by newlines.
func texts(obj fyne.CanvasObject) string {
	var b strings.Builder
	walk(obj, func(o fyne.CanvasObject) {
		switch w := o.(type) {
		case *widget.Label:
			b.WriteString(w.Text + "\n")
		case *widget.RichText:
			b.WriteString(w.String() + "\n")
		}
	})
	return b.String()
}

// topDialog returns the content of the dialog over the window, or nil.
func (h *harness) topDialog() fyne.CanvasObject {
	return h.a.win.Canvas().Overlays().Top()
}

// confirm presses Yes in the confirmation dialog over the window. UI side
// (inside h.ui).
func (h *harness) confirm() {
	yes := buttons(h.topDialog(), "Yes")
	if len(yes) != 1 {
		h.t.Fatal("no confirmation dialog")
	}
	test.Tap(yes[0])
}

// closeDialogs removes every dialog over the window. UI side.
func (h *harness) closeDialogs() {
	for _, o := range h.a.win.Canvas().Overlays().List() {
		h.a.win.Canvas().Overlays().Remove(o)
	}
}

// A failed load keeps the working model; the file is marked in the list
// with a Remove button, which deletes it.
func TestFailedLoadKeepsModel(t *testing.T) {
	eng := newFakeEngine()
	h := newHarness(t, eng, "", nil)
	models := filepath.Join(h.dir, "models")
	os.MkdirAll(models, 0o755)
	good := tinyModel(t, models)
	h.load(good)
	bad := filepath.Join(models, "broken.pth")
	os.WriteFile(bad, []byte("PK\x03\x04 not a checkpoint"), 0o644)

	eng.loadErr = fmt.Errorf("load %s: %w", bad, errors.New("zip: not a valid zip file"))
	h.ui(func() { h.a.loadModel(bad) })
	h.waitFor("the load to fail", func() bool { return !h.a.loading })
	h.ui(func() {
		if h.a.model == nil || h.a.model.Path != good {
			t.Fatalf("after a failed load the model is %+v, want %s still loaded", h.a.model, good)
		}
		if !strings.Contains(h.a.status.model.Text, "tiny-rwkv7") {
			t.Errorf("status bar says %q", h.a.status.model.Text)
		}
		if !h.dialogShown() {
			t.Error("no error dialog")
		}
		h.closeDialogs()
		h.a.show("models")
	})
	var remove []*widget.Button
	h.ui(func() {
		remove = buttons(h.a.models.root, "Remove")
		if s := texts(h.a.models.root); !strings.Contains(s, "Cannot be loaded") {
			t.Errorf("the broken file is not marked:\n%s", s)
		}
	})
	if len(remove) != 1 {
		t.Fatalf("%d Remove buttons, want 1", len(remove))
	}
	h.ui(func() { h.a.cfg.Theme = "dark"; h.a.applyTheme() })
	shot(t, h, filepath.Join("testdata", "screens", "models-bad-file.png"))
	h.ui(func() {
		if s := texts(h.a.models.root); !strings.Contains(s, "Cannot be loaded: Not a valid zip file.") {
			t.Errorf("the reason is not short:\n%s", s)
		}
		remove = buttons(h.a.models.root, "Remove")
	})
	h.ui(func() { test.Tap(remove[0]) })
	h.ui(h.confirm)
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the broken file is still there: %v", err)
	}
	if _, err := os.Stat(good); err != nil {
		t.Errorf("the good file is gone: %v", err)
	}
}

// The real engine keeps its model when another file fails to load, and
// the chat goes on with it.
func TestRealEngineFailedLoadKeepsModel(t *testing.T) {
	h := realHarness(t)
	good := tinyModel(t, h.dir)
	h.load(good)
	h.shortChat(16)
	h.send("Hello")
	bad := filepath.Join(h.dir, "truncated.safetensors")
	b, _ := os.ReadFile(good)
	os.WriteFile(bad, b[:len(b)/2], 0o644)
	h.ui(func() { h.a.loadModel(bad) })
	h.waitFor("the load to fail", func() bool { return !h.a.loading })
	if info, ok := h.eng.Info(); !ok || info.Path != good {
		t.Fatalf("engine model after a failed load: %+v %v", info, ok)
	}
	h.ui(func() {
		if h.a.model == nil || h.a.model.Path != good {
			t.Fatalf("app model %+v", h.a.model)
		}
		h.closeDialogs()
	})
	h.send("Still there?")
	if msgs := h.messages(); len(msgs) != 4 || msgs[3].Tokens == 0 {
		t.Fatalf("the chat after a failed load: %+v", msgs)
	}
	if errs := h.errs(); len(errs) != 1 {
		t.Errorf("errors %v, want the one failed load", errs)
	}
	// Loading another good model replaces it; the old chat session does
	// not outlive its model.
	other := filepath.Join(t.TempDir(), "other.safetensors")
	os.WriteFile(other, b, 0o644)
	h.load(other)
	h.send("And now?")
}

// An error dialog says what happened (title) and what to do (one
// sentence); the full error is behind Details.
func TestErrorDialog(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	cause := fmt.Errorf("load /home/me/models/m.pth: %w", &catalog.OfflineError{URL: "https://huggingface.co/x", Err: errors.New("dial tcp: lookup huggingface.co: no such host")})
	for _, c := range []struct {
		err                   error
		title, sentence, more string
	}{
		{&problem{"Could not download RWKV-7 World 0.1B", cause}, "Could not download RWKV-7 World 0.1B", "no network connection", "lookup huggingface.co"},
		{&problem{"Could not load m.pth", fmt.Errorf("open m.pth: %w", os.ErrNotExist)}, "Could not load m.pth", "no longer there", "open m.pth"},
		{errors.New("no model is loaded: open Models to load one"), "Goose", "No model is loaded: open Models to load one.", ""},
		{fmt.Errorf("history: %w", errors.New("database is locked")), "Something went wrong", "Try again", "database is locked"},
	} {
		title, sentence, details := explain(c.err)
		if title != c.title || !strings.Contains(strings.ToLower(sentence), strings.ToLower(c.sentence)) || !strings.Contains(details, c.more) {
			t.Errorf("%v:\ngot  %q / %q / %q\nwant %q / %q / %q", c.err, title, sentence, details, c.title, c.sentence, c.more)
		}
		if strings.Count(sentence, ". ") > 0 {
			t.Errorf("%v: %q is more than one sentence", c.err, sentence)
		}
	}
	h.ui(func() { h.a.showProblem("Could not download RWKV-7 World 0.1B", cause) })
	h.ui(func() {
		d := h.topDialog()
		if d == nil {
			t.Fatal("no dialog")
		}
		show := buttons(d, "Show details")
		if len(show) != 1 {
			t.Fatalf("no Show details button:\n%s", texts(d))
		}
		if shown := texts(d); strings.Contains(shown, "lookup huggingface.co") || !strings.Contains(shown, "no network connection") {
			t.Errorf("before the click the dialog shows:\n%s", shown)
		}
		test.Tap(show[0])
		if !strings.Contains(texts(d), "lookup huggingface.co") {
			t.Errorf("the details lack the error:\n%s", texts(d))
		}
	})
	shot(t, h, filepath.Join("testdata", "screens", "error-dialog.png"))
}

// Models on disk can be deleted, but not the loaded one.
func TestDeleteModel(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	models := filepath.Join(h.dir, "models")
	os.MkdirAll(models, 0o755)
	a := tinyModel(t, models)
	b := filepath.Join(models, "second.safetensors")
	data, _ := os.ReadFile(a)
	os.WriteFile(b, data, 0o644)
	h.load(a)
	h.ui(func() {
		h.a.show("models")
		h.a.models.deleteModel(a)
	})
	if _, err := os.Stat(a); err != nil {
		t.Errorf("the loaded model was deleted")
	}
	if len(h.errs()) != 1 {
		t.Errorf("errors %v, want one saying it is loaded", h.errs())
	}
	h.ui(func() {
		h.closeDialogs()
		h.a.models.deleteModel(b)
	})
	if _, err := os.Stat(b); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("second model not deleted: %v", err)
	}
	h.ui(func() {
		if strings.Contains(texts(h.a.models.root), "second.safetensors") {
			t.Error("the deleted model is still listed")
		}
	})
}

// Offline, a download fails at once saying so, and leaves no .part.
func TestDownloadOfflineFailsFast(t *testing.T) {
	data := []byte("never served")
	cat := fixtureCatalog(t, "https://huggingface.co/fixture.safetensors", data)
	h := newHarness(t, newFakeEngine(), "", cat)
	h.a.opts.Downloader = &catalog.Downloader{Backoff: time.Second, Retries: 5, Client: &http.Client{Transport: offlineTransport{}}}
	start := time.Now()
	h.ui(func() { h.a.show("models"); h.a.models.startDownload(cat[0]) })
	h.waitFor("the download to fail", func() bool { return !h.a.models.downloads[cat[0].File].running })
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the offline download took %v to fail", d)
	}
	errs := h.errs()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no network connection") {
		t.Fatalf("errors %v, want one saying there is no network connection", errs)
	}
	if ents, _ := os.ReadDir(filepath.Join(h.dir, "models")); len(ents) != 0 {
		t.Errorf("files left in the models folder: %v", ents)
	}
	h.ui(func() {
		if s := texts(h.a.models.root); !strings.Contains(s, "no network connection") {
			t.Errorf("the card does not say why:\n%s", s)
		}
	})
}

type offlineTransport struct{}

func (offlineTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, &net.DNSError{Err: "no such host", Name: "huggingface.co", IsNotFound: true}
}

// The cosmetic details: the device is named once, the GPU warning appears
// once on the Models screen, and buttons keep their natural height.
func TestModelsScreenCosmetics(t *testing.T) {
	for _, c := range []struct {
		m    ModelInfo
		want string
	}{
		{ModelInfo{Backend: "cpu", Device: "CPU (2 threads, amd64)"}, "CPU (2 threads, amd64)"},
		{ModelInfo{Backend: "cuda", Device: "NVIDIA H100 80GB HBM3"}, "GPU (CUDA): NVIDIA H100 80GB HBM3"},
	} {
		if got := deviceText(c.m); got != c.want {
			t.Errorf("deviceText(%+v) = %q, want %q", c.m, got, c.want)
		}
	}
	h := newHarness(t, newFakeEngine(), "", catalog.Official())
	models := filepath.Join(h.dir, "models")
	os.MkdirAll(models, 0o755)
	h.load(tinyModel(t, models))
	other := filepath.Join(models, "other.safetensors")
	data, _ := os.ReadFile(filepath.Join(models, "tiny-rwkv7.safetensors"))
	os.WriteFile(other, data, 0o644)
	h.ui(func() {
		h.a.show("models")
		if n := strings.Count(texts(h.a.win.Content()), "GPU not used"); n != 1 {
			t.Errorf("the GPU warning shows %d times on the Models screen", n)
		}
		for _, label := range []string{"Load", "Download", "Loaded"} {
			for _, b := range buttons(h.a.models.root, label) {
				if b.Size().Height > b.MinSize().Height+1 {
					t.Errorf("%q button is %v tall, its natural height is %v", label, b.Size().Height, b.MinSize().Height)
				}
			}
		}
		if len(buttons(h.a.models.root, "Load")) == 0 {
			t.Error("no Load button for the second model")
		}
	})
}

// The chat settings dialog checks each number as it is typed, keeps Save
// disabled while one is invalid, and loses no edit.
func TestChatSettingsValidateInline(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() {
		conv, err := h.a.store.CreateConversation("Settings", "", history.DefaultSampling())
		if err != nil {
			t.Fatal(err)
		}
		h.a.chat.open(conv.ID)
		h.a.chat.settingsDialog()
	})
	var entries []*widget.Entry
	var save *widget.Button
	h.ui(func() {
		d := h.topDialog()
		walk(d, func(o fyne.CanvasObject) {
			if e, ok := o.(*widget.Entry); ok {
				entries = append(entries, e)
			}
		})
		if s := buttons(d, "Save"); len(s) == 1 {
			save = s[0]
		}
	})
	if len(entries) != 8 || save == nil {
		t.Fatalf("%d entries and Save %v, want the system prompt and 7 numbers", len(entries), save)
	}
	sys, temp, topK := entries[0], entries[1], entries[3]
	h.ui(func() {
		sys.SetText("Answer in French.")
		topK.SetText("40")
		temp.SetText("9") // above sample.MaxTemperature
		if err := temp.Validate(); err == nil || !strings.Contains(err.Error(), "from 0 to 2") {
			t.Errorf("temperature 9: %v, want 'from 0 to 2'", err)
		}
		if !save.Disabled() {
			t.Error("Save is enabled with an invalid temperature")
		}
		test.Tap(save)
		if h.topDialog() == nil {
			t.Fatal("the dialog closed on an invalid value")
		}
		if sys.Text != "Answer in French." || topK.Text != "40" {
			t.Errorf("edits lost: %q %q", sys.Text, topK.Text)
		}
		topK.SetText("4.5")
		if topK.Validate() == nil {
			t.Error("top-k 4.5 accepted")
		}
		topK.SetText("40")
		temp.SetText("0.7")
		if save.Disabled() {
			t.Errorf("Save is disabled with valid values")
		}
		test.Tap(save)
	})
	h.ui(func() {
		c := h.a.chat.conv
		if c.SystemPrompt != "Answer in French." || c.Sampling.Temperature != 0.7 || c.Sampling.TopK != 40 {
			t.Errorf("saved %+v", *c)
		}
	})
	// The form's limits are package sample's.
	f := samplingFields()
	if f[0].hi != sample.MaxTemperature || f[3].lo != sample.MinPenalty || f[4].hi != sample.MaxPenalty {
		t.Errorf("form limits %+v differ from package sample's", f)
	}
}

// A chat restored at start opens at its latest message, and the open chat
// is highlighted in the list.
func TestRestoredChatOpensAtLatest(t *testing.T) {
	dir := t.TempDir()
	{
		h := newHarness(t, newFakeEngine(), dir, nil)
		h.ui(func() {
			other, _ := h.a.store.CreateConversation("Older chat", "", history.DefaultSampling())
			_ = other
			conv, err := h.a.store.CreateConversation("Long chat", "", history.DefaultSampling())
			if err != nil {
				t.Fatal(err)
			}
			parent := int64(0)
			for i := range 30 {
				role := history.RoleUser
				if i%2 == 1 {
					role = history.RoleAssistant
				}
				m, err := h.a.store.AddMessage(history.Message{Conversation: conv.ID, Parent: parent, Role: role,
					Content: fmt.Sprintf("Message %d. %s", i, strings.Repeat("Words that wrap across the bubble. ", 8)), Status: history.StatusDone})
				if err != nil {
					t.Fatal(err)
				}
				parent = m.ID
			}
		})
		h.close()
	}
	h := newHarness(t, newFakeEngine(), dir, nil)
	h.ui(func() { h.a.show("chat") })
	time.Sleep(50 * time.Millisecond)
	h.ui(func() {
		c := h.a.chat
		if c.conv == nil || c.conv.Title != "Long chat" {
			t.Fatalf("opened %+v", c.conv)
		}
		if !atBottom(c) {
			t.Errorf("restored chat shows offset %v of %v: not its latest message", c.scroll.Offset.Y, c.scroll.Content.MinSize().Height-c.scroll.Size().Height)
		}
		if got := c.selected(); got != 0 {
			t.Errorf("the open chat is not highlighted (selected row %d, want 0)", got)
		}
		c.open(c.convs[1].ID)
		if got := c.selected(); got != 1 {
			t.Errorf("after opening the second chat the selected row is %d", got)
		}
	})
}

// Esc stops a reply, Ctrl+N starts a chat, Ctrl+F searches, Ctrl+, opens
// the settings, and Up in the empty message box edits the last message;
// text boxes pass the shortcuts on.
func TestKeyboardShortcuts(t *testing.T) {
	eng := newFakeEngine()
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() { h.a.show("chat") })
	h.send("first question")
	ctrl := func(k fyne.KeyName) fyne.Shortcut {
		return &desktop.CustomShortcut{KeyName: k, Modifier: fyne.KeyModifierShortcutDefault}
	}

	// Up in the empty message box edits the last user message.
	h.ui(func() {
		h.a.chat.input.SetText("")
		h.a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyUp})
		var e *widget.Entry
		walk(h.topDialog(), func(o fyne.CanvasObject) {
			if x, ok := o.(*widget.Entry); ok {
				e = x
			}
		})
		if e == nil || e.Text != "first question" {
			t.Fatalf("Up did not open the last message for editing (dialog entry %v)", e)
		}
		h.closeDialogs()
		// With text in the box, Up moves the cursor as usual.
		h.a.chat.input.SetText("draft")
		h.a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyUp})
		if h.topDialog() != nil {
			t.Error("Up with a draft opened a dialog")
		}
	})

	// Ctrl+F from the message box focuses the search box; Ctrl+, from
	// the search box opens the settings; Ctrl+N from anywhere a new chat.
	h.ui(func() {
		h.a.win.Canvas().Focus(h.a.chat.input)
		h.a.chat.input.TypedShortcut(ctrl(fyne.KeyF))
		if h.a.win.Canvas().Focused() != h.a.chat.search {
			t.Errorf("Ctrl+F focused %T, want the search box", h.a.win.Canvas().Focused())
		}
		h.a.chat.search.TypedShortcut(ctrl(fyne.KeyComma))
		if h.a.screen != "settings" {
			t.Errorf("Ctrl+, shows %q, want settings", h.a.screen)
		}
		h.a.shortcut(ctrl(fyne.KeyN))
		if h.a.screen != "chat" || h.a.chat.conv != nil || h.a.chat.selected() != -1 {
			t.Errorf("Ctrl+N: screen %q, conversation %v, row %d", h.a.screen, h.a.chat.conv, h.a.chat.selected())
		}
		// Ordinary shortcuts still reach the text box.
		h.a.chat.input.SetText("copy me")
		h.a.chat.input.TypedShortcut(&fyne.ShortcutSelectAll{})
		if h.a.chat.input.SelectedText() != "copy me" {
			t.Errorf("Ctrl+A in the message box selected %q", h.a.chat.input.SelectedText())
		}
		h.a.chat.input.SetText("")
	})

	// Esc stops a reply that is being written.
	eng.step = make(chan struct{})
	eng.reply = func(string) []string { return []string{"one ", "two ", "three"} }
	h.ui(func() { h.a.chat.submit("count") })
	eng.step <- struct{}{}
	h.waitFor("the first piece", func() bool {
		return len(h.a.chat.bubbles) == 2 && strings.Contains(richText(h.a.chat.bubbles[1].text), "one")
	})
	h.ui(func() { h.a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyEscape}) })
	h.waitReply()
	if msgs := h.messages(); msgs[len(msgs)-1].Status != history.StatusStopped {
		t.Errorf("after Esc the reply is %+v", msgs[len(msgs)-1])
	}
}

// Without a desktop portal the file dialogs are Fyne's, nearly as large as
// the window; the toolkit's "Getting favorite locations" message is kept
// out of the log.
func TestFileDialogs(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	var logged bytes.Buffer
	log.SetOutput(&quietLog{w: &logged}) // as Run does
	defer log.SetOutput(os.Stderr)
	// Every file chooser of the app goes through App.openFile/saveFile.
	for _, tc := range []struct {
		name string
		open func()
	}{
		{"import a model", func() { h.a.models.importDialog() }},
		{"choose a tagger", func() { h.a.show("audio"); h.a.audio.chooseModel() }},
		{"import a recording", func() { h.a.show("audio"); h.a.audio.importDialog() }},
		{"export a chat", func() {
			conv, err := h.a.store.CreateConversation("Owls", "", history.DefaultSampling())
			if err != nil {
				t.Fatal(err)
			}
			h.a.chat.open(conv.ID)
			h.a.show("chat")
			h.a.chat.exportDialog()
			test.Tap(buttons(h.topDialog(), "Choose file…")[0]) // the format's dialog
		}},
		{"export tags", func() {
			r, err := h.a.store.AddRecording(history.Recording{Name: "Garden", Path: filepath.Join(h.dir, "garden.wav")})
			if err != nil {
				t.Fatal(err)
			}
			h.a.show("audio")
			h.a.audio.cur = &r
			h.a.audio.exportDialog()
			test.Tap(buttons(h.topDialog(), "Choose file…")[0])
		}},
	} {
		h.ui(func() {
			h.closeDialogs()
			tc.open()
			d := h.topDialog()
			if d == nil {
				t.Fatalf("%s: no file dialog", tc.name)
			}
			win := h.a.win.Canvas().Size()
			if s := d.Size(); s.Width < 0.85*win.Width || s.Height < 0.85*win.Height {
				t.Errorf("%s: file dialog %v in a %v window: too small", tc.name, s, win)
			}
		})
	}

	if strings.Contains(logged.String(), "favorite") {
		t.Errorf("the file dialog logged:\n%s", logged.String())
	}
	var out strings.Builder
	q := &quietLog{w: &out}
	for _, line := range []string{
		"2026/12/03 12:00:00 Fyne error:  Getting favorite locations\n",
		"2026/12/03 12:00:00   Cause: this computer does not define a MUSIC folder\n",
		"2026/12/03 12:00:00   At: /root/go/pkg/mod/fyne.io/fyne/v2@v2.7.1/dialog/file.go:396\n",
		"2026/12/03 12:00:01 Fyne error:  Something else\n",
		"2026/12/03 12:00:01   Cause: a real problem\n",
		"2026/12/03 12:00:02 Fyne error:  Preferences load error:\n",
		"2026/12/03 12:00:02   Cause: EOF\n",
		"2026/12/03 12:00:02   At: /root/go/pkg/mod/fyne.io/fyne/v2@v2.7.1/app/preferences.go:103\n",
		"2026/12/03 12:00:03 Fyne error:  Preferences load error:\n",
		"2026/12/03 12:00:03   Cause: invalid character 'x'\n",
	} {
		if n, err := q.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := out.String(); strings.Contains(got, "favorite") || strings.Contains(got, "MUSIC") || strings.Contains(got, "EOF") ||
		strings.Count(got, "Preferences load error") != 1 || !strings.Contains(got, "invalid character") ||
		!strings.Contains(got, "Something else") || !strings.Contains(got, "a real problem") {
		t.Errorf("log kept:\n%s", got)
	}
}
