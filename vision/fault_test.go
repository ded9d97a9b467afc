//go:build linux

package vision

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cpu"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// TestCheckpointTruncatedWhileEncoding: an encoder whose checkpoint is
// truncated on disk fails Encode (SIGBUS used to kill the process).
func TestCheckpointTruncatedWhileEncoding(t *testing.T) {
	_, cfg := fixture(t)
	path := filepath.Join(t.TempDir(), "m.pth")
	if err := os.WriteFile(path, visiontest.Read(t, "mm.visualrwkv.pth"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := checkpoint.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	be, _ := cpu.New(cpu.Options{Threads: 2})
	defer be.Close()
	e, err := LoadEncoder(f, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	use := func(kernels.Tensor) error { return nil }
	if err := e.Encode(context.Background(), img, nil, use); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	err = e.Encode(context.Background(), img, nil, use)
	var fe *memfault.Error
	if !errors.As(err, &fe) {
		t.Fatalf("encode after the checkpoint was truncated: %v, want a memory fault error", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("%v: the error does not name %s", err, path)
	}
}
