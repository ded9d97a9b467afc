//go:build linux

package cpu

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/goose-rwkv/goose/internal/memfault"
)

// TestPoolFaults: a chunk that reads a truncated memory mapping, on a
// persistent worker, a spawned goroutine or the caller, fails the For call
// on the caller's goroutine (where memfault.Catch makes it an error) after
// every chunk has finished; the pool keeps working.
func TestPoolFaults(t *testing.T) {
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "w")
	if err := os.WriteFile(path, make([]byte, 8*page), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, 8*page, syscall.PROT_READ, syscall.MAP_PRIVATE)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(data)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	p := newPool(4)
	defer p.Close()
	var sink atomic.Int64
	read := func(c, lo, hi int) {
		s := 0
		for i := lo; i < hi; i++ {
			s += int(data[i*page])
		}
		sink.Add(int64(s))
	}
	for _, tc := range []struct {
		name string
		fn   func(c, lo, hi int)
	}{
		{"every chunk", read},
		{"a worker's chunk", func(c, lo, hi int) {
			if c == 3 {
				read(c, lo, hi)
			}
		}},
	} {
		for _, nested := range []bool{false, true} {
			run := func() (err error) {
				defer memfault.Catch(&err)()
				if nested { // the team is busy: chunks run on spawned goroutines
					p.For(2, 1, func(lo, hi int) {
						if lo == 0 {
							p.forChunks(8, 1, tc.fn)
						}
					})
				} else {
					p.forChunks(8, 1, tc.fn)
				}
				return nil
			}
			var fe *memfault.Error
			if err := run(); !errors.As(err, &fe) {
				t.Errorf("%s (nested %v): err = %v, want a memory fault", tc.name, nested, err)
			}
		}
	}
	var n atomic.Int64
	p.For(1000, 1, func(lo, hi int) { n.Add(int64(hi - lo)) })
	if n.Load() != 1000 {
		t.Fatalf("pool after faults covered %d of 1000", n.Load())
	}
}
