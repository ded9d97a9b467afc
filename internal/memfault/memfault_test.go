//go:build linux

package memfault

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mapTruncated maps a two-page file and truncates it to nothing, so that
// reading the mapping faults with SIGBUS.
func mapTruncated(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	page := os.Getpagesize()
	if err := os.WriteFile(path, make([]byte, 2*page), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := syscall.Mmap(int(f.Fd()), 0, 2*page, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Munmap(data) })
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	return data
}

func sum(b []byte) (s int) {
	for _, v := range b {
		s += int(v)
	}
	return s
}

func TestCatchTruncatedMapping(t *testing.T) {
	data := mapTruncated(t)
	read := func() (n int, err error) {
		defer Catch(&err)()
		return sum(data), nil
	}
	_, err := read()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("read of a truncated mapping: err = %v, want a *memfault.Error", err)
	}
	t.Log(err)
}

func TestRepanicFromWorker(t *testing.T) {
	data := mapTruncated(t)
	read := func() (err error) {
		defer Catch(&err)()
		faults := make(chan *Error, 1)
		var n int
		go func() {
			Enable()
			defer func() {
				e, _ := Recovered(recover())
				faults <- e
			}()
			n = sum(data)
		}()
		if e := <-faults; e != nil {
			Repanic(e)
		}
		t.Logf("read %d without a fault", n)
		return nil
	}
	var fe *Error
	if err := read(); !errors.As(err, &fe) {
		t.Fatalf("fault on a worker: err = %v, want a *memfault.Error", err)
	}
}

func TestOtherPanicsContinue(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	var err error
	func() {
		defer Catch(&err)()
		panic("boom")
	}()
}
