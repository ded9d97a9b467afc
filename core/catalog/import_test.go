package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core"
)

func writeTinyModel(t *testing.T, path string) {
	t.Helper()
	if err := core.WriteRandom(path, core.Config{Layers: 2, Width: 64, Vocab: 300, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 16, GateLoRA: 16}, 7); err != nil {
		t.Fatalf("WriteRandom: %v", err)
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestImport(t *testing.T) {
	srcDir, models := t.TempDir(), filepath.Join(t.TempDir(), "models")
	src := filepath.Join(srcDir, "tiny.safetensors")
	writeTinyModel(t, src)
	before := fileSum(t, src)

	dest, cfg, err := Import(context.Background(), src, models, nil)
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if cfg.Layers != 2 || cfg.Width != 64 || cfg.Vocab != 300 {
		t.Errorf("config %+v, want 2 layers, width 64, vocab 300", cfg)
	}
	if dest != filepath.Join(models, "tiny.safetensors") {
		t.Errorf("dest %s", dest)
	}
	if fileSum(t, dest) != before || fileSum(t, src) != before {
		t.Error("imported or source file differs from the original")
	}
	// Importing again is a no-op.
	if d2, _, err := Import(context.Background(), src, models, nil); err != nil || d2 != dest {
		t.Errorf("second Import = %s, %v", d2, err)
	}
	// Importing the file already in the folder is a no-op too.
	if d3, _, err := Import(context.Background(), dest, models, nil); err != nil || d3 != dest {
		t.Errorf("Import of the folder's own file = %s, %v", d3, err)
	}
	locals, err := Scan(models)
	if err != nil || len(locals) != 1 || locals[0].Path != dest {
		t.Errorf("Scan = %+v, %v", locals, err)
	}
}

func TestImportRefuses(t *testing.T) {
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	good := filepath.Join(dir, "good.safetensors")
	writeTinyModel(t, good)
	goodBytes, _ := os.ReadFile(good)

	tests := []struct {
		name, file string
		content    []byte
		want       string
	}{
		{"garbage", "junk.pth", []byte("this is not a model at all, just some text"), "junk.pth"},
		{"truncated", "cut.safetensors", goodBytes[:len(goodBytes)/2], "cut.safetensors"},
		{"empty", "empty.pth", nil, "empty.pth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.file)
			if err := os.WriteFile(p, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, err := Import(context.Background(), p, models, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Import error %v, want one naming %s", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(models, tt.file)); !os.IsNotExist(err) {
				t.Errorf("refused file appeared in the models folder")
			}
			if b, _ := os.ReadFile(p); !bytes.Equal(b, tt.content) {
				t.Errorf("the user's file was modified")
			}
		})
	}

	// A different file with the same name is never overwritten.
	os.MkdirAll(models, 0o755)
	other := filepath.Join(models, "good.safetensors")
	os.WriteFile(other, []byte("mine"), 0o644)
	if _, _, err := Import(context.Background(), good, models, nil); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("Import over an existing name: %v", err)
	}
	if b, _ := os.ReadFile(other); string(b) != "mine" {
		t.Errorf("existing file overwritten")
	}
}

func TestCopyFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "a")
	data, _ := blob(3<<20 + 1)
	os.WriteFile(src, data, 0o644)
	var last int64
	dest := filepath.Join(dir, "b")
	if err := copyFile(context.Background(), src, dest, int64(len(data)), func(d, total int64) { last = d }); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) || last != int64(len(data)) {
		t.Fatalf("copy differs or progress %d", last)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := copyFile(ctx, src, filepath.Join(dir, "c"), 0, nil); err == nil {
		t.Fatal("cancelled copy succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "c.part")); !os.IsNotExist(err) {
		t.Error("cancelled copy left its .part file")
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{999, "999 B"}, {382_000_000, "382 MB"}, {5_895_796_446, "5.9 GB"}, {3_060_000_000, "3.1 GB"}, {1000, "1 kB"},
	}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := FormatParams(450_830_000); got != "451M" {
		t.Errorf("FormatParams = %q", got)
	}
	if got := FormatParams(2_948_070_000); got != "2.9B" {
		t.Errorf("FormatParams = %q", got)
	}
}

func TestOfficial(t *testing.T) {
	ms := Official()
	if len(ms) != 4 {
		t.Fatalf("%d models", len(ms))
	}
	for _, m := range ms {
		if !strings.HasPrefix(m.URL, "https://huggingface.co/BlinkDL/rwkv-7-world/resolve/main/") || !strings.HasSuffix(m.URL, m.File) {
			t.Errorf("%s: URL %s", m.Name, m.URL)
		}
		if m.SHA256 != "" && len(m.SHA256) != 64 {
			t.Errorf("%s: bad digest", m.Name)
		}
		shape, ok := core.OfficialShape(strings.ToLower(strings.Fields(m.Name)[2]))
		if !ok || shape.Layers != m.Layers || shape.Width != m.Embd {
			t.Errorf("%s: L%d C%d disagrees with core.OfficialShape %+v", m.Name, m.Layers, m.Embd, shape)
		}
	}
	if ms[2].Verified() || !strings.Contains(ms[2].Verification(), "Unverified") {
		t.Error("1.5B has no published digest and must say unverified")
	}
}
