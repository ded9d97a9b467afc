//go:build linux

package audio

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/internal/memfault"
)

// TestModelFileTruncatedWhileTagging: a tagger whose checkpoint is
// truncated on disk fails the call (SIGBUS used to kill the process).
func TestModelFileTruncatedWhileTagging(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "arwkv", "mm.arwkv.pth"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "m.pth")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	tg, err := Open(path, Options{Backend: "cpu", Threads: 2, Config: filepath.Join("..", "testdata", "arwkv", "mm.arwkv.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	pcm := make([]float32, 3*tg.Info().SampleRate)
	for i := range pcm {
		pcm[i] = float32(i%100) / 200
	}
	ctx := context.Background()
	if _, err := tg.Tag(ctx, pcm, tg.Info().SampleRate, TagOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = tg.Tag(ctx, pcm, tg.Info().SampleRate, TagOptions{})
	var fe *memfault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("tag after the model file was truncated: %v, want a memory fault error", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%v: the error does not name %s", err, path)
	}
}
