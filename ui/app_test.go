package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/test"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/ui/history"
)

// tinyModel writes a random-weight RWKV-7 checkpoint with the full World
// vocabulary (so the real tokenizer fits) and returns its path.
func tinyModel(t testing.TB, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "tiny-rwkv7.safetensors")
	cfg := core.Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 16, GateLoRA: 16}
	if err := core.WriteRandom(p, cfg, 1); err != nil {
		t.Fatalf("WriteRandom: %v", err)
	}
	return p
}

func TestFirstRunShowsWelcome(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	if h.a.screen != "welcome" {
		t.Fatalf("first screen %q, want welcome", h.a.screen)
	}
	// Sending without a model explains why instead of doing nothing.
	h.ui(func() { h.a.show("chat"); h.a.chat.submit("hello") })
	if errs := h.errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no model is loaded") {
		t.Errorf("errors %v, want 'no model is loaded'", errs)
	}
	if !h.dialogShown() {
		t.Error("no error dialog")
	}
}

func TestSendStreamsReply(t *testing.T) {
	eng := newFakeEngine()
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() { h.a.show("chat") })

	// Shift+Enter inserts a newline; Enter sends.
	h.ui(func() {
		in := h.a.chat.input
		test.Type(in, "Hello")
		in.KeyDown(&fyne.KeyEvent{Name: desktop.KeyShiftLeft})
		in.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		in.KeyUp(&fyne.KeyEvent{Name: desktop.KeyShiftLeft})
		test.Type(in, "there")
		if in.Text != "Hello\nthere" {
			t.Errorf("composer text %q after Shift+Enter", in.Text)
		}
		if h.a.chat.genDone != nil {
			t.Error("Shift+Enter sent the message")
		}
		in.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	h.waitReply()
	if got := h.thread(); got != "Hello\nthere|Reply number I." {
		t.Fatalf("thread %q", got)
	}
	msgs := h.messages()
	if msgs[1].Status != history.StatusDone || msgs[1].Tokens != 4 || !msgs[1].HasState {
		t.Errorf("reply %+v: want done, 4 tokens, state stored", msgs[1])
	}
	h.ui(func() {
		if h.a.chat.input.Text != "" {
			t.Errorf("composer not cleared: %q", h.a.chat.input.Text)
		}
		if got := h.a.chat.bubbles[1].caption.Text; got != "4 tokens · 42.0 tok/s" {
			t.Errorf("reply caption %q", got)
		}
		if len(h.a.chat.convs) != 1 || h.a.chat.convs[0].Title != "Hello there" {
			t.Errorf("conversation list %+v", h.a.chat.convs)
		}
		if got := richText(h.a.chat.bubbles[1].text); !strings.Contains(got, "Reply number I.") {
			t.Errorf("bubble shows %q", got)
		}
	})
	// Copy puts the message's text on the clipboard.
	h.ui(func() { h.a.chat.copyMessage(h.a.chat.thread[1]) })
	if got := h.a.fa.Clipboard().Content(); got != "Reply number I." {
		t.Errorf("clipboard %q after copy", got)
	}
	// The first prompt is the whole chat format; the second continues from
	// the stored state with only the new turn.
	h.send("Again")
	prompts := eng.allPrompts()
	if len(prompts) != 2 || prompts[0] != "User: Hello\nthere\n\nAssistant:" || prompts[1] != "User: Again\n\nAssistant:" {
		t.Errorf("prompts %q", prompts)
	}
	if got := h.thread(); got != "Hello\nthere|Reply number I.|Again|Reply number II." {
		t.Errorf("thread %q", got)
	}
}

// TestStop holds a reply mid-stream, presses Stop and checks the reply
// ends at once with what was shown kept.
func TestStop(t *testing.T) {
	eng := newFakeEngine()
	eng.step = make(chan struct{})
	eng.reply = func(string) []string { return []string{"one ", "two ", "three ", "four"} }
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() { h.a.chat.submit("count") })
	eng.step <- struct{}{}
	eng.step <- struct{}{}
	h.waitFor("two pieces on screen", func() bool {
		return len(h.a.chat.bubbles) == 2 && strings.Contains(richText(h.a.chat.bubbles[1].text), "one two")
	})
	// Switching to another chat and back while the reply streams keeps it
	// streaming into view.
	h.ui(func() {
		id := h.a.chat.conv.ID
		h.a.chat.newChat()
		h.a.chat.open(id)
	})
	eng.step <- struct{}{}
	h.waitFor("the third piece after switching back", func() bool {
		return len(h.a.chat.bubbles) == 2 && strings.Contains(richText(h.a.chat.bubbles[1].text), "one two three")
	})
	h.ui(func() {
		if !strings.HasSuffix(h.a.chat.speed.Text, " tok/s") {
			t.Errorf("live speed label %q while streaming", h.a.chat.speed.Text)
		}
		if !h.a.chat.stopBtn.Visible() || h.a.chat.send.Visible() {
			t.Error("Stop button not shown while generating")
		}
		test.Tap(h.a.chat.stopBtn)
	})
	h.waitReply()
	msgs := h.messages()
	if len(msgs) != 2 || msgs[1].Content != "one two three " || msgs[1].Status != history.StatusStopped {
		t.Fatalf("after Stop: %+v", msgs)
	}
	h.ui(func() {
		if h.a.chat.stopBtn.Visible() || !h.a.chat.send.Visible() {
			t.Error("Send button not back after Stop")
		}
	})
	// The stored state ends the turn, so the conversation continues.
	eng.step = nil
	eng.reply = func(string) []string { return []string{"ok"} }
	h.send("next")
	if p := eng.allPrompts(); p[len(p)-1] != "User: next\n\nAssistant:" {
		t.Errorf("prompt after a stopped reply: %q", p[len(p)-1])
	}
}

