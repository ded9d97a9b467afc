package arwkv

import (
	"fmt"
	"math"
)

// Config is an A-RWKV model's configuration, in the layout of the
// fixture's JSON file. Model.Grid and Model.Patch fix the network's input;
// the rest describe the front end that produces it.
type Config struct {
	SampleRate   int         `json:"sample_rate"`
	TargetLength int         `json:"target_length"` // frames after padding
	NormMean     float32     `json:"norm_mean"`
	NormStd      float32     `json:"norm_std"`
	Fbank        FbankConfig `json:"fbank"`
	Model        ModelConfig `json:"model"`
}

// FbankConfig holds the Kaldi fbank arguments of the front end.
type FbankConfig struct {
	NumMelBins int `json:"num_mel_bins"`
}

// ModelConfig holds the network's sizes. Layers, Width and Classes are
// optional (zero means "take it from the checkpoint"); when set they must
// match the checkpoint.
type ModelConfig struct {
	Layers  int    `json:"n_layer"`
	Width   int    `json:"n_embd"`
	Classes int    `json:"num_classes"`
	Grid    [2]int `json:"grid"`  // patches along time, along frequency
	Patch   int    `json:"patch"` // patch side, 16
}

// Released returns the configuration of the released A-RWKV models
// (T, S and B share it): 32 kHz audio, 128 mel bins, 992 frames (10 s),
// a 62×8 grid of 16×16 patches, the AudioSet normalisation.
func Released() Config {
	return Config{
		SampleRate:   32000,
		TargetLength: 992,
		NormMean:     -4.421761,
		NormStd:      4.32408,
		Fbank:        FbankConfig{NumMelBins: 128},
		Model:        ModelConfig{Grid: [2]int{62, 8}, Patch: 16},
	}
}

// Bounds on configuration fields: far outside any real model, tight
// enough that no field can make the program allocate without limit.
const (
	minRate, maxRate = 1000, 192000
	maxFrames        = 100000 // 1000 s at 10 ms a frame
	maxBins          = 1024
	maxPatch         = 64
	maxGridSide      = 4096
	maxTokens        = 1 << 16
	maxLayers        = 256
	maxWidth         = 16384
	maxClasses       = 1 << 17
)

// Validate checks every field against sane bounds and against each other
// (target_length = grid[0]·patch, num_mel_bins = grid[1]·patch). Errors
// name the field.
func (c Config) Validate() error {
	m := c.Model
	switch {
	case c.SampleRate < minRate || c.SampleRate > maxRate:
		return fmt.Errorf("arwkv: config sample_rate %d: want %d to %d Hz", c.SampleRate, minRate, maxRate)
	case math.IsNaN(float64(c.NormMean)) || math.IsInf(float64(c.NormMean), 0):
		return fmt.Errorf("arwkv: config norm_mean %v: want a finite number", c.NormMean)
	case math.IsNaN(float64(c.NormStd)) || math.IsInf(float64(c.NormStd), 0) || c.NormStd == 0:
		return fmt.Errorf("arwkv: config norm_std %v: want a finite nonzero number", c.NormStd)
	case m.Patch < 1 || m.Patch > maxPatch:
		return fmt.Errorf("arwkv: config model.patch %d: want 1 to %d", m.Patch, maxPatch)
	case m.Grid[0] < 1 || m.Grid[0] > maxGridSide || m.Grid[1] < 1 || m.Grid[1] > maxGridSide:
		return fmt.Errorf("arwkv: config model.grid %v: want two sizes of 1 to %d", m.Grid, maxGridSide)
	case m.Grid[0]*m.Grid[1] > maxTokens:
		return fmt.Errorf("arwkv: config model.grid %v: %d patches, want at most %d", m.Grid, m.Grid[0]*m.Grid[1], maxTokens)
	case c.TargetLength < 1 || c.TargetLength > maxFrames:
		return fmt.Errorf("arwkv: config target_length %d: want 1 to %d frames", c.TargetLength, maxFrames)
	case c.TargetLength != m.Grid[0]*m.Patch:
		return fmt.Errorf("arwkv: config target_length %d: want grid[0]·patch = %d·%d = %d", c.TargetLength, m.Grid[0], m.Patch, m.Grid[0]*m.Patch)
	case c.Fbank.NumMelBins < 4 || c.Fbank.NumMelBins > maxBins:
		return fmt.Errorf("arwkv: config fbank.num_mel_bins %d: want 4 to %d", c.Fbank.NumMelBins, maxBins)
	case c.Fbank.NumMelBins != m.Grid[1]*m.Patch:
		return fmt.Errorf("arwkv: config fbank.num_mel_bins %d: want grid[1]·patch = %d·%d = %d", c.Fbank.NumMelBins, m.Grid[1], m.Patch, m.Grid[1]*m.Patch)
	case m.Layers < 0 || m.Layers > maxLayers:
		return fmt.Errorf("arwkv: config model.n_layer %d: want 0 (from the checkpoint) to %d", m.Layers, maxLayers)
	case m.Width < 0 || m.Width > maxWidth:
		return fmt.Errorf("arwkv: config model.n_embd %d: want 0 (from the checkpoint) to %d", m.Width, maxWidth)
	case m.Classes < 0 || m.Classes > maxClasses:
		return fmt.Errorf("arwkv: config model.num_classes %d: want 0 (from the checkpoint) to %d", m.Classes, maxClasses)
	}
	return nil
}

// Kind names a model by its width: the released sizes are T (192), S (384)
// and B (768); size is "" for any other width.
func Kind(width int) (size, kind string) {
	switch width {
	case 192:
		return "T", "A-RWKV-T"
	case 384:
		return "S", "A-RWKV-S"
	case 768:
		return "B", "A-RWKV-B"
	}
	return "", fmt.Sprintf("A-RWKV (C=%d)", width)
}
