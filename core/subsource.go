package core

import (
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