func TestRegenerateAndEditKeepBranches(t *testing.T) {
	eng := newFakeEngine()
	n := 0
	eng.reply = func(string) []string { n++; return []string{"answer ", strings.Repeat("*", n)} }
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.send("first question")
	h.send("second question")
	if got := h.thread(); got != "first question|answer *|second question|answer **" {
		t.Fatalf("thread %q", got)
	}

	// Regenerate the last reply: a sibling, and only the user's turn is
	// re-read (from the state stored after the first reply).
	h.ui(func() { h.a.chat.regenerate(h.a.chat.thread[3]) })
	h.waitReply()
	if got := h.thread(); got != "first question|answer *|second question|answer ***" {
		t.Fatalf("after regenerate %q", got)
	}
	if p := eng.allPrompts(); p[len(p)-1] != "User: second question\n\nAssistant:" {
		t.Errorf("regenerate prompt %q", p[len(p)-1])
	}
	h.ui(func() {
		sibs, idx, _ := h.a.store.Siblings(h.a.chat.thread[3].ID)
		if len(sibs) != 2 || idx != 1 {
			t.Errorf("regenerated reply is %d of %d", idx+1, len(sibs))
		}
	})

	// Edit the second question and resend.
	h.ui(func() { h.a.chat.edit(h.a.chat.thread[2], "second question, edited") })
	h.waitReply()
	if got := h.thread(); got != "first question|answer *|second question, edited|answer ****" {
		t.Fatalf("after edit %q", got)
	}

	// The old branch is still reachable with the sibling arrows, as it was
	// last seen (with its regenerated reply).
	h.ui(func() { h.a.chat.switchSibling(h.a.chat.thread[2], -1) })
	if got := h.thread(); got != "first question|answer *|second question|answer ***" {
		t.Fatalf("previous branch %q", got)
	}
	h.ui(func() { h.a.chat.switchSibling(h.a.chat.thread[3], -1) })
	if got := h.thread(); got != "first question|answer *|second question|answer **" {
		t.Fatalf("first reply of the old branch %q", got)
	}
	h.ui(func() { h.a.chat.switchSibling(h.a.chat.thread[2], +1) })
	if got := h.thread(); got != "first question|answer *|second question, edited|answer ****" {
		t.Fatalf("back to the edited branch %q", got)
	}
}

