package ui

import (
	"context"
	"errors"
	"github.com/goose-rwkv/goose/vision"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/goose-rwkv/goose/core/checkpoint"
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

func TestSendWithImage(t *testing.T) {
	eng := newFakeEngine()
	eng.vision = true
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	h.ui(func() {
		h.a.show("chat")
		b := h.a.chat.attach
		if b.btn.Disabled() || b.hint.Visible() {
			t.Errorf("vision model: attach disabled=%v hint shown=%v, want enabled", b.btn.Disabled(), b.hint.Visible())
		}
	})

	// Not an image: a dialog-worthy error, nothing attached.
	bad := filepath.Join(h.dir, "notes.png")
	if err := os.WriteFile(bad, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	h.ui(func() { err = h.a.chat.attachImage(bad) })
	if err == nil || !strings.Contains(err.Error(), "not a PNG or JPEG") {
		t.Errorf("attach text file: %v, want 'not a PNG or JPEG'", err)
	}

	img := writePNG(t, h.dir, "cat.png", 8, 6)
	h.ui(func() {
		if err := h.a.chat.attachImage(img); err != nil {
			t.Fatalf("attach: %v", err)
		}
		b := h.a.chat.attach
		if !b.chip.Visible() || b.name.Text != "cat.png" {
			t.Errorf("chip shown=%v name %q, want cat.png", b.chip.Visible(), b.name.Text)
		}
	})
	h.send("What is this?")

	imgs := eng.allImages()
	if len(imgs) != 1 {
		t.Fatalf("%d PrefillImage calls, want 1", len(imgs))
	}
	got := imgs[0]
	if b := got.img.Bounds(); b.Dx() != 8 || b.Dy() != 6 {
		t.Errorf("image %v, want 8×6", b)
	}
	if r, _, _, _ := got.img.At(0, 0).RGBA(); r>>8 != 255 {
		t.Errorf("top-left red %d, want 255 (decoded from the file)", r>>8)
	}
	if got.question != "What is this?" {
		t.Errorf("question %q", got.question)
	}
	if p := eng.allPrompts(); len(p) != 1 || p[0] != "" {
		t.Errorf("generate prompts %q, want one empty (the image turn is prefilled)", p)
	}
	if th := h.thread(); th != "[image: cat.png]\nWhat is this?|Reply number I." {
		t.Errorf("thread %q", th)
	}
	h.ui(func() {
		if h.a.chat.attach.path != "" || h.a.chat.attach.chip.Visible() {
			t.Error("attachment not cleared after sending")
		}
	})

	// A text follow-up continues from the stored state without an image.
	h.send("And now?")
	if n := len(eng.allImages()); n != 1 {
		t.Errorf("%d PrefillImage calls after a text message, want 1", n)
	}
	if p := eng.allPrompts(); len(p) != 2 || p[1] != "User: And now?\n\nAssistant:" {
		t.Errorf("prompts %q", p)
	}
}

func TestRemoveAttachment(t *testing.T) {
	eng := newFakeEngine()
	eng.vision = true
	h := newHarness(t, eng, "", nil)
	h.load(tinyModel(t, h.dir))
	img := writePNG(t, h.dir, "dog.png", 4, 4)
	h.ui(func() {
		h.a.show("chat")
		if err := h.a.chat.attachImage(img); err != nil {
			t.Fatalf("attach: %v", err)
		}
		// The chip's last object is its remove button.
		remove := h.a.chat.attach.chip.Objects[2].(fyne.Tappable)
		test.Tap(remove)
		if h.a.chat.attach.path != "" || h.a.chat.attach.chip.Visible() {
			t.Error("remove did not clear the attachment")
		}
	})
	h.send("Hi")
	if n := len(eng.allImages()); n != 0 {
		t.Errorf("%d images sent after removing the attachment", n)
	}
}

func TestSplitImageMarker(t *testing.T) {
	tests := []struct {
		in, name, question string
		ok                 bool
	}{
		{"[image: a.png]\nWhat?", "a.png", "What?", true},
		{"[image: my cat.jpg]", "my cat.jpg", "", true},
		{"hello [image: a.png]", "", "hello [image: a.png]", false},
		{"plain", "", "plain", false},
	}
	for _, tt := range tests {
		name, q, ok := splitImageMarker(tt.in)
		if name != tt.name || q != tt.question || ok != tt.ok {
			t.Errorf("splitImageMarker(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, q, ok, tt.name, tt.question, tt.ok)
		}
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
	err = ch.PrefillImage(context.Background(), image.NewRGBA(image.Rect(0, 0, 2, 2)), "what?")
	if err == nil || !strings.Contains(err.Error(), "cannot read images") {
		t.Errorf("PrefillImage on a text model: %v, want 'cannot read images'", err)
	}
}
