// Package settings loads and saves the desktop app's preferences as JSON in
// the user's configuration directory. It has no user-interface code.
package settings

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"os"
	"path/filepath"
	"slices"
)

// Backends returns the backend names the app can ask for.
func Backends() []string { return []string{"auto", "cpu", "cuda"} }

// Quants returns the weight encodings the app can load models with: "none"
// (as in the file) and "int8" (core.QuantInt8).
func Quants() []string { return []string{"none", "int8"} }

// Themes returns the theme names the app can show.
func Themes() []string { return []string{"system", "light", "dark"} }

// Settings are the user's preferences.
type Settings struct {
	// ModelsDir is where downloaded and imported models live.
	ModelsDir string `json:"models_dir"`
	// Backend is "auto", "cpu" or "cuda".
	Backend string `json:"backend"`
	// Threads is the CPU thread count; 0 means one per core.
	Threads int `json:"threads"`
	// Quant is how the weights are kept in memory: "none" (as in the
	// file) or "int8" (about half the memory of bf16).
	Quant string `json:"quant,omitempty"`
	// Theme is "system", "light" or "dark".
	Theme string `json:"theme"`
	// LastModel is the path of the model loaded last; it is loaded again at
	// start.
	LastModel string `json:"last_model,omitempty"`
	// AudioModel is the A-RWKV tagger the Audio screen loaded last.
	AudioModel string `json:"audio_model,omitempty"`
}

// Default returns the settings of a fresh install. The models folder is
// $XDG_DATA_HOME/goose/models (~/.local/share/goose/models).
func Default() Settings {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, ".local", "share")
		} else {
			dir = os.TempDir()
		}
	}
	return Settings{ModelsDir: filepath.Join(dir, "goose", "models"), Backend: "auto", Theme: "system"}
}

// DefaultPath returns the settings file: goose/settings.json in
// os.UserConfigDir ($XDG_CONFIG_HOME or ~/.config on Linux).
func DefaultPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("settings: no config directory: %w", err)
	}
	return filepath.Join(dir, "goose", "settings.json"), nil
}

// Validate reports the first setting out of range.
func (s Settings) Validate() error {
	switch {
	case s.ModelsDir == "":
		return errors.New("settings: models folder is empty")
	case !slices.Contains(Backends(), s.Backend):
		return fmt.Errorf("settings: backend %q, want one of %v", s.Backend, Backends())
	case s.Quant != "" && !slices.Contains(Quants(), s.Quant):
		return fmt.Errorf("settings: quant %q, want one of %v", s.Quant, Quants())
	case s.Threads < 0 || s.Threads > 1024:
		return fmt.Errorf("settings: %d threads, want 0 (automatic) to 1024", s.Threads)
	case !slices.Contains(Themes(), s.Theme):
		return fmt.Errorf("settings: theme %q, want one of %v", s.Theme, Themes())
	}
	return nil
}

// Load reads the settings at path. A missing file gives Default() and no
// error. Fields missing from the file keep their defaults. A damaged file
// gives Default() and an error naming the file, so the app can start and
// say why the user's settings were not used.
func Load(path string) (Settings, error) {
	s := Default()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("settings: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Default(), fmt.Errorf("settings: %s is damaged (%v); using defaults", path, err)
	}
	if err := s.Validate(); err != nil {
		return Default(), fmt.Errorf("%w (in %s); using defaults", err, path)
	}
	return s, nil
}

// Save writes s to path atomically: to a temporary file in the same
// directory, synced, then renamed over the old file.
func Save(path string, s Settings) error {
	if err := s.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	return nil
}
