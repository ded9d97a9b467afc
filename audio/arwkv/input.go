package arwkv

import (
	"fmt"

	"github.com/goose-rwkv/goose/audio/fbank"
)

// Input turns mono samples (scaled to [-1, 1), at the configured rate)
// into the tagger's input: the Kaldi log-mel filterbank with the AudioSet
// settings, zero-padded (after the log, as the reference pads) or
// truncated to TargetLength frames, normalised with NormMean and NormStd.
// Samples shorter than one frame give an input of padding only. It does
// not resample: rate must be the configured one.
func (c Config) Input(samples []float32, rate int) ([]float32, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if rate != c.SampleRate {
		return nil, fmt.Errorf("arwkv: audio at %d Hz, the model expects %d Hz", rate, c.SampleRate)
	}
	bins := c.Fbank.NumMelBins
	opts := fbank.AudioSet(float64(rate), bins)
	// Only the samples of TargetLength frames are needed (25 ms frames
	// every 10 ms).
	need := (c.TargetLength-1)*rate/100 + rate/40
	var feats [][]float32
	if len(samples) >= rate/40 {
		var err error
		if feats, err = fbank.Compute(samples[:min(len(samples), need)], opts); err != nil {
			return nil, fmt.Errorf("arwkv: %w", err)
		}
	}
	input := make([]float32, c.TargetLength*bins)
	for i := range c.TargetLength {
		row := input[i*bins : (i+1)*bins]
		if i < len(feats) {
			copy(row, feats[i])
		}
		for j := range row {
			row[j] = (row[j] - c.NormMean) / c.NormStd
		}
	}
	return input, nil
}
