package checkpoint

import (
	"archive/zip"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// maxPickle caps the size of data.pkl. A state dict's pickle holds only
// names, shapes and storage keys: about 100 bytes per tensor, 110 KB for
// the official 2.9B checkpoint.
const maxPickle = 16 << 20

// span is a byte range of the file.
type span struct{ off, n int64 }

// stored is a zip entry whose data Verify checks against its CRC-32.
type stored struct {
	name    string // the zip entry
	span    span
	crc     uint32
	tensors []string // the tensors whose bytes it holds
}

// readPth reads the tensor directory of a PyTorch zip checkpoint: the
// archive layout of torch.save since PyTorch 1.6, with a pickled state dict
// in <prefix>/data.pkl and one raw storage per <prefix>/data/<key> entry.
//
// It also returns the storage entries with their CRC-32s for Verify.
func readPth(r io.ReaderAt, size int64, path string) ([]tensor, []stored, error) {
	fail := func(err error) error { return &Error{Path: path, Err: err} }

	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		// ErrInsecurePath only matters when extracting to disk.
		if !hasEndRecord(r, size) {
			return nil, nil, fail(fmt.Errorf("%w: the zip archive ends after %d bytes without its central directory (was the download or copy cut short?)", ErrTruncated, size))
		}
		return nil, nil, fail(fmt.Errorf("%w (zip archive: %s)", ErrFormat, strings.TrimPrefix(err.Error(), "zip: ")))
	}
	if err := checkLayout(zr.File, size); err != nil {
		return nil, nil, fail(err)
	}
	entries := make(map[string]*zip.File, len(zr.File))
	var pickles []*zip.File
	for _, zf := range zr.File {
		if _, dup := entries[zf.Name]; dup {
			return nil, nil, fail(fmt.Errorf("%w (duplicate zip entry %q)", ErrFormat, zf.Name))
		}
		entries[zf.Name] = zf
		if zf.Name == "constants.pkl" || strings.HasSuffix(zf.Name, "/constants.pkl") {
			return nil, nil, fail(ErrTorchScript)
		}
		if zf.Name == "data.pkl" || strings.HasSuffix(zf.Name, "/data.pkl") {
			pickles = append(pickles, zf)
		}
	}
	switch len(pickles) {
	case 0:
		return nil, nil, fail(ErrNoPickle)
	case 1:
	default:
		return nil, nil, fail(fmt.Errorf("%w (%d data.pkl entries: %q and %q)", ErrFormat, len(pickles), pickles[0].Name, pickles[1].Name))
	}
	prefix := strings.TrimSuffix(pickles[0].Name, "data.pkl")

	if bo, ok := entries[prefix+"byteorder"]; ok {
		b, err := readSmall(bo, 64)
		if err != nil {
			return nil, nil, fail(fmt.Errorf("read %s: %w", bo.Name, err))
		}
		if s := strings.TrimSpace(string(b)); s != "little" {
			return nil, nil, fail(fmt.Errorf("%w (byte order %q; only little-endian checkpoints are supported)", ErrFormat, s))
		}
	}

	pkl, err := readSmall(pickles[0], maxPickle)
	if err != nil {
		return nil, nil, fail(fmt.Errorf("read %s: %w", pickles[0].Name, err))
	}
	root, err := unpickle(pkl)
	if err != nil {
		return nil, nil, fail(err)
	}
	dict, ok := root.(*pyDict)
	if !ok {
		return nil, nil, fail(fmt.Errorf("%w (data.pkl holds a %s, not a state dict)", ErrFormat, typeName(root)))
	}

	spans := make(map[string]int) // storage key -> index in checks
	var checks []stored
	out := make([]tensor, 0, len(dict.keys))
	for i, k := range dict.keys {
		name, ok := k.(string)
		if !ok {
			return nil, nil, fail(fmt.Errorf("%w (state dict key is a %s, not a string)", ErrFormat, typeName(k)))
		}
		pt, ok := dict.vals[i].(*pyTensor)
		if !ok {
			return nil, nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("%w (value is of type %s, not a tensor)", ErrFormat, typeName(dict.vals[i]))}
		}
		ci, ok := spans[pt.storage.key]
		if !ok {
			entry := prefix + "data/" + pt.storage.key
			sp, err := storageSpan(entries, entry, size)
			if err != nil {
				return nil, nil, &Error{Path: path, Tensor: name, Err: err}
			}
			ci = len(checks)
			spans[pt.storage.key] = ci
			checks = append(checks, stored{name: entry, span: sp, crc: entries[entry].CRC32})
		}
		checks[ci].tensors = append(checks[ci].tensors, name)
		t, err := checkTensor(name, pt, checks[ci].span)
		if err != nil {
			return nil, nil, &Error{Path: path, Tensor: name, Err: err}
		}
		out = append(out, t)
	}
	return out, checks, nil
}

// readSmall reads a whole zip entry of at most limit bytes, checking its CRC.
func readSmall(zf *zip.File, limit int64) ([]byte, error) {
	if zf.Method != zip.Store {
		return nil, fmt.Errorf("%w (entry is compressed with method %d; torch.save stores entries)", ErrFormat, zf.Method)
	}
	if zf.UncompressedSize64 > uint64(limit) {
		return nil, fmt.Errorf("%w (entry of %d bytes is larger than %d)", ErrFormat, zf.UncompressedSize64, limit)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrFormat, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrFormat, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (entry is larger than %d bytes)", ErrFormat, limit)
	}
	return b, nil
}

