package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/audio/fbank"
	"github.com/goose-rwkv/goose/audio/resample"
	"github.com/goose-rwkv/goose/ui/history"
)

// spectrogramBins is the number of mel bins drawn (A-RWKV's input).
const spectrogramBins = 128

// CoreAudioEngine is the AudioEngine of Goose's audio package: an A-RWKV
// tagger (audio.Tagger) on the backend the settings choose.
type CoreAudioEngine struct {
	mu     sync.Mutex
	t      *audio.Tagger
	labels []string
}

// NewCoreAudioEngine returns the real audio engine with no model loaded.
func NewCoreAudioEngine() *CoreAudioEngine { return &CoreAudioEngine{} }

var errNoTagger = errors.New("no tagger model is loaded")

func (e *CoreAudioEngine) tagger() (*audio.Tagger, []string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.t == nil {
		return nil, nil, errNoTagger
	}
	return e.t, e.labels, nil
}

// Load loads the A-RWKV checkpoint at path, closing the tagger loaded
// before only once the new one has loaded. A configuration file beside it
// with the same name and .json (model.pth, model.json) is used when there
// is one; otherwise the released models' configuration.
func (e *CoreAudioEngine) Load(ctx context.Context, path string, opts LoadOptions) (AudioModelInfo, error) {
	var config string
	if c := strings.TrimSuffix(path, filepath.Ext(path)) + ".json"; c != path {
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			config = c
		}
	}
	t, err := audio.Open(path, audio.Options{Backend: opts.Backend, Threads: opts.Threads, Config: config})
	if err != nil {
		return AudioModelInfo{}, err
	}
	info := t.Info()
	labels := make([]string, info.Classes)
	for i := range labels {
		labels[i] = audio.LabelName(i, info.Classes)
	}
	e.mu.Lock()
	old := e.t
	e.t, e.labels = t, labels
	e.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return AudioModelInfo{
		Path:    path,
		Name:    strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
		Summary: fmt.Sprintf("%s, %d classes, %s", info.Kind, info.Classes, info.Device),
		Labels:  labels,
	}, nil
}

// Unload frees the tagger.
func (e *CoreAudioEngine) Unload() error {
	e.mu.Lock()
	t := e.t
	e.t, e.labels = nil, nil
	e.mu.Unlock()
	if t == nil {
		return nil
	}
	return t.Close()
}

// Tag tags a recording: 10-s windows every 5 s, batched.
func (e *CoreAudioEngine) Tag(ctx context.Context, pcm []float32, rate int) (AudioResult, error) {
	t, _, err := e.tagger()
	if err != nil {
		return AudioResult{}, err
	}
	res, err := t.Tag(ctx, pcm, rate, audio.TagOptions{Top: keepTop, Threshold: keepMinProb})
	if err != nil {
		return AudioResult{}, err
	}
	out := AudioResult{Duration: res.Duration, Windows: windowsOf(res.Windows)}
	for _, tg := range res.Top {
		out.Top = append(out.Top, history.Tag{Index: tg.Index, Label: tg.Label, Prob: tg.Prob})
	}
	return out, nil
}

func windowsOf(ws []audio.Window) []AudioWindow {
	out := make([]AudioWindow, len(ws))
	for i, w := range ws {
		out[i] = AudioWindow{Start: w.Start, End: w.End, Probs: w.Probs}
	}
	return out
}

// coreStream adapts audio.Stream.
type coreStream struct{ s *audio.Stream }

func (c coreStream) Write(ctx context.Context, pcm []float32) ([]AudioWindow, error) {
	ws, err := c.s.Write(ctx, pcm)
	return windowsOf(ws), err
}

// NewStream starts tagging live audio.
func (e *CoreAudioEngine) NewStream(rate int) (AudioStream, error) {
	t, _, err := e.tagger()
	if err != nil {
		return nil, err
	}
	return coreStream{t.NewStream(rate, audio.TagOptions{})}, nil
}

// Spectrogram returns the log-mel features the tagger hears (128 bins,
// 25 ms frames 10 ms apart, at 32 kHz, before normalisation); without a
// tagger, the same features of the released models' front end.
func (e *CoreAudioEngine) Spectrogram(pcm []float32, rate int) ([][]float32, error) {
	if t, _, err := e.tagger(); err == nil {
		return t.Spectrogram(pcm, rate)
	}
	return logMel(pcm, rate)
}

// logMel computes the AudioSet log-mel filterbank of pcm at 32 kHz.
func logMel(pcm []float32, rate int) ([][]float32, error) {
	if rate != recordRate {
		var err error
		if pcm, err = resample.Resample(pcm, rate, recordRate); err != nil {
			return nil, err
		}
	}
	if len(pcm) < recordRate/40 {
		return nil, nil // shorter than one frame
	}
	f, err := fbank.Compute(pcm, fbank.AudioSet(recordRate, spectrogramBins))
	if err != nil {
		return nil, fmt.Errorf("spectrogram: %w", err)
	}
	return f, nil
}
