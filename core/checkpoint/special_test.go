//go:build unix

package checkpoint

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/internal/regfile"
)

// TestOpenFIFO: opening a named pipe used to block until a writer came
// (`gooseapp info FIFO` hung); now it is refused at once.
func TestOpenFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "model.pth")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := Open(fifo)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, regfile.ErrNotRegular) {
			t.Fatalf("Open(FIFO) = %v, want ErrNotRegular", err)
		}
		t.Log(err)
	case <-time.After(10 * time.Second):
		t.Fatal("Open(FIFO) hangs")
	}
}
