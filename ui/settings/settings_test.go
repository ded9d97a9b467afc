package settings

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cfg", "settings.json")
	s, err := Load(path)
	if err != nil || s != Default() {
		t.Fatalf("Load of a missing file = %+v, %v; want defaults", s, err)
	}
	s.ModelsDir, s.Backend, s.Threads, s.Theme, s.LastModel = "/m", "cuda", 6, "dark", "/m/x.pth"
	if err := Save(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil || got != s {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, s)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestLoadPartialAndDamaged(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          func(Settings) bool
		wantErr       string
	}{
		{"partial", `{"theme":"light"}`, func(s Settings) bool { return s.Theme == "light" && s.Backend == "auto" && s.ModelsDir != "" }, ""},
		{"damaged", `{"theme":`, func(s Settings) bool { return s == Default() }, "damaged"},
		{"bad backend", `{"backend":"tpu"}`, func(s Settings) bool { return s == Default() }, "tpu"},
		{"bad threads", `{"threads":-2}`, func(s Settings) bool { return s == Default() }, "threads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name+".json")
			os.WriteFile(p, []byte(tt.content), 0o644)
			s, err := Load(p)
			if !tt.want(s) {
				t.Errorf("Load = %+v", s)
			}
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
	if err := Save(filepath.Join(dir, "x.json"), Settings{Backend: "auto", Theme: "dark"}); err == nil {
		t.Error("Save accepted an empty models folder")
	}
}

func TestDefaultPaths(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("XDG_DATA_HOME", "/data")
	if p, _ := DefaultPath(); p != "/cfg/goose/settings.json" {
		t.Errorf("DefaultPath = %s", p)
	}
	if d := Default().ModelsDir; d != "/data/goose/models" {
		t.Errorf("models dir = %s", d)
	}
}