// TestHistorySurvivesReopen closes the app and opens it again on the same
// files: the conversation, its branches and its states are there, and
// continuing uses the stored state instead of re-reading the chat.
func TestHistorySurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t, dir)
	eng := newFakeEngine()
	h := newHarness(t, eng, dir, nil)
	h.load(model)
	h.send("remember me")
	h.ui(func() { h.a.chat.rename(h.a.chat.conv.ID, "Memory test") })
	h.close()

	eng2 := newFakeEngine()
	h2 := newHarness(t, eng2, dir, nil)
	if h2.a.screen != "chat" {
		t.Errorf("second start shows %q, want chat (the last model exists)", h2.a.screen)
	}
	h2.ui(func() { h2.a.start() }) // reloads the last model
	h2.waitFor("the last model to load", func() bool { return h2.a.model != nil })
	h2.ui(func() {
		if len(h2.a.chat.convs) != 1 || h2.a.chat.convs[0].Title != "Memory test" {
			t.Fatalf("conversations after reopen: %+v", h2.a.chat.convs)
		}
	})
	if got := h2.thread(); got != "remember me|Reply number I." {
		t.Fatalf("thread after reopen %q", got)
	}
	h2.send("and now?")
	if p := eng2.allPrompts(); len(p) != 1 || p[0] != "User: and now?\n\nAssistant:" {
		t.Errorf("continuing after reopen re-read the chat: prompts %q", p)
	}
	if got := h2.thread(); got != "remember me|Reply number I.|and now?|Reply number II." {
		t.Errorf("thread %q", got)
	}
}

// TestConversationList covers new, rename, search, delete, settings,
// export and import.
func TestConversationList(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	h.load(tinyModel(t, h.dir))
	h.send("about penguins")
	h.ui(func() { h.a.chat.newChat() })
	h.send("about owls")
	h.ui(func() {
		c := h.a.chat
		if len(c.convs) != 2 {
			t.Fatalf("%d conversations", len(c.convs))
		}
		c.search.SetText("PENGUIN")
		if len(c.convs) != 1 || c.convs[0].Title != "about penguins" {
			t.Errorf("search: %+v", c.convs)
		}
		c.search.SetText("")
		c.rename(c.conv.ID, "Owls")
		if c.title.Text != "Owls" || c.convs[0].Title != "Owls" {
			t.Errorf("rename: title %q, list %+v", c.title.Text, c.convs)
		}
		conv := *c.conv
		conv.SystemPrompt = "Answer like a pirate."
		conv.Sampling.Temperature = 0.2
		c.saveSettings(conv)
		got, _ := h.a.store.Conversation(conv.ID)
		if got.SystemPrompt != "Answer like a pirate." || got.Sampling.Temperature != 0.2 {
			t.Errorf("settings not saved: %+v", got)
		}
		if got, _ := h.a.store.Thread(conv.ID); got[1].HasState {
			t.Error("states kept after the system prompt changed")
		}
		var md, js bytes.Buffer
		if err := c.export(conv.ID, ".md", &md); err != nil || !strings.Contains(md.String(), "## User\n\nabout owls") {
			t.Errorf("markdown export %v:\n%s", err, md.String())
		}
		if err := c.export(conv.ID, ".json", &js); err != nil {
			t.Fatal(err)
		}
		c.importFrom(bytes.NewReader(js.Bytes()))
		if len(c.convs) != 3 || c.conv.Title != "Owls" || len(c.thread) != 2 {
			t.Errorf("import: %d conversations, open %q with %d messages", len(c.convs), c.conv.Title, len(c.thread))
		}
		c.remove(c.conv.ID)
		if len(c.convs) != 2 || c.conv != nil {
			t.Errorf("delete: %d conversations", len(c.convs))
		}
	})
	// The next message re-reads the branch with the new system prompt.
	h.ui(func() {
		for _, c := range h.a.chat.convs {
			if c.Title == "Owls" {
				h.a.chat.open(c.ID)
			}
		}
	})
	h.send("and eagles?")
	if p := h.eng.(*fakeEngine).allPrompts(); p[len(p)-1] != "System: Answer like a pirate.\n\nUser: about owls\n\nAssistant: Reply number I.\n\nUser: and eagles?\n\nAssistant:" {
		t.Errorf("prompt after a system prompt change: %q", p[len(p)-1])
	}
	if _, err := parseSampling("0.5", "2", "0", "0", "0", "1", "100"); err == nil || !strings.Contains(err.Error(), "top-p") {
		t.Errorf("parseSampling accepted top-p 2: %v", err)
	}
	if s, err := parseSampling("0.7", "0.9", "40", "0.1", "0.2", "0.99", "256"); err != nil || s.TopK != 40 || s.MaxTokens != 256 {
		t.Errorf("parseSampling = %+v, %v", s, err)
	}
}

