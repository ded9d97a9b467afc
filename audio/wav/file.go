package wav

import (
	"fmt"
	"io"
	"os"

	"github.com/goose-rwkv/goose/internal/regfile"
)

// File is an open WAV file: a Reader over it, closed with Close.
type File struct {
	*Reader
	f    *os.File
	path string
}

// Open opens the WAV file at path and reads its header. It refuses
// anything but a regular file before reading it (a FIFO or a device would
// block or never end; see internal/regfile), and a header whose data
// chunk is larger than the file. Errors name the path.
func Open(path string) (*File, error) {
	f, size, err := regfile.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n := r.Frames(); n >= 0 {
		pos, err := f.Seek(0, io.SeekCurrent)
		if err == nil && n*int64(r.frameBytes) > size-pos {
			f.Close()
			return nil, fmt.Errorf("%s: wav: truncated (%w): the header declares %d bytes of samples, the file holds %d", path, io.ErrUnexpectedEOF, n*int64(r.frameBytes), size-pos)
		}
	}
	return &File{Reader: r, f: f, path: path}, nil
}

// Path returns the path given to Open.
func (f *File) Path() string { return f.path }

// Rate returns the sampling rate in Hz.
func (f *File) Rate() int { return f.Format().Rate }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }
