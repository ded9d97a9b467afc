package checkpoint

import (
	"context"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/goose-rwkv/goose/internal/memfault"
)

// verifyChunk is how many bytes Verify hashes between checks of its
// context and calls of its progress function.
const verifyChunk = 16 << 20

// Verify checks the integrity of a .pth checkpoint: it reads the data of
// every storage entry and compares its CRC-32 with the one in the zip
// directory, returning an *Error wrapping ErrChecksum that names the entry
// and a tensor in it at the first mismatch. Safetensors files carry no
// checksums; Verify returns nil for them at once.
//
// Verify reads the whole file (about a second per GB once it is cached),
// so callers run it in the background after loading, or on request
// (`gooseapp info --verify`). ctx is checked every 16 MiB; progress, if
// set, is called with the bytes checked so far and the total. Close must
// not be called while Verify runs.
func (f *File) Verify(ctx context.Context, progress func(done, total int64)) (err error) {
	if f.closed {
		return &Error{Path: f.path, Err: ErrClosed}
	}
	defer func() {
		if err != nil {
			if _, ok := err.(*Error); !ok {
				err = &Error{Path: f.path, Err: err}
			}
		}
	}()
	defer memfault.Catch(&err)()
	var total, done int64
	for _, st := range f.stored {
		total += st.span.n
	}
	var buf []byte
	for _, st := range f.stored {
		h := crc32.NewIEEE()
		for off := int64(0); off < st.span.n; off += verifyChunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(verifyChunk, st.span.n-off)
			at := st.span.off + off
			var piece []byte
			if f.data != nil {
				piece = f.data[at : at+n]
			} else {
				if int64(len(buf)) < n {
					buf = make([]byte, n)
				}
				piece = buf[:n]
				if _, err := f.r.ReadAt(piece, at); err != nil {
					return fmt.Errorf("read %d bytes at offset %d: %w", n, at, err)
				}
			}
			h.Write(piece)
			done += n
			if progress != nil {
				progress(done, total)
			}
		}
		if sum := h.Sum32(); sum != st.crc {
			return &Error{Path: f.path, Tensor: st.tensors[0], Err: fmt.Errorf(
				"%w in zip entry %q (CRC-32 %08x in the directory, %08x in the data; it holds %s): the file is damaged, download it again",
				ErrChecksum, st.name, st.crc, sum, tensorList(st.tensors))}
		}
	}
	return nil
}

func tensorList(names []string) string {
	if len(names) == 1 {
		return "this tensor"
	}
	const show = 4
	if len(names) <= show {
		return "tensors " + strings.Join(names, ", ")
	}
	return fmt.Sprintf("tensors %s and %d more", strings.Join(names[:show], ", "), len(names)-show)
}
