//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"fmt"
	"math"
	"os"
	"syscall"

	"github.com/goose-rwkv/goose/internal/regfile"
)

// mapFile maps the whole regular file at path read-only and privately. It
// returns the mapping, the open file (kept to notice later changes; the
// caller closes it) and a function that unmaps. An empty file yields an
// empty slice and nothing to unmap.
//
// A private mapping does not protect against the file being truncated
// while mapped (reading past the new end faults); File.Changed and the
// fault guard in internal/memfault handle that.
func mapFile(path string) ([]byte, *os.File, func() error, error) {
	fh, size, err := regfile.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	if size == 0 {
		return []byte{}, fh, func() error { return nil }, nil
	}
	if size > math.MaxInt {
		fh.Close()
		return nil, nil, nil, fmt.Errorf("file of %d bytes is too large to map on this platform", size)
	}
	data, err := syscall.Mmap(int(fh.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		fh.Close()
		return nil, nil, nil, fmt.Errorf("mmap: %w", err)
	}
	return data, fh, func() error { return syscall.Munmap(data) }, nil
}
