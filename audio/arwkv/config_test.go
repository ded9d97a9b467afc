package arwkv

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestConfigValidate: every field out of bounds is refused with an error
// naming it, before anything sized by it is allocated (a target_length of
// 2⁶² used to panic in Input and 1e9 to run out of memory).
func TestConfigValidate(t *testing.T) {
	if err := Released().Validate(); err != nil {
		t.Fatalf("released config: %v", err)
	}
	edit := func(f func(*Config)) Config {
		c := Released()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"huge target_length", edit(func(c *Config) { c.TargetLength = 1 << 62 }), "target_length 4611686018427387904"},
		{"1e9 target_length", edit(func(c *Config) { c.TargetLength = 1e9 }), "target_length 1000000000"},
		{"target_length vs grid", edit(func(c *Config) { c.TargetLength = 1000 }), "target_length 1000: want grid[0]·patch"},
		{"zero target_length", edit(func(c *Config) { c.TargetLength = 0 }), "target_length 0"},
		{"negative rate", edit(func(c *Config) { c.SampleRate = -1 }), "sample_rate -1"},
		{"huge rate", edit(func(c *Config) { c.SampleRate = 1 << 40 }), "sample_rate"},
		{"zero std", edit(func(c *Config) { c.NormStd = 0 }), "norm_std 0"},
		{"nan mean", edit(func(c *Config) { c.NormMean = float32(math.NaN()) }), "norm_mean NaN"},
		{"inf std", edit(func(c *Config) { c.NormStd = float32(math.Inf(1)) }), "norm_std +Inf"},
		{"huge bins", edit(func(c *Config) { c.Fbank.NumMelBins = 1 << 30 }), "num_mel_bins 1073741824"},
		{"bins vs grid", edit(func(c *Config) { c.Fbank.NumMelBins = 64 }), "num_mel_bins 64: want grid[1]·patch"},
		{"zero patch", edit(func(c *Config) { c.Model.Patch = 0 }), "model.patch 0"},
		{"huge grid", edit(func(c *Config) { c.Model.Grid = [2]int{1 << 40, 8} }), "model.grid"},
		{"grid overflow", edit(func(c *Config) { c.Model.Grid = [2]int{4000, 4000} }), "patches"},
		{"negative layers", edit(func(c *Config) { c.Model.Layers = -3 }), "model.n_layer -3"},
		{"huge width", edit(func(c *Config) { c.Model.Width = 1 << 30 }), "model.n_embd"},
		{"huge classes", edit(func(c *Config) { c.Model.Classes = 1 << 40 }), "model.num_classes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want it to mention %q", err, tc.want)
			}
			if _, err := tc.cfg.Input(make([]float32, 32000), 32000); err == nil {
				t.Fatal("Input accepted the config")
			}
		})
	}
}

// FuzzConfig decodes arbitrary JSON as a config: Validate must never panic,
// and a config it accepts must give an input of bounded size.
func FuzzConfig(f *testing.F) {
	good, _ := json.Marshal(Released())
	f.Add(good)
	f.Add([]byte(`{"sample_rate":32000,"target_length":4611686018427387904,"fbank":{"num_mel_bins":128},"model":{"grid":[62,8],"patch":16}}`))
	f.Add([]byte(`{"target_length":1e9}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if json.Unmarshal(data, &c) != nil {
			return
		}
		if c.Validate() != nil {
			return
		}
		if n := c.TargetLength * c.Fbank.NumMelBins; n <= 0 || n > maxFrames*maxBins {
			t.Fatalf("accepted config with %d input values", n)
		}
	})
}
