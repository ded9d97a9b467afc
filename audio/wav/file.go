package wav

import (
	"fmt"
	"io"
	"os"
)

// File is an open WAV file: a Reader over it, closed with Close.
type File struct {
	*Reader
	f    *os.File
	path string
}

// Open opens the WAV file at path and reads its header. It refuses
// anything but a regular file before opening it (a FIFO or a device would
// block or never end), and a header whose data chunk is larger than the
// file. Errors name the path.
func Open(path string) (*File, error) {
	f, err := openRegular(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if n := r.Frames(); n >= 0 {
		size := n * int64(r.frameBytes)
		pos, err := f.Seek(0, io.SeekCurrent)
		if err == nil && size > st.Size()-pos {
			f.Close()
			return nil, fmt.Errorf("%s: wav: truncated (%w): the header declares %d bytes of samples, the file holds %d", path, io.ErrUnexpectedEOF, size, st.Size()-pos)
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

// openRegular opens path for reading only if it names a regular file.
func openRegular(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%v)", path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// The path may have been replaced between Stat and Open.
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return f, nil
}
