package ui

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/ui/history"
	"github.com/goose-rwkv/goose/vision"
)

// writePNG writes a w×h image whose top-left pixel is red and returns its path.
func writePNG(t *testing.T, dir, name string, w, h int) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAttachDisabledForTextModel(t *testing.T) {
	h := newHarness(t, newFakeEngine(), "", nil)
	h.ui(func() {
		if !h.a.chat.attach.btn.Disabled() {
			t.Error("attach enabled with no model loaded")
		}
	})
	h.load(tinyModel(t, h.dir))
	h.ui(func() {
		h.a.show("chat")
		b := h.a.chat.attach
		if !b.btn.Disabled() || !b.hint.Visible() {
			t.Errorf("text model: attach disabled=%v hint shown=%v, want disabled with hint", b.btn.Disabled(), b.hint.Visible())
		}
	})
	img := writePNG(t, h.dir, "cat.png", 8, 6)
	var err error
	h.ui(func() { err = h.a.chat.attachImage(img) })
	if err == nil || !strings.Contains(err.Error(), "cannot read images") {
		t.Errorf("attach with a text model: %v, want 'cannot read images'", err)
	}
}

// visionHarness is an app with the fake engine's VisualRWKV-7 model
// loaded and the chat shown.
func visionHarness(t *testing.T) (*harness, *fakeEngine) {
	t.Helper()
	eng := newFakeEngine()
	eng.vision = true
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() { h.a.show("chat") })
	return h, eng
}

// attach attaches the image file at path and waits until it is read.
func (h *harness) attach(path string) {
	h.t.Helper()
	var err error
	h.ui(func() { err = h.a.chat.attachImage(path) })
	if err != nil {
		h.t.Fatalf("attach %s: %v", path, err)
	}
	h.a.chat.attach.wg.Wait()
	h.waitFor("the image to be checked", func() bool { return h.a.chat.attach.inflight == 0 })
}

// pendingNames lists the attached images.
func (h *harness) pendingNames() []string {
	var out []string
	h.ui(func() {
		for _, p := range h.a.chat.attach.pending {
			out = append(out, p.name)
		}
	})
	return out
}

// markerFor is the message line of the image file at path.
func markerFor(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return imageMarker(imageRef{name: filepath.Base(path), key: history.ImageKey(data)})
}

func TestSendWithImage(t *testing.T) {
	h, eng := visionHarness(t)
	h.ui(func() {
		b := h.a.chat.attach
		if b.btn.Disabled() || b.hint.Visible() {
			t.Errorf("vision model: attach disabled=%v hint shown=%v, want enabled", b.btn.Disabled(), b.hint.Visible())
		}
	})

	// Not an image: a dialog naming the file, nothing attached.
	bad := filepath.Join(h.dir, "notes.png")
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.attach(bad)
	if errs := h.errs(); len(errs) != 1 || !strings.Contains(errs[0].Error(), "notes.png") {
		t.Errorf("attach a text file: errors %v, want one naming notes.png", errs)
	}
	if n := h.pendingNames(); len(n) != 0 {
		t.Errorf("attached %v", n)
	}

	img := writePNG(t, h.dir, "cat.png", 8, 6)
	h.attach(img)
	h.ui(func() {
		b := h.a.chat.attach
		if len(b.pending) != 1 || b.pending[0].name != "cat.png" || len(b.chips.Objects) != 1 {
			t.Errorf("attached %d images, %d chips; want cat.png with its thumbnail", len(b.pending), len(b.chips.Objects))
		}
	})
	h.send("What is this?")

	imgs := eng.allImages()
	if len(imgs) != 1 {
		t.Fatalf("%d images fed, want 1", len(imgs))
	}
	got := imgs[0]
	if b := got.img.Bounds(); b.Dx() != 8 || b.Dy() != 6 {
		t.Errorf("image %v, want 8×6", b)
	}
	if r, _, _, _ := got.img.At(0, 0).RGBA(); r>>8 != 255 {
		t.Errorf("top-left red %d, want 255 (decoded from the stored bytes)", r>>8)
	}
	if got.question != "What is this?" {
		t.Errorf("question %q", got.question)
	}
	if p := eng.allPrompts(); len(p) != 1 || p[0] != "" {
		t.Errorf("generate prompts %q, want one empty (the image turn is prefilled)", p)
	}
	if th := h.thread(); th != markerFor(t, img)+"\nWhat is this?|Reply number I." {
		t.Errorf("thread %q", th)
	}
	h.ui(func() {
		if len(h.a.chat.attach.pending) != 0 || len(h.a.chat.attach.chips.Objects) != 0 {
			t.Error("attachment not cleared after sending")
		}
	})
	// The bubble shows the image as a thumbnail, not its marker line.
	h.waitFor("the thumbnail", func() bool {
		b := h.a.chat.bubbles[0]
		if b.images == nil || len(b.images.Objects) != 1 {
			return false
		}
		_, ok := b.images.Objects[0].(*fyne.Container)
		return ok
	})
	h.ui(func() {
		if txt := h.a.chat.bubbles[0].text.String(); txt != "What is this?" {
			t.Errorf("user bubble text %q, want the question alone", txt)
		}
	})

	// A text follow-up continues from the stored state without an image.
	h.send("And now?")
	if n := len(eng.allImages()); n != 1 {
		t.Errorf("%d images fed after a text message, want 1", n)
	}
	if p := eng.allPrompts(); len(p) != 2 || p[1] != "User: And now?\n\nAssistant:" {
		t.Errorf("prompts %q", p)
	}
}

// TestSeveralImages sends two images in one message and one in the next.
func TestSeveralImages(t *testing.T) {
	h, eng := visionHarness(t)
	a, b := writePNG(t, h.dir, "a.png", 4, 3), writePNG(t, h.dir, "b.png", 5, 7)
	h.attach(a)
	h.attach(b)
	h.send("Compare them.")
	c := writePNG(t, h.dir, "c.png", 2, 2)
	h.attach(c)
	h.send("And this one?")
	imgs := eng.allImages()
	if len(imgs) != 3 || imgs[1].img.Bounds().Dx() != 5 || imgs[2].question != "And this one?" {
		t.Fatalf("images fed: %d", len(imgs))
	}
	if p := eng.allPrompts(); len(p) != 2 || p[1] != "" {
		t.Errorf("prompts %q", p)
	}
}

func TestRemoveAttachment(t *testing.T) {
	h, eng := visionHarness(t)
	h.attach(writePNG(t, h.dir, "dog.png", 4, 4))
	h.ui(func() {
		// The chip's last object is its remove button.
		chip := h.a.chat.attach.chips.Objects[0].(*fyne.Container)
		test.Tap(chip.Objects[2].(fyne.Tappable))
		if len(h.a.chat.attach.pending) != 0 || len(h.a.chat.attach.chips.Objects) != 0 {
			t.Error("remove did not clear the attachment")
		}
	})
	h.send("Hi")
	if n := len(eng.allImages()); n != 0 {
		t.Errorf("%d images sent after removing the attachment", n)
	}
}

// TestDropAndPasteImage attaches images dropped on the window and pasted
// (a file path, a file:// URI, a data: URL); pasting other text still
// types it.
func TestDropAndPasteImage(t *testing.T) {
	h, eng := visionHarness(t)
	h.ui(func() { h.a.show("models") })
	dropped := writePNG(t, h.dir, "dropped.png", 3, 3)
	h.ui(func() {
		h.a.chat.dropped(fyne.NewPos(10, 10), []fyne.URI{storage.NewFileURI(dropped), storage.NewFileURI(filepath.Join(h.dir, "notes.txt"))})
		if h.a.screen != "chat" {
			t.Errorf("a dropped image shows %q, want the chat", h.a.screen)
		}
	})
	h.a.chat.attach.wg.Wait()
	h.waitFor("the dropped image", func() bool { return len(h.a.chat.attach.pending) == 1 })

	paste := func(text string) {
		h.ui(func() {
			h.a.fa.Clipboard().SetContent(text)
			h.a.chat.input.TypedShortcut(&fyne.ShortcutPaste{Clipboard: h.a.fa.Clipboard()})
		})
		h.a.chat.attach.wg.Wait()
	}
	pasted := writePNG(t, h.dir, "pasted.png", 3, 3)
	paste(pasted)
	paste(storage.NewFileURI(writePNG(t, h.dir, "uri.png", 3, 3)).String())
	raw, _ := os.ReadFile(pasted)
	paste("data:image/png;base64," + base64.StdEncoding.EncodeToString(raw))
	h.waitFor("the pasted images", func() bool { return len(h.a.chat.attach.pending) == 4 })
	if n := h.pendingNames(); strings.Join(n, ",") != "dropped.png,pasted.png,uri.png,pasted image" {
		t.Errorf("attached %v", n)
	}
	paste("just words")
	h.ui(func() {
		if h.a.chat.input.Text != "just words" {
			t.Errorf("pasted text %q, want it typed", h.a.chat.input.Text)
		}
	})
	h.send("")
	if n := len(eng.allImages()); n != 4 {
		t.Errorf("%d images fed, want 4", n)
	}
}

