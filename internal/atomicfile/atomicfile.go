// Package atomicfile writes files so that a reader, or the file system after
// a crash, sees either the old file or the whole new one, never a part.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Write creates or replaces path: fill writes the contents to a temporary
// file in the same directory (through a buffer), which is then synced,
// given mode perm and renamed over path. On any error the temporary file
// is removed and path is left as it was. Errors name path.
func Write(path string, perm os.FileMode, fill func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, hideTemp(err))
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = fill(bw); err != nil {
		return err // the caller's error, as it is
	}
	// Below, errors name the temporary file, which is removed: hideTemp.
	if err = bw.Flush(); err != nil {
		return hideTemp(err)
	}
	if err = f.Chmod(perm); err != nil {
		return hideTemp(err)
	}
	if err = f.Sync(); err != nil {
		return hideTemp(err)
	}
	if err = f.Close(); err != nil {
		return hideTemp(err)
	}
	return hideTemp(os.Rename(f.Name(), path))
}

// WriteFile is Write with the contents data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// hideTemp drops the temporary file's name from err: the file is gone
// and its name would only puzzle the reader, who knows path. What remains
// is the system's reason ("no space left on device").
func hideTemp(err error) error {
	if err == nil {
		return nil
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
