// Package audio tags sound with AudioSet labels: it loads an AudioRWKV-7
// (A-RWKV) checkpoint onto a compute backend, turns PCM at any rate into
// the model's log-mel input, runs sliding windows of the model's clip
// length through it in batches, and returns a timeline of tags and a
// recording's top tags. Live audio is tagged with a Stream, window by
// window as it completes.
//
// The model itself is in audio/arwkv, the front end in audio/fbank, WAV
// reading in audio/wav and rate conversion in audio/resample. This package
// imports no GUI or audio-device code.
package audio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/audio/arwkv"
	"github.com/goose-rwkv/goose/audio/fbank"
	"github.com/goose-rwkv/goose/audio/resample"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/internal/regfile"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// Options configure Open.
type Options struct {
	// Backend is "auto", "cpu" or "cuda" (empty means "auto").
	Backend string
	// Threads for the CPU backend; 0 means all cores.
	Threads int
	// Config is the path of a JSON configuration (the layout of
	// arwkv.Config). Empty means the released models' configuration,
	// which fits any checkpoint with a 62×8 patch grid.
	Config string
}

// Info describes a loaded tagger.
type Info struct {
	Kind       string        // "A-RWKV-T", "A-RWKV-S", "A-RWKV-B" or "A-RWKV (C=…)"
	Size       string        // "T", "S", "B" or "" for other widths
	Layers     int           // blocks
	Width      int           // channels, C
	Classes    int           // outputs (527 for AudioSet)
	Params     int64         // parameters
	SampleRate int           // Hz the model hears (input at other rates is resampled)
	Clip       time.Duration // window length (10 s for the released models)
	Frames     int           // log-mel frames per window
	Bins       int           // mel bins per frame
	Backend    string        // "cpu" or "cuda"
	Device     string        // e.g. "CPU (2 threads, amd64)"
}

// Tagger is a loaded A-RWKV model. It owns its backend, its weights and
// its file; Close releases all three. Its methods may be called from
// several goroutines (model calls run one at a time).
type Tagger struct {
	cfg   arwkv.Config
	info  Info
	batch int // default windows per model call

	mu     sync.Mutex // guards closed against Close
	model  *arwkv.Model
	file   *checkpoint.File
	path   string // the checkpoint's path; "" for NewTagger's
	be     kernels.Backend
	closed bool
}

// ErrClosed is returned by a closed Tagger.
var ErrClosed = errors.New("audio: tagger closed")

