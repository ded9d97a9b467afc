//go:build unix

package regfile

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestOpenRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	for _, path := range []string{fifo, "/dev/zero", "/dev/null", dir} {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		done := make(chan error, 1)
		go func() {
			f, _, err := Open(path)
			if err == nil {
				f.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("Open(%s) = %v, want ErrNotRegular", path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Open(%s) hangs", path)
		}
		if _, err := ReadFile(path, 1<<20); !errors.Is(err, ErrNotRegular) {
			t.Errorf("ReadFile(%s) = %v, want ErrNotRegular", path, err)
		}
	}
}

func TestReadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		limit   int64
		want    string
		tooLong bool
	}{
		{limit: 5, want: "hello"},
		{limit: 100, want: "hello"},
		{limit: 4, tooLong: true},
		{limit: 0, tooLong: true},
	}
	for _, tc := range tests {
		b, err := ReadFile(path, tc.limit)
		if tc.tooLong {
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("limit %d: err = %v, want ErrTooLarge", tc.limit, err)
			}
			continue
		}
		if err != nil || string(b) != tc.want {
			t.Errorf("limit %d: %q, %v; want %q", tc.limit, b, err, tc.want)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing"), 10); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