// TestBadImages: unreadable, truncated and enormous images give a dialog
// naming the file and stating the limits; the chat is untouched.
func TestBadImages(t *testing.T) {
	h, _ := visionHarness(t)
	good := writePNG(t, h.dir, "good.png", 30, 20)
	raw, _ := os.ReadFile(good)
	trunc := filepath.Join(h.dir, "truncated.png")
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	// A header that declares 40000×40000 pixels.
	huge := filepath.Join(h.dir, "huge.png")
	hdr := append([]byte(nil), raw[:33]...)
	binary.BigEndian.PutUint32(hdr[16:], 40000)
	binary.BigEndian.PutUint32(hdr[20:], 40000)
	binary.BigEndian.PutUint32(hdr[29:], crc32.ChecksumIEEE(hdr[12:29]))
	os.WriteFile(huge, hdr, 0o644)
	for _, p := range []string{trunc, huge} {
		h.attach(p)
	}
	errs := h.errs()
	if len(errs) != 2 {
		t.Fatalf("errors %v, want two", errs)
	}
	for i, name := range []string{"truncated.png", "huge.png"} {
		if msg := errs[i].Error(); !strings.Contains(msg, name) || !strings.Contains(msg, "megapixels") {
			t.Errorf("error %q does not name %s and the limits", msg, name)
		}
	}
	if n := h.pendingNames(); len(n) != 0 {
		t.Errorf("attached %v", n)
	}
	// A directory is not an image either.
	var err error
	h.ui(func() { err = h.a.chat.attachImage(h.dir) })
	if err == nil {
		t.Error("a directory was accepted")
	}
}

// TestImageAfterRestart closes the app and opens it again: the image
// message shows its thumbnail, and regenerating or editing it (with no
// stored state for another model) feeds the image again, read from the
// history store.
func TestImageAfterRestart(t *testing.T) {
	dir := t.TempDir()
	model := tinyModel(t, dir)
	eng := newFakeEngine()
	eng.vision = true
	h := newHarness(t, eng, dir, nil)
	h.load(model)
	h.ui(func() { h.a.show("chat") })
	img := writePNG(t, dir, "cat.png", 8, 6)
	h.attach(img)
	h.send("What is this?")
	h.send("Tell me more.")
	h.close()
	os.Remove(img) // the image now lives only in the history

	eng2 := newFakeEngine()
	eng2.vision = true
	h2 := newHarness(t, eng2, dir, nil)
	h2.ui(func() { h2.a.start() })
	h2.waitFor("the last model to load", func() bool { return h2.a.model != nil })
	h2.ui(func() { h2.a.chat.open(h2.a.chat.convs[0].ID) })
	h2.waitFor("the thumbnail after the restart", func() bool {
		b := h2.a.chat.bubbles[0]
		if b.images == nil || len(b.images.Objects) != 1 {
			return false
		}
		box, ok := b.images.Objects[0].(*fyne.Container)
		if !ok {
			return false
		}
		ci, ok := box.Objects[0].(*canvas.Image)
		return ok && ci.Image != nil && ci.Image.Bounds().Dx() == 8
	})
	// Regenerate the first reply: the state before the image message is
	// the empty one, so the image is fed again.
	h2.ui(func() { h2.a.chat.regenerate(h2.a.chat.thread[1]) })
	h2.waitReply()
	if imgs := eng2.allImages(); len(imgs) != 1 || imgs[0].img.Bounds().Dx() != 8 || imgs[0].question != "What is this?" {
		t.Fatalf("regenerate after restart fed %d images", len(imgs))
	}
	// Another model's engine: continuing re-reads the branch, images
	// included.
	h2.ui(func() {
		h2.a.model.StateKey = "other-model"
		h2.a.chat.closeSession()
	})
	h2.send("Once more.")
	imgs := eng2.allImages()
	if len(imgs) != 2 {
		t.Fatalf("re-reading the branch fed %d images, want 2 in all", len(imgs))
	}
	p := eng2.allPrompts()
	if last := p[len(p)-1]; !strings.HasPrefix(last, " Reply number I") || !strings.HasSuffix(last, "User: Once more.\n\nAssistant:") {
		t.Errorf("re-read prompt %q", last)
	}
	// Editing the image message keeps its image.
	h2.ui(func() { h2.a.chat.edit(h2.a.chat.thread[0], h2.a.chat.thread[0].Content+" Briefly.") })
	h2.waitReply()
	if imgs := eng2.allImages(); len(imgs) != 3 || imgs[2].question != "What is this? Briefly." {
		t.Errorf("edit fed %d images", len(imgs))
	}
}

