package ui

import (
	"context"
	"errors"
	"fmt"

	"github.com/goose-rwkv/goose/audio/fbank"
	"github.com/goose-rwkv/goose/audio/resample"
)

// spectrogramBins is the number of mel bins drawn (A-RWKV's input).
const spectrogramBins = 128

// CoreAudioEngine is the AudioEngine of Goose's audio package.
type CoreAudioEngine struct{}

// NewCoreAudioEngine returns the real audio engine with no model loaded.
func NewCoreAudioEngine() *CoreAudioEngine { return &CoreAudioEngine{} }

// errNoTagger is returned until package audio's Tagger is wired in.
var errNoTagger = errors.New("this build of Goose cannot load A-RWKV taggers in the app yet")

// Load loads an A-RWKV tagger.
func (e *CoreAudioEngine) Load(ctx context.Context, path string, opts LoadOptions) (AudioModelInfo, error) {
	return AudioModelInfo{}, errNoTagger
}

// Unload frees the tagger.
func (e *CoreAudioEngine) Unload() error { return nil }

// Tag tags a recording.
func (e *CoreAudioEngine) Tag(ctx context.Context, pcm []float32, rate int) (AudioResult, error) {
	return AudioResult{}, errNoTagger
}

// NewStream starts tagging live audio.
func (e *CoreAudioEngine) NewStream(rate int) (AudioStream, error) { return nil, errNoTagger }

// Spectrogram returns the Kaldi log-mel filterbank A-RWKV reads (128 bins,
// 25 ms frames 10 ms apart, at 32 kHz), before its normalisation.
func (e *CoreAudioEngine) Spectrogram(pcm []float32, rate int) ([][]float32, error) {
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