func TestThinkFolded(t *testing.T) {
	tests := []struct {
		in, think, answer string
		open, ok          bool
	}{
		{"plain answer", "", "plain answer", false, false},
		{"<think>\nhmm, 2+2\n</think>\n\nIt is **4**.", "hmm, 2+2", "It is **4**.", false, true},
		{" <think>still going", "still going", "", true, true},
		{"<thinking> is a tag", "", "<thinking> is a tag", false, false},
	}
	for _, tt := range tests {
		think, answer, open, ok := splitThink(tt.in)
		if think != tt.think || answer != tt.answer || open != tt.open || ok != tt.ok {
			t.Errorf("splitThink(%q) = %q, %q, %v, %v", tt.in, think, answer, open, ok)
		}
	}
	test.NewTempApp(t)
	b := newBubble(history.Message{Role: history.RoleAssistant, Content: "<think>secret plan</think>The answer."}, 1, 0, messageActions{}, false)
	if !b.thinkBox.Visible() || b.thinking.Items[0].Open {
		t.Error("think section not shown folded")
	}
	if got := richText(b.text); got != "The answer." {
		t.Errorf("answer shows %q", got)
	}
}

// richText returns the text a RichText shows.
func richText(rt interface{ String() string }) string { return rt.String() }

// TestImportCorruptShowsError imports a file that is not a model.
func TestImportCorruptShowsError(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	bad := filepath.Join(h.dir, "broken.pth")
	if err := os.WriteFile(bad, []byte("PK\x03\x04 definitely not a real checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.ui(func() { h.a.models.importFile(bad) })
	h.waitFor("the import to finish", func() bool { return !h.a.models.importing })
	errs := h.errs()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "broken.pth") {
		t.Fatalf("errors %v, want one naming broken.pth", errs)
	}
	if !h.dialogShown() {
		t.Error("no error dialog shown")
	}
	if b, _ := os.ReadFile(bad); !bytes.HasPrefix(b, []byte("PK")) {
		t.Error("the user's file changed")
	}
	h.ui(func() {
		if h.a.model != nil {
			t.Error("a model was loaded")
		}
	})
}

func TestImportGoodFileLoadsIt(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	src := tinyModel(t, t.TempDir())
	h.ui(func() { h.a.models.importFile(src) })
	h.waitFor("the model to load", func() bool { return !h.a.models.importing && !h.a.loading && h.a.model != nil })
	h.ui(func() {
		want := filepath.Join(h.a.cfg.ModelsDir, filepath.Base(src))
		if h.a.model.Path != want {
			t.Errorf("loaded %s, want %s", h.a.model.Path, want)
		}
		if h.a.screen != "chat" {
			t.Errorf("after import on the welcome screen: %q, want chat", h.a.screen)
		}
		if !strings.Contains(h.a.status.fallback.Text, "no libcuda.so.1") || !strings.Contains(h.a.status.device.Text, "Test CPU") {
			t.Errorf("status bar: %q / %q", h.a.status.device.Text, h.a.status.fallback.Text)
		}
	})
}

func TestLoadErrorShowsDialog(t *testing.T) {
	eng := newFakeEngine()
	eng.loadErr = os.ErrPermission
	h := newHarness(t, eng, "", nil)
	h.ui(func() { h.a.loadModel(filepath.Join(h.dir, "x.pth")) })
	h.waitFor("the load to fail", func() bool { return !h.a.loading })
	if errs := h.errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "x.pth") || !h.dialogShown() {
		t.Fatalf("errors %v", errs)
	}
}

// modelServer serves a model file with Range support. The first response
// is cut after cut bytes when cut > 0; each body write is throttled when
// slow is set. It records Range headers.
type modelServer struct {
	data   []byte
	cut    int
	slow   bool
	mu     sync.Mutex
	ranges []string
}

