//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import (
	"os"

	"github.com/goose-rwkv/goose/internal/regfile"
)

// mapFile reads the whole regular file at path into memory; this platform
// has no memory mapping through package syscall. The returned file is nil
// (the copy cannot change) and the release function is a no-op.
func mapFile(path string) ([]byte, *os.File, func() error, error) {
	data, err := regfile.ReadFile(path, 1<<62)
	if err != nil {
		return nil, nil, nil, err
	}
	return data, nil, func() error { return nil }, nil
}
