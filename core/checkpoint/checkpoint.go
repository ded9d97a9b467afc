// Package checkpoint reads model weights from PyTorch zip checkpoints (.pth)
// and safetensors files.
//
// Nothing in a checkpoint is executed: the pickle inside a .pth file is
// interpreted by a small machine that knows only a fixed allow-list of
// tensor-building globals. Open memory-maps the file where the platform
// allows it, so tensor bytes are slices of the mapping and a multi-gigabyte
// checkpoint costs no copy until a backend uploads it.
//
// Only contiguous little-endian BF16, F16 and F32 tensors are supported;
// those are what RWKV-7 and the multimodal towers are released in.
package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
)

// Sentinel errors. Every error this package returns is an *Error that wraps
// one of these (or an I/O error); test for them with errors.Is.
var (
	// ErrFormat reports a file that is neither a PyTorch zip checkpoint
	// nor a safetensors file, or one whose container is malformed.
	ErrFormat = errors.New("not a checkpoint file")
	// ErrTorchScript reports a TorchScript archive (it has constants.pkl),
	// which holds a program rather than a plain state dict.
	ErrTorchScript = errors.New("TorchScript archive, not a state dict")
	// ErrNoPickle reports a zip archive without a */data.pkl entry.
	ErrNoPickle = errors.New("missing data.pkl")
	// ErrTruncated reports a file cut short: tensor data that extends past
	// its storage or the end of the file, or a zip archive without its
	// central directory.
	ErrTruncated = errors.New("truncated")
	// ErrChecksum reports stored bytes whose CRC-32 differs from the one
	// in the zip directory (see File.Verify): the file is damaged.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrDType reports an element type this package does not read.
	ErrDType = errors.New("unknown dtype")
	// ErrShape reports an invalid shape, stride or storage offset, or a
	// tensor that is not contiguous.
	ErrShape = errors.New("bad shape")
	// ErrNotFound reports a tensor name that is not in the file.
	ErrNotFound = errors.New("no such tensor")
	// ErrClosed reports use of a File after Close.
	ErrClosed = errors.New("file already closed")
	// ErrChanged reports a file that was truncated or rewritten on disk
	// after Open mapped it: its tensors can no longer be trusted (reading
	// past a new end would fault). Reload it.
	ErrChanged = errors.New("file changed on disk while in use; reload it")
)

// Error describes a failure to read a checkpoint. Tensor is empty when the
// failure is not about one tensor.
type Error struct {
	Path   string // the file, as given to Open or NewReader
	Tensor string // the tensor involved, if any
	Err    error  // the underlying error
}

// Error formats e as
// `checkpoint PATH: tensor "NAME": problem`.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("checkpoint ")
	b.WriteString(e.Path)
	if e.Tensor != "" {
		fmt.Fprintf(&b, ": tensor %q", e.Tensor)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Info describes one tensor.
type Info struct {
	Name  string
	DType kernels.DType
	Shape []int // row-major; empty for a scalar
}

// Len returns the number of elements, the product of Shape.
func (i Info) Len() int {
	n := 1
	for _, d := range i.Shape {
		n *= d
	}
	return n
}

// bytes returns the size of the tensor's data in bytes.
func (i Info) bytes() int64 { return int64(i.Len()) * int64(i.DType.Size()) }

// tensor is a tensor's description and where its data starts in the file.
type tensor struct {
	info Info
	off  int64 // absolute file offset of element 0
}

// File is an open checkpoint. Its methods may be called concurrently,
// except Close.
type File struct {
	path    string
	format  string
	size    int64
	r       io.ReaderAt
	data    []byte // the whole file when mapped or loaded; nil when reading from r on demand
	release func() error
	fh      *os.File  // the mapped file, kept open for Changed; nil when none
	mtime   time.Time // fh's modification time at Open
	tensors []tensor  // sorted by name
	stored  []stored  // .pth storage entries and their CRC-32s, for Verify
	index   map[string]int
	closed  bool
}

// Open opens the checkpoint at path. The format is detected from the
// file's first bytes: a zip local header means a PyTorch .pth file,
// anything else is parsed as safetensors.
//
// On Unix the file is memory-mapped read-only and Bytes returns slices of
// the mapping: they are valid until Close and must not be written to.
// Elsewhere the file is read into memory.
//
// Only regular files are opened: a FIFO or a device is refused at once
// (regfile.ErrNotRegular) rather than read or waited on.
func Open(path string) (f *File, err error) {
	data, fh, release, err := mapFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == path {
			err = pe.Err // Error names the file already
		}
		return nil, &Error{Path: path, Err: err}
	}
	var mtime time.Time
	if fh != nil {
		if st, serr := fh.Stat(); serr == nil {
			mtime = st.ModTime()
		}
	}
	defer func() {
		if err == nil {
			return
		}
		if fh != nil {
			fh.Close()
		}
		if rerr := release(); rerr != nil {
			err = errors.Join(err, &Error{Path: path, Err: rerr})
		}
	}()
	// The file could be truncated while its directory is parsed.
	defer memfault.Catch(&err)()
	f, err = parse(bytes.NewReader(data), int64(len(data)), path, data)
	if err != nil {
		return nil, err
	}
	f.release, f.fh, f.mtime = release, fh, mtime
	return f, nil
}

// Changed reports, as an *Error wrapping ErrChanged, whether the file was
// truncated or rewritten since Open (its size or modification time
// differs). Replacing it by renaming another file over its path does not
// count: the mapping keeps the old file. It costs one fstat system call,
// so callers may check it before each use of the weights.
func (f *File) Changed() error {
	if f.fh == nil || f.closed {
		return nil
	}
	st, err := f.fh.Stat()
	if err != nil {
		return &Error{Path: f.path, Err: fmt.Errorf("%w: %v", ErrChanged, err)}
	}
	if st.Size() != f.size {
		return &Error{Path: f.path, Err: fmt.Errorf("%w (its size went from %d to %d bytes)", ErrChanged, f.size, st.Size())}
	}
	if !st.ModTime().Equal(f.mtime) {
		return &Error{Path: f.path, Err: fmt.Errorf("%w (it was rewritten at %s)", ErrChanged, st.ModTime().Format(time.RFC3339))}
	}
	return nil
}

// NewReader reads a checkpoint of size bytes from r; name is used in error
// messages and returned by Path. Only the container metadata is read now;
// Bytes reads a tensor's data from r on each call and returns a fresh slice.
// Every offset is checked against size, so a hostile file cannot make
// NewReader read or allocate past it.
func NewReader(r io.ReaderAt, size int64, name string) (*File, error) {
	if size < 0 {
		return nil, &Error{Path: name, Err: fmt.Errorf("%w: negative size %d", ErrFormat, size)}
	}
	return parse(r, size, name, nil)
}

// Magic numbers.
var (
	zipMagic      = []byte("PK\x03\x04")
	emptyZipMagic = []byte("PK\x05\x06")
)

// parse detects the format and reads the tensor directory. data, when not
// nil, is the whole file and r reads from it.
func parse(r io.ReaderAt, size int64, path string, data []byte) (*File, error) {
	var head [9]byte
	n, err := r.ReadAt(head[:min(int64(len(head)), size)], 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == min(int64(len(head)), size)) {
		return nil, &Error{Path: path, Err: fmt.Errorf("read header: %w", err)}
	}
	hdr := head[:n]
	f := &File{path: path, size: size, r: r, data: data}
	var ts []tensor
	switch {
	case bytes.HasPrefix(hdr, zipMagic):
		f.format = "pth"
		ts, f.stored, err = readPth(r, size, path)
	case bytes.HasPrefix(hdr, emptyZipMagic):
		return nil, &Error{Path: path, Err: fmt.Errorf("%w (empty zip archive)", ErrFormat)}
	case len(hdr) > 0 && hdr[0] == 0x80:
		return nil, &Error{Path: path, Err: fmt.Errorf(
			"%w (legacy pre-1.6 torch.save format; re-save it with a current PyTorch)", ErrFormat)}
	case len(hdr) == 9 && hdr[8] == '{':
		f.format = "safetensors"
		ts, err = readSafetensors(r, size, path)
	default:
		return nil, &Error{Path: path, Err: fmt.Errorf("%w (neither a zip archive nor a safetensors header)", ErrFormat)}
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ts, func(a, b tensor) int { return strings.Compare(a.info.Name, b.info.Name) })
	f.tensors = ts
	f.index = make(map[string]int, len(ts))
	for i, t := range ts {
		if _, dup := f.index[t.info.Name]; dup {
			return nil, &Error{Path: path, Tensor: t.info.Name, Err: fmt.Errorf("%w (duplicate tensor name)", ErrFormat)}
		}
		f.index[t.info.Name] = i
	}
	return f, nil
}

