// Package regfile opens files that must be regular files, without hanging
// on a FIFO and without reading a device or a huge file whole.
//
// Opening a named pipe for reading blocks until a writer appears, and
// reading /dev/zero never ends, so a path that names anything but a regular
// file is refused before it is read: Stat first (a tape drive rewinds when
// opened), then a non-blocking open, then Stat again on the open file in
// case the path changed in between.
package regfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

var (
	// ErrNotRegular reports a path that names a directory, FIFO, device or
	// socket instead of a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge reports a file larger than the caller's limit.
	ErrTooLarge = errors.New("file too large")
)

// Open opens the regular file at path for reading and returns it with its
// size. Anything else is refused with an *fs.PathError wrapping
// ErrNotRegular.
func Open(path string) (*os.File, int64, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	if err := checkMode(path, st); err != nil {
		return nil, 0, err
	}
	f, err := openNonblock(path)
	if err != nil {
		return nil, 0, err
	}
	st, err = f.Stat()
	if err == nil {
		err = checkMode(path, st)
	}
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, st.Size(), nil
}

func checkMode(path string, st fs.FileInfo) error {
	if st.Mode().IsRegular() {
		return nil
	}
	kind := "special file"
	switch m := st.Mode(); {
	case m.IsDir():
		kind = "directory"
	case m&fs.ModeNamedPipe != 0:
		kind = "named pipe"
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeDevice != 0:
		kind = "block device"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	}
	return &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (a %s)", ErrNotRegular, kind)}
}

// CheckSize returns an *fs.PathError wrapping ErrTooLarge when size is over
// limit.
func CheckSize(path string, size, limit int64) error {
	if size > limit {
		return &fs.PathError{Op: "read", Path: path,
			Err: fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, size, limit)}
	}
	return nil
}

// ReadFile reads the whole regular file at path, refusing one larger than
// limit bytes before reading any of it (and stopping at limit should the
// file grow while it is read).
func ReadFile(path string, limit int64) ([]byte, error) {
	f, size, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := CheckSize(path, size, limit); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(int(size) + 1)
	if _, err := buf.ReadFrom(io.LimitReader(f, limit+1)); err != nil {
		return nil, &fs.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(buf.Len()) > limit {
		return nil, &fs.PathError{Op: "read", Path: path,
			Err: fmt.Errorf("%w: the file grew past the limit of %d bytes while it was read", ErrTooLarge, limit)}
	}
	return buf.Bytes(), nil
}