func (s *modelServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	cut := s.cut
	s.cut = 0
	s.mu.Unlock()
	w.Header().Set("ETag", `"fixture"`)
	if cut > 0 {
		w.Header().Set("Content-Length", itoa(len(s.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(s.data[:cut])
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	var body = bytes.NewReader(s.data)
	if s.slow {
		http.ServeContent(w, r, "m", time.Unix(0, 0), &slowReader{r: body})
		return
	}
	http.ServeContent(w, r, "m", time.Unix(0, 0), body)
}

func (s *modelServer) rangesSeen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges...)
}

// slowReader delays each read so a test can pause a download midway.
type slowReader struct{ r *bytes.Reader }

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.r.Read(p[:min(len(p), 32<<10)])
}

func (s *slowReader) Seek(off int64, whence int) (int64, error) { return s.r.Seek(off, whence) }

func itoa(n int) string { return strconv.Itoa(n) }

func fixtureCatalog(t *testing.T, url string, data []byte) []catalog.Model {
	sum := sha256.Sum256(data)
	return []catalog.Model{{
		Name: "Fixture 1M", File: "fixture.safetensors", URL: url, Size: int64(len(data)), SizeExact: true,
		SHA256: hex.EncodeToString(sum[:]), Params: 1_000_000, Layers: 2, Embd: 64, Note: "Test model.",
	}}
}

// TestDownloadInterruptedThenResumed downloads a fixture model from an
// httptest server whose first response is cut midway; the download resumes
// with a Range request, is verified, and the model can be loaded. Then a
// second download is paused from the UI and resumed.
func TestDownloadInterruptedThenResumed(t *testing.T) {
	data, err := os.ReadFile(tinyModel(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	srv := &modelServer{data: data, cut: len(data) / 3}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	cat := fixtureCatalog(t, ts.URL+"/fixture.safetensors", data)
	h := newHarness(t, newFakeEngine(), "", cat)
	h.ui(func() { h.a.show("models"); h.a.models.startDownload(cat[0]) })
	h.waitFor("the download to finish", func() bool {
		d := h.a.models.downloads[cat[0].File]
		return d != nil && !d.running
	})
	if errs := h.errs(); len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	dest := filepath.Join(h.dir, "models", cat[0].File)
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded file differs (%v)", err)
	}
	if r := srv.rangesSeen(); len(r) != 2 || r[0] != "" || r[1] != "bytes="+itoa(len(data)/3)+"-" {
		t.Errorf("requests' Range headers %q, want a plain GET then a resume from byte %d", r, len(data)/3)
	}
	// The catalog card now offers Load.
	h.ui(func() {
		if !strings.Contains(test.RenderObjectToMarkup(h.a.models.body), ">Load</text>") {
			t.Error("no Load button after the download")
		}
	})
	h.load(dest)

	// Pause from the UI, then resume.
	os.Remove(dest)
	srv.slow = true
	h.ui(func() { h.a.models.startDownload(cat[0]) })
	h.waitFor("some progress", func() bool {
		d := h.a.models.downloads[cat[0].File]
		return d.prog.Done > int64(len(data))/4
	})
	h.ui(func() { h.a.models.pause(cat[0].File) })
	h.waitFor("the pause", func() bool { return !h.a.models.downloads[cat[0].File].running })
	part, err := os.Stat(dest + ".part")
	if err != nil || part.Size() == 0 || part.Size() >= int64(len(data)) {
		t.Fatalf("partial file after pause: %v", err)
	}
	h.ui(func() {
		if !strings.Contains(test.RenderObjectToMarkup(h.a.models.body), ">Resume</text>") {
			t.Error("no Resume button after pausing")
		}
	})
	srv.slow = false
	h.ui(func() { h.a.models.startDownload(cat[0]) })
	h.waitFor("the resumed download", func() bool { return !h.a.models.downloads[cat[0].File].running })
	if got, _ := os.ReadFile(dest); !bytes.Equal(got, data) {
		t.Fatal("resumed file differs")
	}
	r := srv.rangesSeen()
	if last := r[len(r)-1]; last != "bytes="+itoa(int(part.Size()))+"-" {
		t.Errorf("resume asked %q, want from byte %d", last, part.Size())
	}
	if errs := h.errs(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

func TestDownloadWrongChecksumRejected(t *testing.T) {
	data := bytes.Repeat([]byte("not the model you are looking for "), 1000)
	ts := httptest.NewServer(&modelServer{data: data})
	defer ts.Close()
	cat := fixtureCatalog(t, ts.URL+"/m", data)
	cat[0].SHA256 = strings.Repeat("ab", 32)
	h := newHarness(t, newFakeEngine(), "", cat)
	h.ui(func() { h.a.show("models"); h.a.models.startDownload(cat[0]) })
	h.waitFor("the download to fail", func() bool {
		d := h.a.models.downloads[cat[0].File]
		return d != nil && !d.running
	})
	errs := h.errs()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "sha256 mismatch") || !strings.Contains(errs[0].Error(), cat[0].SHA256) {
		t.Fatalf("errors %v, want a sha256 mismatch naming the expected digest", errs)
	}
	if !h.dialogShown() {
		t.Error("no error dialog")
	}
	for _, p := range []string{"", ".part"} {
		if _, err := os.Stat(filepath.Join(h.dir, "models", cat[0].File+p)); !os.IsNotExist(err) {
			t.Errorf("file %q kept after a checksum failure", cat[0].File+p)
		}
	}
	h.ui(func() {
		if !strings.Contains(test.RenderObjectToMarkup(h.a.models.body), ">Retry</text>") {
			t.Error("no Retry button after the failure")
		}
	})
}

// TestDownloadUnverifiedChecked downloads a catalog entry without a digest
// whose content is not a model: it is rejected by reading its header.
func TestDownloadUnverifiedChecked(t *testing.T) {
	data := bytes.Repeat([]byte("garbage "), 500)
	ts := httptest.NewServer(&modelServer{data: data})
	defer ts.Close()
	cat := fixtureCatalog(t, ts.URL+"/m", data)
	cat[0].SHA256, cat[0].SizeExact = "", false
	h := newHarness(t, newFakeEngine(), "", cat)
	h.ui(func() { h.a.models.startDownload(cat[0]) })
	h.waitFor("the download to end", func() bool { return !h.a.models.downloads[cat[0].File].running })
	if errs := h.errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "not a usable model") {
		t.Fatalf("errors %v", errs)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "models", cat[0].File)); !os.IsNotExist(err) {
		t.Error("unusable download kept")
	}
}

func TestSettingsScreenSaves(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	h.ui(func() {
		h.a.show("settings")
		v := h.a.prefs
		v.backend.SetSelected("cpu")
		v.threads.SetText("3")
		v.theme.SetSelected("dark")
		v.save()
	})
	if errs := h.errs(); len(errs) != 0 {
		t.Fatal(errs)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "settings.json"))
	if err != nil || !strings.Contains(string(b), `"backend": "cpu"`) || !strings.Contains(string(b), `"threads": 3`) || !strings.Contains(string(b), `"theme": "dark"`) {
		t.Fatalf("settings file %s (%v)", b, err)
	}
	h.ui(func() {
		h.a.prefs.threads.SetText("many")
		h.a.prefs.save()
	})
	if errs := h.errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "many") {
		t.Errorf("bad threads: %v", errs)
	}
}

// TestRealEngineChat runs the chat on the Goose engine with a tiny random
// model: the reply streams, its state is stored and the next message
// continues from it.
func TestRealEngineChat(t *testing.T) {
	h := realHarness(t)
	h.load(tinyModel(t, h.dir))
	h.ui(func() {
		if h.a.model.Backend != "cpu" || h.a.model.StateKey == "" || h.a.model.WeightBytes == 0 {
			t.Errorf("model info %+v", h.a.model)
		}
	})
	h.shortChat(24)
	h.ui(func() { h.a.chat.submit("Hello") })
	h.waitReply()
	msgs := h.messages()
	if len(msgs) != 2 || msgs[1].Status != history.StatusDone || msgs[1].Tokens == 0 || !msgs[1].HasState {
		t.Fatalf("reply %+v", msgs)
	}
	h.send("More")
	msgs = h.messages()
	if len(msgs) != 4 || msgs[3].Status != history.StatusDone {
		t.Fatalf("second reply %+v (errors %v)", msgs, h.errs())
	}
}
