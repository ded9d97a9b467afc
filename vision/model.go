package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// IsCheckpoint reports whether src is a VisualRWKV-7 checkpoint: a
// language model under "rwkv." and DINOv2 tower weights under
// "vit.dino_featurizer.".
func IsCheckpoint(src core.Source) bool {
	if _, ok := src.Lookup("rwkv.emb.weight"); !ok {
		return false
	}
	for _, t := range src.Tensors() {
		if strings.HasPrefix(t.Name, dinoPrefix) {
			return true
		}
	}
	return false
}

// Model is a loaded VisualRWKV-7 checkpoint: the language model, the image
// encoder (towers and projector), the compute backend they share and the
// checkpoint they were read from, with one Close for all of them. Sessions
// for conversations come from core.NewSession(m.LM(), tokenizer).
type Model struct {
	be     kernels.Backend
	report backend.Report
	src    core.Source
	closer io.Closer // the checkpoint, when the model opened or was given one
	lm     *core.Model
	enc    *Encoder
}

// Options configure Open.
type Options struct {
	// Backend names the compute backend ("auto", "cpu", "cuda"; empty
	// means auto) and Threads the CPU backend's threads (0: all cores).
	Backend string
	Threads int
	// Config gives the towers' sizes; nil reads them from the checkpoint
	// (FromCheckpoint).
	Config *Config
	// Progress, if set, is called with the language model's loading
	// progress in [0, 1].
	Progress func(float64)
}

// Open loads the VisualRWKV-7 checkpoint at path on the backend opts
// names. A checkpoint without image towers gives an error wrapping
// ErrNotVisual.
func Open(path string, opts Options) (*Model, error) {
	f, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	if !IsCheckpoint(f) {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, ErrNotVisual)
	}
	cfg := opts.Config
	if cfg == nil {
		c, err := FromCheckpoint(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		cfg = &c
	} else if err := cfg.Check(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	be, rep, err := backend.Open(opts.Backend, backend.Options{Threads: opts.Threads})
	if err != nil {
		f.Close()
		return nil, err
	}
	m, err := New(f, be, *cfg, opts.Progress)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m.report = rep
	return m, nil
}

// New assembles a model from a checkpoint already open (or built in
// memory) on be, taking ownership of both: on success Close closes them,
// on failure New does (src when it is an io.Closer).
func New(src core.Source, be kernels.Backend, cfg Config, progress func(float64)) (*Model, error) {
	m := &Model{be: be, src: src, report: backend.Report{Used: be.Name(), Device: be.Device()}}
	if c, ok := src.(io.Closer); ok {
		m.closer = c
	}
	var err error
	if m.lm, err = core.Load(core.LanguageModel(src), core.LoadOptions{Backend: be, Progress: progress}); err != nil {
		m.Close()
		return nil, fmt.Errorf("language model: %w", err)
	}
	if m.enc, err = LoadEncoder(src, be, cfg); err != nil {
		m.Close()
		return nil, fmt.Errorf("image encoder: %w", err)
	}
	if m.enc.Width() != m.lm.Config().Width {
		m.Close()
		return nil, fmt.Errorf("the projector gives rows of %d, the language model is %d wide", m.enc.Width(), m.lm.Config().Width)
	}
	return m, nil
}

// LM returns the language model.
func (m *Model) LM() *core.Model { return m.lm }

// Encoder returns the image encoder.
func (m *Model) Encoder() *Encoder { return m.enc }

// Backend returns the compute backend the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

// Report says which backend Open chose and why.
func (m *Model) Report() backend.Report { return m.report }

// Source returns the checkpoint the model was read from.
func (m *Model) Source() core.Source { return m.src }

// Ask encodes img and feeds the image question into s (a session of
// m.LM()) in VisualRWKV-7's format (see Prefill); the image's rows go from
// the encoder to the language model on the backend. The answer follows
// with s.Generate(ctx, "", …) stopping at "\n\n". With st non-nil the
// encoding's stages are timed (see Encoder.Encode).
func (m *Model) Ask(ctx context.Context, s *core.Session, img image.Image, question string, st *Stages) error {
	if s.Model() != m.lm {
		return errors.New("vision: ask: the session is not one of this model's")
	}
	return m.enc.Encode(ctx, img, st, func(rows kernels.Tensor) error {
		return PrefillTensor(ctx, s, rows, question)
	})
}

// AskImages is Ask for several images of one question: "User: " + each
// image's rows in turn + "\n" + question + "\n\n" + "Assistant:", padded as
// Prefill pads. Each image is encoded and fed before the next is encoded,
// in one pass with the text before it (the first) or after it (the last).
func (m *Model) AskImages(ctx context.Context, s *core.Session, imgs []image.Image, question string) error {
	if s.Model() != m.lm {
		return errors.New("vision: ask: the session is not one of this model's")
	}
	if len(imgs) == 0 {
		return errors.New("vision: ask: no image")
	}
	head, tail := promptText(s, len(imgs)*m.enc.Tokens(), question)
	for i, img := range imgs {
		err := m.enc.Encode(ctx, img, nil, func(rows kernels.Tensor) error {
			segs := []core.Segment{{Rows: rows}}
			if i == 0 {
				segs = append([]core.Segment{{Tokens: head}}, segs...)
			}
			if i == len(imgs)-1 {
				segs = append(segs, core.Segment{Tokens: tail})
			}
			return s.PrefillSegments(ctx, segs...)
		})
		if err != nil {
			return fmt.Errorf("image %d: %w", i+1, err)
		}
	}
	return nil
}

// Close frees the encoder, the language model, the backend and the
// checkpoint.
func (m *Model) Close() error {
	var errs []error
	if m.enc != nil {
		m.enc.Close()
		m.enc = nil
	}
	if m.lm != nil {
		errs = append(errs, m.lm.Close())
		m.lm = nil
	}
	if m.be != nil {
		errs = append(errs, m.be.Close())
		m.be = nil
	}
	if m.closer != nil {
		errs = append(errs, m.closer.Close())
		m.closer = nil
	}
	return errors.Join(errs...)
}