// TestStopWhileEncoding stops a reply while its image is being encoded:
// the reply ends stopped, without an error, and the chat goes on.
func TestStopWhileEncoding(t *testing.T) {
	h, eng := visionHarness(t)
	eng.imageGate = make(chan struct{})
	h.attach(writePNG(t, h.dir, "slow.png", 4, 4))
	h.ui(func() {
		test.Type(h.a.chat.input, "What?")
		h.a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	h.waitFor("the encoding progress", func() bool { return strings.Contains(h.a.chat.speed.Text, "Encoding") })
	start := time.Now()
	h.ui(func() { h.a.chat.stop() })
	h.waitReply()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stop took %v", d)
	}
	msgs := h.messages()
	if len(msgs) != 2 || msgs[1].Status != history.StatusStopped {
		t.Fatalf("after stop: %+v", msgs)
	}
	if errs := h.errs(); len(errs) != 0 {
		t.Errorf("stop showed errors %v", errs)
	}
	close(eng.imageGate)
	h.ui(func() { h.a.chat.regenerate(h.a.chat.thread[1]) })
	h.waitReply()
	if n := len(eng.allImages()); n != 1 {
		t.Errorf("%d images fed after regenerating, want 1", n)
	}
}

func TestSplitImages(t *testing.T) {
	k := strings.Repeat("ab", 32)
	tests := []struct {
		in       string
		refs     []imageRef
		question string
	}{
		{"[image: a.png #" + k + "]\nWhat?", []imageRef{{"a.png", k}}, "What?"},
		{"[image: my cat.jpg #" + k + "]\n[image: b #" + k + "]", []imageRef{{"my cat.jpg", k}, {"b", k}}, ""},
		{"[image: a.png]\nWhat?", nil, "[image: a.png]\nWhat?"}, // no key: text
		{"hello [image: a.png #" + k + "]", nil, "hello [image: a.png #" + k + "]"},
		{"plain", nil, "plain"},
	}
	for _, tt := range tests {
		refs, q := splitImages(tt.in)
		if !slices.Equal(refs, tt.refs) || q != tt.question {
			t.Errorf("splitImages(%q) = %v, %q; want %v, %q", tt.in, refs, q, tt.refs, tt.question)
		}
	}
	r := imageRef{"x.png", k}
	if refs, _ := splitImages(imageMarker(r)); len(refs) != 1 || refs[0] != r {
		t.Errorf("marker round trip: %v", refs)
	}
}

// fakeSource lists tensor names for vision.IsCheckpoint.
type fakeSource []string

func (s fakeSource) Tensors() []checkpoint.Info {
	var out []checkpoint.Info
	for _, n := range s {
		out = append(out, checkpoint.Info{Name: n})
	}
	return out
}

func (s fakeSource) Lookup(name string) (checkpoint.Info, bool) {
	for _, n := range s {
		if n == name {
			return checkpoint.Info{Name: n}, true
		}
	}
	return checkpoint.Info{}, false
}

func (s fakeSource) Bytes(string) ([]byte, error) { return nil, errors.New("no data") }

func TestIsVisualRWKV(t *testing.T) {
	tests := []struct {
		name string
		src  fakeSource
		want bool
	}{
		{"text model", fakeSource{"emb.weight", "head.weight"}, false},
		{"visual", fakeSource{"rwkv.emb.weight", "vit.dino_featurizer.cls_token", "proj.weight"}, true},
		{"no towers", fakeSource{"rwkv.emb.weight", "proj.weight"}, false},
		{"towers only", fakeSource{"vit.dino_featurizer.cls_token"}, false},
	}
	for _, tt := range tests {
		if got := vision.IsCheckpoint(tt.src); got != tt.want {
			t.Errorf("%s: vision.IsCheckpoint = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCoreEngineTextModelRejectsImages(t *testing.T) {
	e := NewCoreEngine()
	defer e.Unload()
	info, err := e.Load(context.Background(), tinyModel(t, t.TempDir()), LoadOptions{Backend: "cpu", Threads: 1}, func(float64) {})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if info.Vision {
		t.Error("text model reported as VisualRWKV")
	}
	ch, err := e.NewChat()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	err = ch.PrefillImages(context.Background(), []image.Image{image.NewRGBA(image.Rect(0, 0, 2, 2))}, "what?")
	if err == nil || !strings.Contains(err.Error(), "cannot read images") {
		t.Errorf("PrefillImages on a text model: %v, want 'cannot read images'", err)
	}
}

// fakeClipboard is a clipboard holding a picture copied as an image.
type fakeClipboard struct {
	data []byte
	err  error
}

func (f fakeClipboard) Image(context.Context) ([]byte, bool, error) {
	return f.data, len(f.data) > 0, f.err
}

// TestPasteBitmap: a picture copied as an image (no text on the clipboard)
// is attached by Ctrl+V; an empty clipboard does nothing, and a picture too
// large says so in a dialog.
func TestPasteBitmap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clip    fakeClipboard
		pending int
		errs    int
	}{
		{"empty", fakeClipboard{}, 0, 0},
		{"png", fakeClipboard{}, 1, 0},
		{"error", fakeClipboard{err: errors.New("the clipboard's image is over 64 MiB")}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := newFakeEngine()
			eng.vision = true
			dir := t.TempDir()
			clip := tc.clip
			if tc.name == "png" {
				clip.data, _ = os.ReadFile(writePNG(t, dir, "copied.png", 4, 3))
			}
			h := newHarness(t, eng, dir, nil, func(o *Options) { o.Clipboard = clip })
			h.load(tinyModel(t, h.dir))
			h.ui(func() {
				h.a.show("chat")
				h.a.fa.Clipboard().SetContent("")
				h.a.chat.input.TypedShortcut(&fyne.ShortcutPaste{Clipboard: h.a.fa.Clipboard()})
			})
			h.a.chat.attach.wg.Wait()
			h.ui(func() {
				if n := len(h.a.chat.attach.pending); n != tc.pending {
					t.Errorf("%d images attached, want %d", n, tc.pending)
				}
				if h.a.chat.input.Text != "" {
					t.Errorf("the composer holds %q after pasting a picture", h.a.chat.input.Text)
				}
			})
			if n := len(h.errs()); n != tc.errs {
				t.Errorf("%d error dialogs, want %d", n, tc.errs)
			}
		})
	}
}

func TestPickImageType(t *testing.T) {
	for _, tc := range []struct{ types, want string }{
		{"TARGETS\nimage/jpeg\nimage/png\ntext/plain", "image/png"},
		{"image/jpeg\n", "image/jpeg"},
		{"text/plain\nUTF8_STRING", ""},
		{"", ""},
		{"image/bmp image/gif", "image/gif"},
	} {
		if got := pickImageType(tc.types); got != tc.want {
			t.Errorf("pickImageType(%q) = %q, want %q", tc.types, got, tc.want)
		}
	}
}
