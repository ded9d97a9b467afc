package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/goose-rwkv/goose/internal/npy"
)

// testDir is a folder for what the tests build or write once (binaries,
// models); TestMain removes it.
var testDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "gooseapp-test") })

// goBuild builds gooseapp into dir as name (".exe" added on Windows), with
// cgo (the desktop app linked, as in a release) or without (terminal
// commands only), and returns its path.
func goBuild(dir, name string, cgo bool) (string, error) {
	bin := filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if !cgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	return bin, nil
}

// nocgoBinary builds gooseapp without cgo, once per test binary.
var nocgoBinary = sync.OnceValues(func() (string, error) {
	dir, err := testDir()
	if err != nil {
		return "", err
	}
	return goBuild(dir, "gooseapp-nocgo", false)
})

// buildBinary returns gooseapp built without cgo (nocgoBinary).
func buildBinary(t *testing.T) string {
	t.Helper()
	bin, err := nocgoBinary()
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	t.Run("logits", func(t *testing.T) { testLogits(t, bin) })
	t.Run("tokenize", func(t *testing.T) { testTokenize(t, bin) })
	t.Run("info", func(t *testing.T) {
		out, err := exec.Command(bin, "info", "../../testdata/rwkv7/small.safetensors").CombinedOutput()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"layers:      3", "width:       256", "vocab:       2048", "dtype:       bf16"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("info output lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("ask", func(t *testing.T) {
		// The VisualRWKV-7 fixture: mm.png and its question; the first
		// answer token must be the reference's argmax (token 44602).
		dir := "../../testdata/visualrwkv/"
		cmd := exec.Command(bin, "ask", "--model", dir+"mm.visualrwkv.pth", "--config", dir+"mm.visualrwkv.json",
			"--image", dir+"mm.png", "--backend", "cpu", "--max-tokens", "1", "What is in the image?")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v", err)
		}
		want := exec.Command(bin, "detokenize")
		want.Stdin = strings.NewReader("44602")
		w, err := want.Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != string(w) {
			t.Errorf("ask answered %q, want the reference's first token %q", got, w)
		}
		bad := exec.Command(bin, "ask", "--model", dir+"mm.visualrwkv.pth", "--config", dir+"mm.visualrwkv.json",
			"--image", "../../testdata/rwkv7/tiny.json", "--backend", "cpu", "What?")
		if msg, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(msg), "tiny.json") {
			t.Errorf("a non-image file: %v\n%s", err, msg)
		}
		// The time to the first token goes to stderr.
		var stderr strings.Builder
		cmd = exec.Command(bin, "ask", "--model", dir+"mm.visualrwkv.pth", "--config", dir+"mm.visualrwkv.json",
			"--image", dir+"mm.png", "--backend", "cpu", "--max-tokens", "1", "What is in the image?")
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "first token after") {
			t.Errorf("ask: %v; stderr lacks the time to the first token:\n%s", err, stderr.String())
		}
		for _, tc := range []struct {
			args []string
			want string
		}{
			// A plain language model.
			{[]string{"--model", "../../testdata/rwkv7/tiny.pth"}, "not a VisualRWKV-7 checkpoint"},
			// The fixture's towers are not at a released width: their
			// head counts are not stored, so the error asks for a config.
			{[]string{"--model", dir + "mm.visualrwkv.pth"}, "dino.heads"},
		} {
			args := append(append([]string{"ask"}, tc.args...), "--image", dir+"mm.png", "--backend", "cpu", "What?")
			msg, err := exec.Command(bin, args...).CombinedOutput()
			if err == nil || !strings.Contains(string(msg), tc.want) {
				t.Errorf("ask %v: %v, want an error containing %q:\n%s", tc.args, err, tc.want, msg)
			}
			if tc.want == "dino.heads" && !strings.Contains(string(msg), "--config") {
				t.Errorf("ask without a config: the error does not mention --config:\n%s", msg)
			}
		}
	})
	t.Run("tag", func(t *testing.T) { testTag(t, bin) })
	t.Run("errors", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "bad.pth")
		os.WriteFile(bad, []byte("PK\x03\x04 this is not a zip"), 0o644)
		for _, args := range [][]string{
			{"info", bad},
			{"logits", "--model", bad, "--tokens", "1", "--out", filepath.Join(t.TempDir(), "x.npy")},
			{"logits", "--model", "../../testdata/rwkv7/tiny.pth", "--tokens", "1,99999", "--out", filepath.Join(t.TempDir(), "x.npy")},
		} {
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err == nil {
				t.Errorf("%v succeeded:\n%s", args, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine") {
				t.Errorf("%v panicked:\n%s", args, out)
			}
		}
	})
}

func testLogits(t *testing.T, bin string) {
	var fixture struct {
		Tokens    []int32 `json:"tokens"`
		Positions []int   `json:"logits_positions"`
	}
	raw, err := os.ReadFile("../../testdata/rwkv7/tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fixture); err != nil {
		t.Fatal(err)
	}
	want, err := npy.ReadFile("../../testdata/rwkv7/tiny.logits.npy")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(fixture.Tokens))
	for i, id := range fixture.Tokens {
		ids[i] = strconv.Itoa(int(id))
	}
	for _, mode := range []string{"seq", "rnn"} {
		out := filepath.Join(t.TempDir(), mode+".npy")
		msg, err := exec.Command(bin, "logits", "--model", "../../testdata/rwkv7/tiny.pth",
			"--tokens", strings.Join(ids, ","), "--mode", mode, "--backend", "cpu", "--out", out).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", mode, err, msg)
		}
		got, err := npy.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		V := want.Shape[1]
		if len(got.Shape) != 2 || got.Shape[0] != len(ids) || got.Shape[1] != V {
			t.Fatalf("%s: shape %v, want [%d %d]", mode, got.Shape, len(ids), V)
		}
		var s, s2 float64
		for _, v := range want.Data {
			s += float64(v)
			s2 += float64(v) * float64(v)
		}
		n := float64(len(want.Data))
		tol := 1e-3 * math.Sqrt(s2/n-(s/n)*(s/n))
		for r, pos := range fixture.Positions {
			for j := range V {
				if d := math.Abs(float64(got.Data[pos*V+j] - want.Data[r*V+j])); !(d <= tol) {
					t.Fatalf("%s: row %d col %d: |Δ| = %g > %g", mode, pos, j, d, tol)
				}
			}
		}
	}
}

func testTokenize(t *testing.T, bin string) {
	raw, err := os.ReadFile("../../testdata/tokenizer/world_cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []struct {
			Text string  `json:"text"`
			IDs  []int32 `json:"ids"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range f.Cases {
		cmd := exec.Command(bin, "tokenize")
		cmd.Stdin = strings.NewReader(c.Text)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tokenize %q: %v", c.Text, err)
		}
		want := make([]string, len(c.IDs))
		for i, id := range c.IDs {
			want[i] = strconv.Itoa(int(id))
		}
		if got := strings.TrimSuffix(string(out), "\n"); got != strings.Join(want, " ") {
			t.Errorf("tokenize %q = %s, want %s", c.Text, got, strings.Join(want, " "))
		}
		cmd = exec.Command(bin, "detokenize")
		cmd.Stdin = strings.NewReader(strings.Join(want, " ") + "\n")
		out, err = cmd.Output()
		if err != nil {
			t.Fatalf("detokenize %v: %v", want, err)
		}
		if !bytes.Equal(out, []byte(c.Text)) {
			t.Errorf("detokenize %v = %q, want %q", want, out, c.Text)
		}
	}
}
