package catalog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
)

// Inspect opens the checkpoint at path read-only, checks that it holds a
// complete RWKV-7 model with consistent shapes, and returns its dimensions.
// The file is not modified.
func Inspect(path string) (core.Config, error) {
	f, err := checkpoint.Open(path)
	if err != nil {
		return core.Config{}, err
	}
	defer f.Close()
	cfg, err := core.Inspect(core.LanguageModel(f))
	if err != nil {
		return core.Config{}, fmt.Errorf("%s is not a usable RWKV-7 model: %w", path, err)
	}
	return cfg, nil
}

// Describe renders a model's dimensions for people:
// "24 layers × 1024, vocab 65536, bf16, 451M params".
func Describe(c core.Config) string {
	s := fmt.Sprintf("%d layers × %d, vocab %d, %s", c.Layers, c.Width, c.Vocab, c.DType)
	if c.Params > 0 {
		s += ", " + FormatParams(c.Params) + " params"
	}
	return s
}

// IsModelFile reports whether name has a model file extension Goose reads
// (.pth or .safetensors).
func IsModelFile(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".pth", ".safetensors":
		return true
	}
	return false
}

// Import validates the model file src and makes it available in modelsDir
// under its own name, returning the new path.
//
// The user's file is never modified: it is opened read-only. When modelsDir
// is on the same file system, Import makes a hard link (no extra disk space;
// deleting either name leaves the other intact); otherwise it copies the
// file through a temporary ".part" file renamed into place, calling progress
// with bytes copied so far. If src already lies in modelsDir it is only
// validated. Cancelling ctx stops a copy and removes the partial copy.
//
// A file that is not a valid RWKV-7 checkpoint is refused before anything is
// written; an existing different file of the same name is never overwritten.
func Import(ctx context.Context, src, modelsDir string, progress func(done, total int64)) (string, core.Config, error) {
	cfg, err := Inspect(src)
	if err != nil {
		return "", cfg, fmt.Errorf("import: %w", err)
	}
	if err := os.MkdirAll(modelsDir, 0o755); err != nil {
		return "", cfg, fmt.Errorf("import: %w", err)
	}
	absSrc, err := filepath.Abs(src)
	if err != nil {
		return "", cfg, fmt.Errorf("import %s: %w", src, err)
	}
	dest := filepath.Join(modelsDir, filepath.Base(src))
	si, err := os.Stat(absSrc)
	if err != nil {
		return "", cfg, fmt.Errorf("import: %w", err)
	}
	if di, err := os.Stat(dest); err == nil {
		if os.SameFile(si, di) {
			return dest, cfg, nil
		}
		return "", cfg, fmt.Errorf("import %s: %s already exists in the models folder and is a different file; rename one of them", src, filepath.Base(src))
	}
	if err := os.Link(absSrc, dest); err == nil {
		if progress != nil {
			progress(si.Size(), si.Size())
		}
		return dest, cfg, nil
	}
	if err := copyFile(ctx, absSrc, dest, si.Size(), progress); err != nil {
		return "", cfg, fmt.Errorf("import: %w", err)
	}
	return dest, cfg, nil
}

// copyFile copies src to dest via dest+".part".
func copyFile(ctx context.Context, src, dest string, size int64, progress func(done, total int64)) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	part := dest + ".part"
	out, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if out != nil {
			out.Close()
		}
		if err != nil {
			os.Remove(part)
		}
	}()
	buf := make([]byte, 1<<20)
	var done int64
	for {
		if ctx.Err() != nil {
			return fmt.Errorf("copy %s: %w", src, ctx.Err())
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				return fmt.Errorf("write %s: %w", part, werr)
			}
			done += int64(n)
			if progress != nil {
				progress(done, size)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("read %s: %w", src, rerr)
		}
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", part, err)
	}
	cerr := out.Close()
	out = nil
	if cerr != nil {
		return fmt.Errorf("close %s: %w", part, cerr)
	}
	return os.Rename(part, dest)
}

// Local is a model file found in the models folder.
type Local struct {
	Path string
	Size int64
	// Official is the catalog entry with the same file name, if any.
	Official *Model
}

// Scan lists the model files in dir, sorted by name. Partial downloads
// (".part") are not listed. A missing dir is not an error.
func Scan(dir string) ([]Local, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scan models folder: %w", err)
	}
	official := Official()
	var out []Local
	for _, e := range entries {
		if e.IsDir() || !IsModelFile(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		l := Local{Path: filepath.Join(dir, e.Name()), Size: info.Size()}
		for i := range official {
			if official[i].File == e.Name() {
				l.Official = &official[i]
			}
		}
		out = append(out, l)
	}
	return out, nil
}
