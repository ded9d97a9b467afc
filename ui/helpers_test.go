package ui

import (
	"context"
	"errors"
	"fmt"
	"image"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"

	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/ui/capture"
	"github.com/goose-rwkv/goose/ui/history"
)

// fakeEngine is a deterministic engine: its "state" is the text fed so far,
// and a reply is a list of pieces. It records every prompt, so tests can
// check what was re-read.
type fakeEngine struct {
	mu      sync.Mutex
	info    *ModelInfo
	prompts []string
	// reply returns the pieces to stream for a state ending in prompt.
	reply func(state string) []string
	// step, when not nil, is received from before each piece (lets a test
	// hold a reply mid-stream).
	step chan struct{}
	// afterCancel counts pieces emitted after ctx was cancelled.
	afterCancel int
	loadErr     error
	// vision makes loaded models VisualRWKV-7 ones.
	vision bool
	// images records every image fed (PrefillImages).
	images []fakeImage
	// imageGate, when not nil, holds each image's encoding (see
	// fakeChat.PrefillImages).
	imageGate chan struct{}
}

// fakeImage is one image fed with its question.
type fakeImage struct {
	img      image.Image
	question string
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{reply: func(state string) []string {
		n := strings.Count(state, "User:")
		return []string{"Reply ", "number ", strings.Repeat("I", n), "."}
	}}
}

func (e *fakeEngine) Load(ctx context.Context, path string, opts LoadOptions, progress func(float64)) (ModelInfo, error) {
	if e.loadErr != nil {
		return ModelInfo{}, e.loadErr
	}
	if _, err := catalog.Inspect(path); err != nil {
		return ModelInfo{}, err
	}
	for i := 1; i <= 4; i++ {
		progress(float64(i) / 4)
	}
	info := ModelInfo{Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Summary: "fake",
		Backend: "cpu", Device: "Test CPU (2 threads)", Fallback: "no libcuda.so.1", WeightBytes: 123456789, StateBytes: 2400000, StateKey: "fake-key"}
	e.mu.Lock()
	info.Vision = e.vision
	e.info = &info
	e.mu.Unlock()
	return info, nil
}

func (e *fakeEngine) Unload() error {
	e.mu.Lock()
	e.info = nil
	e.mu.Unlock()
	return nil
}

func (e *fakeEngine) Info() (ModelInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.info == nil {
		return ModelInfo{}, false
	}
	return *e.info, true
}

func (e *fakeEngine) NewChat() (Chat, error) {
	if _, ok := e.Info(); !ok {
		return nil, errors.New("no model loaded")
	}
	return &fakeChat{e: e}, nil
}

func (e *fakeEngine) allPrompts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.prompts...)
}

type fakeChat struct {
	e     *fakeEngine
	state string
}

func (c *fakeChat) Reset() error              { c.state = ""; return nil }
func (c *fakeChat) Restore(b []byte) error    { c.state = string(b); return nil }
func (c *fakeChat) Snapshot() ([]byte, error) { return []byte(c.state), nil }
func (c *fakeChat) Close()                    {}
func (c *fakeChat) Prefill(_ context.Context, s string) error {
	c.state += s
	return nil
}

// PrefillImages records the images and feeds the turn as text, each
// image as "<image WxH>". With imageGate set it waits for a value from it
// (or for ctx to end) before each image, like a slow encoder.
func (c *fakeChat) PrefillImages(ctx context.Context, imgs []image.Image, question string) error {
	c.e.mu.Lock()
	vision, gate := c.e.vision, c.e.imageGate
	c.e.mu.Unlock()
	if !vision {
		return errors.New("this model cannot read images")
	}
	turn := "User: "
	for _, img := range imgs {
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c.e.mu.Lock()
		c.e.images = append(c.e.images, fakeImage{img: img, question: question})
		c.e.mu.Unlock()
		b := img.Bounds()
		turn += fmt.Sprintf("<image %dx%d>", b.Dx(), b.Dy())
	}
	c.state += turn + "\n" + question + "\n\nAssistant:"
	return nil
}

func (e *fakeEngine) allImages() []fakeImage {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]fakeImage(nil), e.images...)
}