// storageSpan locates a storage entry's raw bytes in the file. The entry
// must be stored uncompressed so that the bytes can be used in place.
func storageSpan(entries map[string]*zip.File, name string, size int64) (span, error) {
	zf, ok := entries[name]
	if !ok {
		return span{}, fmt.Errorf("%w (storage entry %q is missing)", ErrFormat, name)
	}
	return entrySpan(zf, size)
}

// entrySpan returns the file offset and length of a stored zip entry's data,
// checked against the file size.
func entrySpan(zf *zip.File, size int64) (span, error) {
	if zf.Method != zip.Store {
		return span{}, fmt.Errorf("%w (storage %q is compressed with method %d; only stored entries can be read in place)",
			ErrFormat, zf.Name, zf.Method)
	}
	if zf.Flags&0x1 != 0 {
		return span{}, fmt.Errorf("%w (storage %q is encrypted)", ErrFormat, zf.Name)
	}
	if zf.CompressedSize64 != zf.UncompressedSize64 {
		return span{}, fmt.Errorf("%w (stored entry %q has compressed size %d but size %d)",
			ErrFormat, zf.Name, zf.CompressedSize64, zf.UncompressedSize64)
	}
	off, err := zf.DataOffset()
	if err != nil {
		return span{}, fmt.Errorf("%w (storage %q: %v)", ErrFormat, zf.Name, err)
	}
	if off < 0 || off > size {
		return span{}, fmt.Errorf("%w (storage %q starts at %d, past the end of the file at %d)", ErrTruncated, zf.Name, off, size)
	}
	if zf.UncompressedSize64 > uint64(size-off) {
		return span{}, fmt.Errorf("%w (storage %q needs %d bytes at offset %d, file has %d)",
			ErrTruncated, zf.Name, zf.UncompressedSize64, off, size-off)
	}
	return span{off: off, n: int64(zf.UncompressedSize64)}, nil
}

// checkTensor validates a rebuilt tensor against its storage's bytes.
func checkTensor(name string, pt *pyTensor, sp span) (tensor, error) {
	st := pt.storage
	esize := int64(st.dtype.Size())
	if st.numel > sp.n/esize {
		return tensor{}, fmt.Errorf("%w (need %d bytes, have %d)", ErrTruncated, satMul(st.numel, esize), sp.n)
	}
	shape := make([]int64, len(pt.shape))
	for i, d := range pt.shape {
		shape[i] = int64(d)
	}
	n, ok := numel(shape, int64(math.MaxInt)/esize)
	if !ok {
		return tensor{}, fmt.Errorf("%w (shape %v is too large)", ErrShape, pt.shape)
	}
	if n > 0 {
		// Contiguous in the row-major sense PyTorch uses: strides of
		// size-1 dimensions do not matter.
		want := int64(1)
		for d := len(shape) - 1; d >= 0; d-- {
			if shape[d] != 1 && pt.stride[d] != want {
				return tensor{}, fmt.Errorf("%w (shape %v with stride %v is not contiguous)", ErrShape, pt.shape, pt.stride)
			}
			want *= shape[d]
		}
	}
	if pt.offset > st.numel || n > st.numel-pt.offset {
		return tensor{}, fmt.Errorf("%w (storage offset %d + %d elements exceed the storage's %d elements)",
			ErrTruncated, pt.offset, n, st.numel)
	}
	return tensor{
		info: Info{Name: name, DType: st.dtype, Shape: append([]int{}, pt.shape...)},
		off:  sp.off + pt.offset*esize,
	}, nil
}

// satMul multiplies non-negative a and b, saturating at MaxInt64.
func satMul(a, b int64) int64 {
	if b != 0 && a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

// hasEndRecord reports whether the last 64 KiB of the file (the most a zip
// comment allows) hold an end-of-central-directory signature. A zip file
// cut short has none.
func hasEndRecord(r io.ReaderAt, size int64) bool {
	const window = 22 + 65535
	off := max(0, size-window)
	buf := make([]byte, size-off)
	if n, err := r.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return false
	}
	return bytes.Contains(buf, []byte("PK\x05\x06"))
}

// checkLayout rejects archives whose entries overlap: each entry's local
// header and data must end before the next entry's local header begins,
// and all of them before the central directory (which archive/zip found at
// the end). Such an archive is not what torch.save writes; a crafted or
// damaged one could make two tensors share bytes or shift one tensor's
// data into another's.
func checkLayout(files []*zip.File, size int64) error {
	type extent struct {
		name      string
		head, end int64 // local header offset (lower bound) and end of data
	}
	ext := make([]extent, 0, len(files))
	for _, zf := range files {
		off, err := zf.DataOffset()
		if err != nil {
			return fmt.Errorf("%w (entry %q: %s)", ErrFormat, zf.Name, strings.TrimPrefix(err.Error(), "zip: "))
		}
		n := int64(zf.CompressedSize64)
		if off < 0 || off > size || n < 0 || n > size-off {
			return fmt.Errorf("%w (entry %q needs %d bytes at offset %d, the file has %d)", ErrTruncated, zf.Name, zf.CompressedSize64, off, size)
		}
		// A local header is 30 bytes plus the name (and an extra field,
		// whose length only the local header knows).
		ext = append(ext, extent{name: zf.Name, head: off - 30 - int64(len(zf.Name)), end: off + n})
	}
	slices.SortFunc(ext, func(a, b extent) int { return cmp.Compare(a.head, b.head) })
	for i := 1; i < len(ext); i++ {
		if ext[i].head < ext[i-1].end {
			return fmt.Errorf("%w (zip entries %q and %q overlap: the archive is damaged or crafted)", ErrFormat, ext[i-1].name, ext[i].name)
		}
	}
	return nil
}
