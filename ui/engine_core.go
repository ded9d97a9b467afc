package ui

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
	"github.com/goose-rwkv/goose/ui/history"
	"github.com/goose-rwkv/goose/vision"
)

// CoreEngine runs models with the Goose engine (package core).
type CoreEngine struct {
	mu    sync.Mutex
	tok   *tokenizer.Tokenizer
	be    kernels.Backend
	model *core.Model
	// visual is a loaded VisualRWKV-7 checkpoint (nil for a text model):
	// it owns the backend, the language model (model) and the file.
	visual *vision.Model
	file   *checkpoint.File // a text model's checkpoint
	info   ModelInfo
	// chats are the open sessions on model; they are closed before it is
	// freed (a session outliving its model would use freed memory).
	chats map[*coreChat]bool
}

// NewCoreEngine returns an engine with no model loaded.
func NewCoreEngine() *CoreEngine { return &CoreEngine{} }

// Load implements Engine. A VisualRWKV-7 checkpoint (language model under
// "rwkv.", image towers under "vit.") loads with its image encoder.
func (e *CoreEngine) Load(ctx context.Context, path string, opts LoadOptions, progress func(float64)) (ModelInfo, error) {
	// Check the file before touching the loaded model.
	fi, err := os.Stat(path)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("load model: %w", err)
	}
	f, err := checkpoint.Open(path)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("load model: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	visual := vision.IsCheckpoint(f)
	src := core.LanguageModel(f)
	cfg, err := core.Inspect(src)
	if err != nil {
		return ModelInfo{}, fmt.Errorf("load model: %s is not a usable RWKV-7 model: %w", path, err)
	}
	if err := ctx.Err(); err != nil {
		return ModelInfo{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.tok == nil {
		tok, err := tokenizer.World()
		if err != nil {
			return ModelInfo{}, fmt.Errorf("load tokenizer: %w", err)
		}
		e.tok = tok
	}
	if cfg.Vocab > e.tok.VocabSize()+16 || cfg.Vocab < e.tok.VocabSize() {
		return ModelInfo{}, fmt.Errorf("load model %s: vocabulary of %d tokens does not match the World tokenizer (%d)", path, cfg.Vocab, e.tok.VocabSize())
	}
	// The loaded model stays until the new one is ready. When the new
	// one does not fit beside it (out of memory), the old one is freed and
	// the load tried once more; Info then tells whether any is loaded.
	be, rep, m, vm, err := e.open(f, src, visual, path, opts, progress)
	if err != nil && e.model != nil && isOutOfMemory(err) {
		e.unloadLocked()
		be, rep, m, vm, err = e.open(f, src, visual, path, opts, progress)
	}
	if err != nil {
		return ModelInfo{}, err
	}
	e.unloadLocked()
	// A VisualRWKV-7 model opened the file itself (it owns its copy).
	file := f
	if vm != nil {
		file = nil
	} else {
		keep = true
	}
	e.be, e.model, e.visual, e.file = be, m, vm, file
	c := m.Config()
	key := sha256.Sum256(fmt.Appendf(nil, "%s|%d|%d|%+v", filepath.Base(path), fi.Size(), fi.ModTime().Unix(), c))
	summary := catalog.Describe(c)
	if visual {
		summary += ", vision"
	}
	e.info = ModelInfo{
		Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
		Summary: summary, Backend: rep.Used, Device: rep.Device.Name, Fallback: rep.Fallback,
		WeightBytes: m.WeightBytes(), StateBytes: c.StateBytes(),
		StateKey: hex.EncodeToString(key[:8]), Vision: visual,
	}
	if q := m.Quantization(); q != core.QuantNone {
		e.info.Quant, e.info.SavedBytes = q.String(), c.WeightBytes-m.WeightBytes()
	}
	return e.infoLocked(), nil
}

// open makes a backend and loads the language model (and the image
// encoder of a VisualRWKV-7 checkpoint) on it, touching nothing of e.
func (e *CoreEngine) open(f *checkpoint.File, src core.Source, visual bool, path string, opts LoadOptions, progress func(float64)) (kernels.Backend, backend.Report, *core.Model, *vision.Model, error) {
	if visual {
		// The model opens the file again and owns that copy, its backend
		// and its language model.
		vm, err := vision.Open(path, vision.Options{Backend: opts.Backend, Threads: opts.Threads, Progress: progress})
		if err != nil {
			return nil, backend.Report{}, nil, nil, fmt.Errorf("load model: %w", err)
		}
		return vm.Backend(), vm.Report(), vm.LM(), vm, nil
	}
	be, rep, err := backend.Open(opts.Backend, backend.Options{Threads: opts.Threads})
	if err != nil {
		return nil, rep, nil, nil, fmt.Errorf("open %s backend: %w", opts.Backend, err)
	}
	quant, err := core.ParseQuantization(opts.Quant)
	if err != nil {
		be.Close()
		return nil, rep, nil, nil, err
	}
	m, err := core.Load(src, core.LoadOptions{Backend: be, Progress: progress, Quant: quant})
	if err != nil {
		be.Close()
		return nil, rep, nil, nil, fmt.Errorf("load %s: %w", path, err)
	}
	return be, rep, m, nil, nil
}

func (e *CoreEngine) infoLocked() ModelInfo {
	info := e.info
	if e.be != nil {
		d := e.be.Device()
		info.DeviceTotal, info.DeviceFree = d.TotalMemory, d.FreeMemory
	}
	return info
}

// Info implements Engine.
func (e *CoreEngine) Info() (ModelInfo, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.model == nil {
		return ModelInfo{}, false
	}
	return e.infoLocked(), true
}

// Verify reads the loaded model's file whole: checksums and finite weights
// (core.Model.Verify). The app runs it in the background after a load;
// unloading or replacing the model cancels it.
func (e *CoreEngine) Verify(ctx context.Context) error {
	e.mu.Lock()
	m := e.model
	e.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Verify(ctx, nil)
}

// Unload implements Engine.
func (e *CoreEngine) Unload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unloadLocked()
}

func (e *CoreEngine) unloadLocked() error {
	for c := range e.chats {
		c.closeLocked()
	}
	var errs []error
	if e.visual != nil {
		// The model owns the language model, the backend and the file.
		errs = append(errs, e.visual.Close())
		e.visual, e.model, e.be = nil, nil, nil
	}
	if e.model != nil {
		errs = append(errs, e.model.Close())
		e.model = nil
	}
	if e.file != nil {
		errs = append(errs, e.file.Close())
		e.file = nil
	}
	if e.be != nil {
		errs = append(errs, e.be.Close())
		e.be = nil
	}
	e.info = ModelInfo{}
	return errors.Join(errs...)
}

// NewChat implements Engine.
func (e *CoreEngine) NewChat() (Chat, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.model == nil {
		return nil, errors.New("no model loaded")
	}
	s, err := core.NewSession(e.model, e.tok)
	if err != nil {
		return nil, fmt.Errorf("new session: %w", err)
	}
	c := &coreChat{e: e, s: s, m: e.model, vm: e.visual}
	if e.chats == nil {
		e.chats = map[*coreChat]bool{}
	}
	e.chats[c] = true
	return c, nil
}

// coreChat adapts core.Session to Chat. After Close, or once its model is
// unloaded or replaced, its methods fail with errChatClosed.
type coreChat struct {
	e      *CoreEngine
	s      *core.Session
	m      *core.Model
	vm     *vision.Model // nil for a text model
	closed bool          // guarded by e.mu
}

// errChatClosed is the error of a chat whose model is gone.
var errChatClosed = errors.New("the chat's model was unloaded")

// live reports whether the chat's session may be used.
func (c *coreChat) live() error {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if c.closed {
		return errChatClosed
	}
	return nil
}

// closeLocked frees the session once; e.mu is held.
func (c *coreChat) closeLocked() {
	if !c.closed {
		c.closed = true
		c.s.Close()
		delete(c.e.chats, c)
	}
}

func (c *coreChat) PrefillImages(ctx context.Context, imgs []image.Image, question string) error {
	if c.vm == nil {
		return errors.New("this model cannot read images: load a VisualRWKV-7 model")
	}
	if err := c.live(); err != nil {
		return err
	}
	return c.vm.AskImages(ctx, c.s, imgs, question)
}

func (c *coreChat) Reset() error {
	if err := c.live(); err != nil {
		return err
	}
	return c.s.Reset()
}

func (c *coreChat) Restore(b []byte) error {
	if err := c.live(); err != nil {
		return err
	}
	st, err := c.m.NewState()
	if err != nil {
		return err
	}
	defer st.Free()
	if err := st.UnmarshalBinary(b); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	return c.s.SetState(st)
}

func (c *coreChat) Snapshot() ([]byte, error) {
	if err := c.live(); err != nil {
		return nil, err
	}
	st, err := c.s.State()
	if err != nil {
		return nil, err
	}
	defer st.Free()
	return st.MarshalBinary()
}

func (c *coreChat) Prefill(ctx context.Context, text string) error {
	if err := c.live(); err != nil {
		return err
	}
	return c.s.Prefill(ctx, text)
}

func (c *coreChat) Generate(ctx context.Context, prompt string, p GenParams, onPiece func(string)) (GenResult, error) {
	if err := c.live(); err != nil {
		return GenResult{}, err
	}
	sp := sampleParams(p.Sampling)
	sp.Seed = rand.Uint64() // a regenerated reply should differ
	stats, err := c.s.Generate(ctx, prompt, core.GenerateOptions{
		Sample:       sp,
		MaxTokens:    p.Sampling.MaxTokens,
		Stop:         p.Stop,
		BanEndOfText: true,
	}, func(pc core.Piece) bool {
		onPiece(pc.Text)
		return true
	})
	return GenResult{
		Tokens: stats.Tokens, TokensPerSec: stats.DecodeRate(),
		Cancelled: stats.StopReason == core.StopCancelled,
		EndedTurn: stats.StopReason == core.StopSequence,
	}, err
}

func (c *coreChat) Close() {
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	c.closeLocked()
}

// sampleParams converts stored settings to the sampler's.
func sampleParams(s history.Sampling) sample.Params {
	return sample.Params{
		Temperature: float32(s.Temperature), TopP: float32(s.TopP), TopK: s.TopK,
		PresencePenalty: float32(s.PresencePenalty), FrequencyPenalty: float32(s.FrequencyPenalty),
		PenaltyDecay: float32(s.PenaltyDecay),
	}
}