func (c *fakeChat) Generate(ctx context.Context, prompt string, p GenParams, onPiece func(string)) (GenResult, error) {
	c.e.mu.Lock()
	c.e.prompts = append(c.e.prompts, prompt)
	c.e.mu.Unlock()
	c.state += prompt
	res := GenResult{TokensPerSec: 42}
	for _, piece := range c.e.reply(c.state) {
		if c.e.step != nil {
			select {
			case <-c.e.step:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			res.Cancelled = true
			return res, nil
		}
		onPiece(piece)
		c.state += piece
		res.Tokens++
	}
	c.state += "\n\n"
	res.EndedTurn = true
	return res, nil
}

// harness is an app on Fyne's test driver with its files in a temp dir.
type harness struct {
	t      *testing.T
	a      *App
	dir    string
	eng    Engine
	mu     sync.Mutex
	errors []error
}

// newHarness starts the app with eng; mods may change its options.
func newHarness(t *testing.T, eng Engine, dir string, cat []catalog.Model, mods ...func(*Options)) *harness {
	t.Helper()
	fa := test.NewTempApp(t)
	if dir == "" {
		dir = t.TempDir()
	}
	h := &harness{t: t, dir: dir, eng: eng}
	opts := Options{
		SettingsPath: filepath.Join(dir, "settings.json"),
		HistoryPath:  filepath.Join(dir, "history.db"),
		Engine:       eng,
		Catalog:      cat,
		Downloader:   &catalog.Downloader{Backoff: time.Millisecond, Retries: 3},
		Sound:        &capture.Synth{NoDevice: true},
	}
	for _, m := range mods {
		m(&opts)
	}
	a, err := newApp(fa, opts)
	if err != nil {
		t.Fatalf("newApp: %v", err)
	}
	a.onError = func(err error) {
		h.mu.Lock()
		h.errors = append(h.errors, err)
		h.mu.Unlock()
	}
	a.cfg.ModelsDir = filepath.Join(dir, "models")
	a.win.Resize(fyne.NewSize(1180, 780))
	h.a = a
	t.Cleanup(h.close)
	return h
}

// realHarness is an app on the Goose engine, on the CPU with one thread.
// It skips the test in -short mode.
func realHarness(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("loads the World tokenizer")
	}
	h := newHarness(t, NewCoreEngine(), "", nil)
	h.ui(func() { h.a.cfg.Backend = "cpu"; h.a.cfg.Threads = 1 })
	return h
}

// shortChat opens a new chat whose replies end after maxTokens tokens:
// a random model rarely ends its turn with "\n\n".
func (h *harness) shortChat(maxTokens int) {
	h.t.Helper()
	h.ui(func() {
		smp := history.DefaultSampling()
		smp.MaxTokens = maxTokens
		conv, err := h.a.store.CreateConversation("Real engine", "", smp)
		if err != nil {
			h.t.Fatal(err)
		}
		h.a.chat.open(conv.ID)
	})
}

func (h *harness) close() {
	h.a.close()
}

// ui runs f as the UI goroutine would.
func (h *harness) ui(f func()) {
	h.a.uiMu.Lock()
	defer h.a.uiMu.Unlock()
	f()
}

// waitFor polls cond (on the UI side) until it holds.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ok bool
		h.ui(func() { ok = cond() })
		if ok {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s (errors: %v)", what, h.errs())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (h *harness) errs() []error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]error(nil), h.errors...)
}

// load loads a model file and waits until it is loaded.
func (h *harness) load(path string) {
	h.t.Helper()
	h.ui(func() { h.a.loadModel(path) })
	h.waitFor("the model to load", func() bool { return !h.a.loading })
	var ok bool
	h.ui(func() { ok = h.a.model != nil })
	if !ok {
		h.t.Fatalf("model not loaded: %v", h.errs())
	}
}

// send types text and presses Enter, then waits for the reply.
func (h *harness) send(text string) {
	h.t.Helper()
	h.ui(func() {
		test.Type(h.a.chat.input, text)
		h.a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	})
	h.waitReply()
}

func (h *harness) waitReply() {
	h.t.Helper()
	var done chan struct{}
	h.ui(func() { done = h.a.chat.genDone })
	if done == nil {
		h.t.Fatalf("no reply started (errors: %v)", h.errs())
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		h.t.Fatal("reply did not finish")
	}
	h.waitFor("the reply to be shown", func() bool { return !h.a.chat.generating })
}

// thread returns the shown messages' contents joined by "|".
func (h *harness) thread() string {
	var parts []string
	h.ui(func() {
		for _, m := range h.a.chat.thread {
			parts = append(parts, m.Content)
		}
	})
	return strings.Join(parts, "|")
}

func (h *harness) messages() []history.Message {
	var out []history.Message
	h.ui(func() { out = append(out, h.a.chat.thread...) })
	return out
}

// dialogShown reports whether an error dialog is over the window.
func (h *harness) dialogShown() bool {
	return h.a.win.Canvas().Overlays().Top() != nil
}
