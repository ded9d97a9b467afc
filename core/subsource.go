package core

import (
	"context"
	"strings"

	"github.com/goose-rwkv/goose/core/checkpoint"
)

// prefixSource presents the tensors of src whose names start with prefix,
// with the prefix removed.
type prefixSource struct {
	src    Source
	prefix string
	infos  []checkpoint.Info
}

// SubSource returns the part of a checkpoint under a name prefix, with the
// prefix removed: a multimodal checkpoint keeps its language model under
// "rwkv." (VisualRWKV), beside its vision towers and projector.
func SubSource(src Source, prefix string) Source {
	s := &prefixSource{src: src, prefix: prefix}
	for _, t := range src.Tensors() {
		if name, ok := strings.CutPrefix(t.Name, prefix); ok {
			t.Name = name
			s.infos = append(s.infos, t)
		}
	}
	return s
}

func (s *prefixSource) Tensors() []checkpoint.Info { return s.infos }

func (s *prefixSource) Lookup(name string) (checkpoint.Info, bool) {
	t, ok := s.src.Lookup(s.prefix + name)
	t.Name = name
	return t, ok
}

func (s *prefixSource) Bytes(name string) ([]byte, error) { return s.src.Bytes(s.prefix + name) }

// Path returns the path of the underlying file, if it has one.
func (s *prefixSource) Path() string { return SourcePath(s.src) }

// Changed reports whether the underlying file changed on disk.
func (s *prefixSource) Changed() error { return sourceChanged(s.src) }

// Verify checks the whole underlying file when it can (see
// checkpoint.File.Verify): the checksums cover every tensor, the language
// model's and the others'.
func (s *prefixSource) Verify(ctx context.Context, progress func(done, total int64)) error {
	if v, ok := s.src.(interface {
		Verify(context.Context, func(done, total int64)) error
	}); ok {
		return v.Verify(ctx, progress)
	}
	return nil
}

// SourcePath returns src's file path when it is a file (Source
// implementations may have a Path method, as *checkpoint.File does).
func SourcePath(src Source) string {
	if p, ok := src.(interface{ Path() string }); ok {
		return p.Path()
	}
	return ""
}

// sourceChanged calls src's Changed method when it has one (see
// checkpoint.File.Changed).
func sourceChanged(src Source) error {
	if c, ok := src.(interface{ Changed() error }); ok {
		return c.Changed()
	}
	return nil
}

// LanguageModel returns the RWKV-7 language model inside a checkpoint: src
// itself, or for a multimodal checkpoint that keeps it under "rwkv."
// (VisualRWKV-7) that part. Load and Inspect need the language model's
// names at the top level; LoadFile applies this itself.
func LanguageModel(src Source) Source {
	if _, ok := src.Lookup("emb.weight"); !ok {
		if _, ok := src.Lookup("rwkv.emb.weight"); ok {
			return SubSource(src, "rwkv.")
		}
	}
	return src
}