// Open loads the A-RWKV checkpoint at path onto the backend opts names.
func Open(path string, opts Options) (*Tagger, error) {
	cfg := arwkv.Released()
	if opts.Config != "" {
		c, err := ReadConfig(opts.Config)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	f, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	if !arwkv.IsCheckpoint(f) {
		f.Close()
		return nil, fmt.Errorf("load %s: not an A-RWKV audio tagger (no patch embedding emb.weight [C,1,16,16], pos_embed and ConvShift kernels)", path)
	}
	be, rep, err := backend.Open(opts.Backend, backend.Options{Threads: opts.Threads})
	if err != nil {
		f.Close()
		return nil, err
	}
	m, err := arwkv.Load(f, cfg, be)
	if err != nil {
		be.Close()
		f.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	t := NewTagger(m)
	t.file, t.path, t.be = f, path, be
	t.info.Backend, t.info.Device = rep.Used, rep.Device.Name
	return t, nil
}

// NewTagger wraps a loaded model (random weights for a benchmark, say).
// The tagger does not own the model's backend: Close closes the model
// only.
func NewTagger(m *arwkv.Model) *Tagger {
	cfg, d := m.Config(), m.Dims()
	be := m.Backend()
	t := &Tagger{cfg: cfg, model: m}
	t.info = Info{
		Layers: d.Layers, Width: d.Width, Classes: d.Classes, Params: m.Params(),
		SampleRate: cfg.SampleRate, Frames: cfg.TargetLength, Bins: cfg.Fbank.NumMelBins,
		Clip:    time.Duration(clipSamples(cfg)) * time.Second / time.Duration(cfg.SampleRate),
		Backend: be.Name(), Device: be.Device().Name,
	}
	t.info.Size, t.info.Kind = d.Size()
	t.batch = defaultBatch(be, d)
	return t
}

// defaultBatch is the number of windows per model call: enough that the
// products reach the backend's rate (its preferred prefill chunk).
func defaultBatch(be kernels.Backend, d arwkv.Dims) int {
	return min(16, max(1, (be.Capabilities().PrefillChunk+d.Tokens-1)/d.Tokens))
}

// ReadConfig reads an A-RWKV configuration file (a regular file of at
// most 1 MiB) and validates it.
func ReadConfig(path string) (arwkv.Config, error) {
	var c arwkv.Config
	raw, err := regfile.ReadFile(path, 1<<20)
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// DefaultBatch is the number of windows run through the model at once
// when TagOptions.Batch is zero.
func (t *Tagger) DefaultBatch() int { return t.batch }

// Info describes the model.
func (t *Tagger) Info() Info { return t.info }

// Close releases the model, its backend and its file.
func (t *Tagger) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	t.model.Close()
	if t.be != nil {
		t.be.Close()
	}
	if t.file != nil {
		return t.file.Close()
	}
	return nil
}

// TagOptions configure Tag and NewStream.
type TagOptions struct {
	// Hop is the time between window starts; 0 means half the clip
	// length (5 s for the released models). It must not exceed the clip.
	Hop time.Duration
	// Batch is the most windows run through the model at once; 0 picks a
	// size suited to the backend.
	Batch int
	// Top and Threshold filter Result.Top (Window.Top filters on demand):
	// at most Top tags (0 means 10, a negative value all of them) with
	// probability at least Threshold.
	Top       int
	Threshold float32
}

// hopFrames returns the hop in samples at the model's rate.
func (t *Tagger) hopSamples(opts TagOptions) (int, error) {
	clip := t.clipSamples()
	if opts.Hop == 0 {
		return clip / 2, nil
	}
	if opts.Hop < 10*time.Millisecond || opts.Hop > t.info.Clip {
		return 0, fmt.Errorf("audio: hop %v: want 10ms to the clip length %v", opts.Hop, t.info.Clip)
	}
	return int(opts.Hop.Seconds() * float64(t.cfg.SampleRate)), nil
}

// clipSamples is the clip length in samples at the model's rate: the
// samples of TargetLength frames (25 ms long, every 10 ms), rounded up to
// a tenth of a second (10 s for the released models' 992 frames).
func (t *Tagger) clipSamples() int { return clipSamples(t.cfg) }

func clipSamples(c arwkv.Config) int {
	shift, win := c.SampleRate/100, c.SampleRate/40
	n := (c.TargetLength-1)*shift + win
	tenth := c.SampleRate / 10
	return (n + tenth - 1) / tenth * tenth
}

// Tag tags mono PCM in [-1, 1] at any sample rate (resampled to the
// model's): sliding windows of the clip length with hop opts.Hop, the last
// one covering the end of the recording, batched through the model. ctx
// is checked between batches.
func (t *Tagger) Tag(ctx context.Context, pcm []float32, rate int, opts TagOptions) (*Result, error) {
	s, err := t.newStream(rate, opts)
	if err != nil {
		return nil, err
	}
	// Write in pieces of one batch of hops, so windows complete in batches.
	piece := max(1, int(float64(s.hop*s.batch)*float64(rate)/float64(t.cfg.SampleRate)))
	var ws []Window
	for off := 0; off < len(pcm); off += piece {
		w, err := s.Write(ctx, pcm[off:min(off+piece, len(pcm))])
		if err != nil {
			return nil, err
		}
		ws = append(ws, w...)
	}
	w, err := s.Flush(ctx)
	if err != nil {
		return nil, err
	}
	ws = append(ws, w...)
	return s.result(ws), nil
}

// Spectrogram returns the log-mel features the model hears, for drawing:
// frames × bins, one frame every 10 ms (not normalised, not padded).
func (t *Tagger) Spectrogram(pcm []float32, rate int) ([][]float32, error) {
	x, err := resample.Resample(pcm, rate, t.cfg.SampleRate)
	if err != nil {
		return nil, err
	}
	if len(x) < t.cfg.SampleRate/40 {
		return nil, nil
	}
	return fbank.Compute(x, fbank.AudioSet(float64(t.cfg.SampleRate), t.cfg.Fbank.NumMelBins))
}

// probs runs windows of samples (at the model's rate) through the model
// and returns each window's class probabilities. The inputs (log-mel
// features) are computed in parallel.
//
// A model file truncated while mapped fails the call, naming the file,
// instead of the process (internal/memfault).
func (t *Tagger) probs(ctx context.Context, clips [][]float32) (_ [][]float32, err error) {
	defer memfault.CatchFile(t.path, &err)()
	inputs := make([][]float32, len(clips))
	errs := make([]error, len(clips))
	var wg sync.WaitGroup
	for i, c := range clips {
		wg.Go(func() { inputs[i], errs[i] = t.cfg.Input(c, t.cfg.SampleRate) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	logits, err := t.model.Logits(ctx, inputs)
	if errors.Is(err, arwkv.ErrClosed) {
		return nil, ErrClosed
	}
	if err != nil {
		return nil, err
	}
	for _, l := range logits {
		for j, v := range l {
			l[j] = float32(1 / (1 + math.Exp(-float64(v))))
		}
	}
	return logits, nil
}
