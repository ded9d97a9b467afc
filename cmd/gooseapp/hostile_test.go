package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/goose-rwkv/goose/core"
)

// randomModelFile writes a small random-weight model with the full World
// vocabulary (34 MB), once per test binary, in testDir.
var randomModelFile = sync.OnceValues(func() (string, error) {
	dir, err := testDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "tiny-rwkv.safetensors") // serve's model id: tiny-rwkv
	cfg := core.Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
	return path, core.WriteRandom(path, cfg, 42)
})

func testModel(t *testing.T) string {
	t.Helper()
	p, err := randomModelFile()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestChatHostileInput: /load of a device, of a 2 GB file that is not a
// state, and a line over 1 MiB used to end the chat (out of memory, or
// "bufio.Scanner: token too long"); now each gets a message and the chat
// goes on. /save and /load round-trip.
func TestChatHostileInput(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.bin")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	saved := filepath.Join(dir, "s.state")
	var in bytes.Buffer
	in.WriteString("/load /dev/zero\n")
	in.WriteString("/load " + big + "\n")
	in.WriteString(strings.Repeat("x", 2<<20) + "\n")
	in.WriteString("/save " + saved + "\n/load " + saved + "\n/quit\n")
	var out, errOut bytes.Buffer
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	code := run([]string{"chat", "--model", testModel(t), "--backend", "cpu", "--max-tokens", "2"}, &in, &out, &errOut)
	runtime.ReadMemStats(&after)
	if code != 0 {
		t.Fatalf("chat exited %d:\n%s\n%s", code, out.String(), errOut.String())
	}
	o := out.String()
	for _, want := range []string{
		"(load failed: open /dev/zero: not a regular file",
		"(load failed: " + big + ": state: not a Goose state file",
		"(message ignored: it is longer than 1 MiB)",
		"(state saved to " + saved + ")",
		"(state loaded from " + saved + ")",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("chat output lacks %q:\n%s", want, o)
		}
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
		t.Errorf("chat allocated %d MB", alloc>>20)
	}
}

// doubledPrefix reports an error prefix repeated ("zip: zip: ...").
func doubledPrefix(msg string) bool {
	parts := strings.Split(msg, ": ")
	for i := 1; i < len(parts)-1; i++ {
		if parts[i] == parts[i-1] {
			return true
		}
	}
	return false
}

// TestErrorsSayItOnce: errors for hostile files name the file once and
// repeat no prefix ("not a checkpoint file (zip: zip: not a valid zip
// file)"); a truncated .pth says "truncated".
func TestErrorsSayItOnce(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile("../../testdata/rwkv7/tiny.pth")
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pth")
	os.WriteFile(cut, raw[:len(raw)/2], 0o644)
	junk := filepath.Join(dir, "junk.pth")
	os.WriteFile(junk, []byte("PK\x03\x04 and then nothing a zip reader wants"), 0o644)
	noDir := filepath.Join(dir, "missing.pth")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"info", cut}, "truncated"},
		{[]string{"info", junk}, "truncated"},
		{[]string{"info", noDir}, "no such file"},
		{[]string{"info", dir}, "not a regular file"},
		{[]string{"info", "/dev/zero"}, "not a regular file"},
		{[]string{"logits", "--model", cut, "--tokens", "1", "--out", filepath.Join(dir, "x.npy")}, "truncated"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		if code := run(tc.args, strings.NewReader(""), &out, &errOut); code == 0 {
			t.Errorf("%v succeeded", tc.args)
			continue
		}
		msg := strings.TrimSpace(errOut.String())
		if !strings.Contains(msg, tc.want) || doubledPrefix(msg) {
			t.Errorf("%v: %q, want %q said once", tc.args, msg, tc.want)
		}
		if path := tc.args[len(tc.args)-1]; strings.HasPrefix(path, dir) && strings.Count(msg, path) > 1 {
			t.Errorf("%v: %q names the file twice", tc.args, msg)
		}
	}
}