// Format returns "pth" or "safetensors".
func (f *File) Format() string { return f.format }

// Path returns the path given to Open, or the name given to NewReader.
func (f *File) Path() string { return f.path }

// Size returns the file's size in bytes.
func (f *File) Size() int64 { return f.size }

func cloneInfo(i Info) Info {
	i.Shape = slices.Clone(i.Shape)
	if i.Shape == nil {
		i.Shape = []int{}
	}
	return i
}

// Tensors describes every tensor, sorted by name.
func (f *File) Tensors() []Info {
	out := make([]Info, len(f.tensors))
	for i, t := range f.tensors {
		out[i] = cloneInfo(t.info)
	}
	return out
}

// Lookup describes the named tensor and reports whether it exists.
func (f *File) Lookup(name string) (Info, bool) {
	i, ok := f.index[name]
	if !ok {
		return Info{}, false
	}
	return cloneInfo(f.tensors[i].info), true
}

// Bytes returns the named tensor's raw little-endian data,
// Len()*DType.Size() bytes in row-major order. For a file from Open on a
// platform with memory mapping it is a read-only slice of the mapping,
// valid until Close; otherwise it is a fresh copy.
func (f *File) Bytes(name string) ([]byte, error) {
	if f.closed {
		return nil, &Error{Path: f.path, Tensor: name, Err: ErrClosed}
	}
	i, ok := f.index[name]
	if !ok {
		return nil, &Error{Path: f.path, Tensor: name, Err: ErrNotFound}
	}
	t := f.tensors[i]
	n := t.info.bytes()
	if f.data != nil {
		return f.data[t.off : t.off+n : t.off+n], nil
	}
	if n > math.MaxInt {
		return nil, &Error{Path: f.path, Tensor: name, Err: fmt.Errorf("%d bytes do not fit in memory", n)}
	}
	buf := make([]byte, n)
	if _, err := f.r.ReadAt(buf, t.off); err != nil && !(errors.Is(err, io.EOF) && n == 0) {
		return nil, &Error{Path: f.path, Tensor: name, Err: fmt.Errorf("read %d bytes at offset %d: %w", n, t.off, err)}
	}
	return buf, nil
}

// Float32 returns a float32 copy of the named tensor, converting from its
// stored type. Meant for small vectors; large matrices should stay in their
// stored type (see Bytes).
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	info := f.tensors[f.index[name]].info
	dst := make([]float32, info.Len())
	if err := info.DType.Decode(dst, b); err != nil {
		return nil, &Error{Path: f.path, Tensor: name, Err: fmt.Errorf("%w %s", ErrDType, info.DType)}
	}
	return dst, nil
}

// Close releases the file's memory mapping. Slices returned by Bytes must
// not be used afterwards. Closing twice is harmless.
func (f *File) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	f.data = nil
	if f.fh != nil {
		f.fh.Close()
	}
	if f.release != nil {
		if err := f.release(); err != nil {
			return &Error{Path: f.path, Err: fmt.Errorf("close: %w", err)}
		}
	}
	return nil
}

// numel returns the product of shape, or false if a dimension is negative
// or the product overflows limit.
func numel(shape []int64, limit int64) (int64, bool) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, false
		}
		if d == 0 {
			n = 0
		}
	}
	if n == 0 {
		return 0, true
	}
	for _, d := range shape {
		if d > limit/n {
			return 0, false
		}
		n *= d
	}
	return n, true
}
