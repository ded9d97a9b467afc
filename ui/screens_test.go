package ui

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/ui/history"
)

// TestRenderScreens renders every screen, in the light and dark themes, to
// PNG files in testdata/screens/ (git-ignored) for people to look at, and
// checks each image is not blank.
func TestRenderScreens(t *testing.T) {
	out := filepath.Join("testdata", "screens")
	for _, mode := range []string{"light", "dark"} {
		t.Run(mode, func(t *testing.T) {
			eng := newFakeEngine()
			eng.reply = func(state string) []string {
				return []string{"<think>The user wants a short example. A table and some code will do.</think>",
					"Here is a quick comparison of **RWKV-7** with a transformer:\n\n",
					"- Memory per token stays *constant*\n- No KV cache to grow\n\n",
					"```go\nfor tok := range stream {\n\tfmt.Print(tok)\n}\n```\n\nAnything else?"}
			}
			h := newHarness(t, eng, "", catalog.Official())
			h.ui(func() {
				h.a.cfg.Theme = mode
				h.a.applyTheme()
			})
			shot(t, h, filepath.Join(out, "welcome-"+mode+".png"))

			h.load(tinyModel(t, h.dir))
			h.ui(func() {
				for _, title := range []string{"Trip ideas for Lisbon", "Explain the WKV recurrence", "Shopping list"} {
					h.a.store.CreateConversation(title, "", history.DefaultSampling())
				}
				h.a.chat.reloadList()
				h.a.chat.newChat()
			})
			h.send("How does RWKV-7 differ from a transformer? Show me a tiny Go loop too.")
			h.ui(func() { h.a.chat.regenerate(h.a.chat.thread[1]) })
			h.waitReply()
			h.ui(func() { h.a.show("chat") })
			shot(t, h, filepath.Join(out, "chat-"+mode+".png"))

			h.ui(func() { h.a.chat.settingsDialog() })
			shot(t, h, filepath.Join(out, "chat-settings-"+mode+".png"))
			h.ui(func() {
				h.closeDialogs()
				h.a.chat.newChat()
			})
			shot(t, h, filepath.Join(out, "chat-empty-"+mode+".png"))
			h.ui(func() {
				h.a.models.downloads[catalog.Official()[1].File] = &download{model: catalog.Official()[1], running: true,
					prog: catalog.Progress{Phase: catalog.Downloading, Done: 312_000_000, Total: 902_000_000, Attempt: 1}, speed: 24_500_000}
				h.a.show("models")
			})
			shot(t, h, filepath.Join(out, "models-"+mode+".png"))
			h.ui(func() {
				delete(h.a.models.downloads, catalog.Official()[1].File)
				h.a.show("settings")
			})
			shot(t, h, filepath.Join(out, "settings-"+mode+".png"))
		})
	}
}

// shot captures the window to path (creating its folder) and fails on a
// blank image.
func shot(t *testing.T, h *harness, path string) {
	t.Helper()
	var img image.Image
	h.ui(func() { img = h.a.win.Canvas().Capture() })
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colors := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			colors[[4]uint32{r >> 12, g >> 12, bl >> 12, a >> 12}] = true
		}
	}
	if b.Dx() < 800 || len(colors) < 8 {
		t.Errorf("%s: %dx%d image with %d colors looks blank", path, b.Dx(), b.Dy(), len(colors))
	}
}
