package server

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/vision"
)

// openVisual loads the VisualRWKV-7 golden fixture on the CPU.
func openVisual(t *testing.T) *vision.Model {
	t.Helper()
	dir := filepath.Join("..", "testdata", "visualrwkv")
	raw, err := os.ReadFile(filepath.Join(dir, "mm.visualrwkv.json"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := vision.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	m, err := vision.Open(filepath.Join(dir, "mm.visualrwkv.pth"), vision.Options{Backend: "cpu", Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestChatImage asks the fixture's question about mm.png through
// /v1/chat/completions on a loopback listener: the image goes in as an
// OpenAI-style image_url part with a data: URL, and the first answer
// token must be the reference's (id 44602, greedy). Bad images get a 400
// that says why.
func TestChatImage(t *testing.T) {
	vm := openVisual(t)
	_, hs := startServer(t, vm.LM(), Options{Vision: vm.Encoder(), MaxImageBytes: 64 << 10})
	png, err := os.ReadFile(filepath.Join("..", "testdata", "visualrwkv", "mm.png"))
	if err != nil {
		t.Fatal(err)
	}
	dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	body := func(url string) string {
		return mustJSON(t, map[string]any{
			"temperature": 0, "max_tokens": 1,
			"messages": []any{map[string]any{"role": "user", "content": []any{
				map[string]any{"type": "image_url", "image_url": map[string]any{"url": url}},
				map[string]any{"type": "text", "text": "What is in the image?"},
			}}},
		})
	}
	code, v := post(t, hs, "/v1/chat/completions", body(dataURL))
	if code != 200 {
		t.Fatalf("status %d: %v", code, v)
	}
	want := string(world(t).Token(44602))
	if got := path(v, "choices", 0, "message", "content"); strings.TrimSpace(got.(string)) != strings.TrimSpace(want) {
		t.Errorf("answer %q, want the reference's first token %q", got, want)
	}
	if n := num(path(v, "usage", "prompt_tokens")); n != 32 {
		t.Errorf("prompt_tokens %d, want 32 (16 image rows, the question, padding)", n)
	}

	big := make([]byte, 70<<10)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"remote", "https://example.com/cat.png", "remote image URLs are not fetched"},
		{"bad base64", "data:image/png;base64,@@@not base64@@@", "not valid base64"},
		{"oversized", "data:image/png;base64," + base64.StdEncoding.EncodeToString(big), "over this server's limit"},
		{"not an image", "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("hello")), "cannot be read"},
		{"not base64", "data:image/png," + string(png[:10]), "not base64-encoded"},
		{"other type", "data:image/webp;base64,AAAA", "not supported"},
	} {
		code, v := post(t, hs, "/v1/chat/completions", body(tc.url))
		msg, _ := path(v, "error", "message").(string)
		if code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: status %d, message %q; want 400 saying %q", tc.name, code, msg, tc.want)
		}
		if p, _ := path(v, "error", "param").(string); code == 400 && p != "messages[0].content[0].image_url" {
			t.Errorf("%s: param %q", tc.name, p)
		}
	}
}
