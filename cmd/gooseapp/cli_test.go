package main

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run the built binary as a person would.

var cli struct {
	once      sync.Once
	bin       string // with the desktop app when cgo builds, else without
	toolkit   bool   // bin links the desktop toolkit (Fyne)
	model     string // a 2×64 random-weight model with the full vocabulary
	buildErrs string
}

// cliBinary builds gooseapp once for this file's tests: with cgo (so that
// the desktop toolkit is linked, as in a release) when a C toolchain and
// the X11/GL headers are there, else without (nocgoBinary).
func cliBinary(t *testing.T) (bin, model string, toolkit bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	cli.once.Do(func() {
		dir, err := testDir()
		if err != nil {
			cli.buildErrs = err.Error()
			return
		}
		if cli.bin, err = goBuild(dir, "gooseapp", true); err == nil {
			v, _ := exec.Command(cli.bin, "--version").Output()
			cli.toolkit = bytes.Contains(v, []byte("Fyne"))
		} else {
			cli.buildErrs = "cgo build: " + err.Error()
			if cli.bin, err = nocgoBinary(); err != nil {
				cli.buildErrs += "\nCGO_ENABLED=0 build: " + err.Error()
				cli.bin = ""
				return
			}
		}
		cli.model = filepath.Join(dir, "tiny.safetensors")
		if out, err := exec.Command(cli.bin, "testmodel", "--out", cli.model).CombinedOutput(); err != nil {
			cli.buildErrs += "\ntestmodel: " + string(out)
			cli.bin = ""
		}
	})
	if cli.bin == "" {
		t.Fatalf("building gooseapp: %s", cli.buildErrs)
	}
	return cli.bin, cli.model, cli.toolkit
}

func TestMain(m *testing.M) {
	code := m.Run()
	if dir, err := testDir(); err == nil {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func runBin(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	bin, _, _ := cliBinary(t)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return result{so.String(), se.String(), code}
}

// Under Debian's default C.UTF-8 locale (and C, POSIX), no command writes
// anything from the desktop toolkit.
func TestNoToolkitOutput(t *testing.T) {
	_, model, toolkit := cliBinary(t)
	if !toolkit {
		t.Skipf("gooseapp built without the desktop app (no cgo toolchain or X11 headers: packaging/deps.sh installs them), so Fyne is not linked:\n%s", cli.buildErrs)
	}
	runs := [][]string{
		{"--help"}, {"--version"}, {"info", model}, {"tokenize"}, {"detokenize"},
		{"testmodel", "--out", filepath.Join(t.TempDir(), "m.safetensors")},
		{"chat", "--model", model, "--backend", "cpu"},
		{"info", "--devices"}, {"chat", "--no-such-flag"}, {"serve", "--model", "missing.pth"},
		{"logits", "--model", model, "--tokens", "1,2", "--out", filepath.Join(t.TempDir(), "l.npy")},
	}
	for _, c := range commands() {
		runs = append(runs, []string{c.name, "--help"})
	}
	for _, env := range [][]string{{"LANG=C.UTF-8", "LC_ALL=", "LC_MESSAGES=", "LANGUAGE="},
		{"LANG=C", "LC_ALL=", "LC_MESSAGES=", "LANGUAGE="}, {"LC_ALL=POSIX", "LANGUAGE="},
		{"LC_ALL=C.utf8", "LANGUAGE="}, {"LANG=POSIX.UTF-8", "LC_ALL=", "LC_MESSAGES=", "LANGUAGE="}} {
		for _, args := range runs {
			r := runBin(t, env, "hello\n", args...)
			// --version names the toolkit on stdout; nothing else may.
			if strings.Contains(r.stderr, "Fyne") || strings.Contains(r.stdout, "Fyne error") || strings.Contains(r.stderr+r.stdout, "user locale") {
				t.Errorf("%v %v wrote toolkit output:\n%s%s", env, args, r.stderr, r.stdout)
			}
		}
	}
}

// Every command's --help says what it does, with an example, on stdout.
func TestHelp(t *testing.T) {
	for _, c := range commands() {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {c.name, "--model", "x", "--help"}} {
			r := runBin(t, nil, "", args...)
			if r.code != 0 || r.stderr != "" {
				t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
			}
			for _, want := range []string{c.summary, "Usage:\n  gooseapp " + c.name, "Examples:\n  ", "gooseapp " + c.name + " "} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("%v: help lacks %q:\n%s", args, want, r.stdout)
				}
			}
		}
	}
	r := runBin(t, nil, "", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "serve") || !strings.Contains(r.stdout, "--smoke-test") {
		t.Errorf("gooseapp --help: exit %d:\n%s", r.code, r.stdout)
	}
}

func TestVersionFlag(t *testing.T) {
	r := runBin(t, nil, "", "--version")
	for _, want := range []string{"gooseapp ", "commit:", runtime.Version(), "cpu", "cuda"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--version lacks %q:\n%s", want, r.stdout)
		}
	}
	if r.code != 0 {
		t.Errorf("--version: exit %d", r.code)
	}
}

// Flags may follow the other arguments; what cannot be parsed is refused
// with the reason, never misread.
func TestFlagsAnywhere(t *testing.T) {
	_, model, _ := cliBinary(t)
	arwkv := "../../testdata/arwkv/"
	r := runBin(t, nil, "", "tag", "--model", arwkv+"mm.arwkv.pth", arwkv+"mm.wav", "--config", arwkv+"mm.arwkv.json", "--top", "3")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("tag with flags after the file: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	vis := "../../testdata/visualrwkv/"
	a := runBin(t, nil, "", "ask", "--model", vis+"mm.visualrwkv.pth", "--image", vis+"mm.png", "What is in the image?",
		"--config", vis+"mm.visualrwkv.json", "--backend", "cpu", "--max-tokens", "1")
	b := runBin(t, nil, "", "ask", "--model", vis+"mm.visualrwkv.pth", "--image", vis+"mm.png",
		"--config", vis+"mm.visualrwkv.json", "--backend", "cpu", "--max-tokens", "1", "--", "What is in the image?")
	if a.code != 0 || a.stdout != b.stdout {
		t.Errorf("ask with flags after the question answered %q (exit %d, %s), with them before %q", a.stdout, a.code, a.stderr, b.stdout)
	}
	r = runBin(t, nil, "", "info", model, "--devices=false")
	if r.code != 0 || !strings.Contains(r.stdout, "layers:") {
		t.Errorf("info FILE --devices=false: exit %d %s", r.code, r.stderr)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tag", "f.wav", "--tops", "3"}, "flag provided but not defined: -tops"},
		{[]string{"chat", "--model", model, "hello"}, `unexpected argument "hello"`},
		{[]string{"info", model, model}, "unexpected argument"},
		{[]string{"tokenize", "some text"}, `unexpected argument "some text"`},
		{[]string{"chat", "--max-tokens", "many"}, "invalid value"},
	} {
		r := runBin(t, nil, "", c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) || !strings.Contains(r.stderr, "--help") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 saying %q", c.args, r.code, r.stderr, c.want)
		}
	}
}

// A missing model is the only message: no GPU notice before it; with a
// model the GPU notice, if any, appears once.
func TestBackendNoticeOnce(t *testing.T) {
	_, model, _ := cliBinary(t)
	for _, args := range [][]string{
		{"chat", "--model", "no-such-model.pth"},
		{"logits", "--model", "no-such-model.pth", "--tokens", "1", "--out", filepath.Join(t.TempDir(), "x.npy")},
		{"bench", "--model", "no-such-model.pth"},
		{"serve", "--model", "no-such-model.pth", "--addr", "127.0.0.1:0"},
	} {
		r := runBin(t, nil, "", args...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code == 0 || len(lines) != 1 || !strings.Contains(r.stderr, "no-such-model.pth: no such file") {
			t.Errorf("%v: exit %d, stderr:\n%s\nwant one line naming the file", args, r.code, r.stderr)
		}
	}
	r := runBin(t, nil, "/quit\n", "chat", "--model", model, "--backend", "auto")
	if n := strings.Count(r.stderr, "GPU not used"); n > 1 || r.code != 0 {
		t.Errorf("chat: exit %d, the GPU notice %d times:\n%s", r.code, n, r.stderr)
	}
}

// Chat commands are handled in the terminal, never sent to the model, and
// their errors name the file asked for, not a temporary one.
func TestChatCommands(t *testing.T) {
	_, model, _ := cliBinary(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state.bin")
	in := strings.Join([]string{"/help", "/frobnicate now", "/save", "/load",
		"/save " + filepath.Join(dir, "missing", "x.bin"), "/save " + dir,
		"/save " + state, "/load " + state, "/load " + filepath.Join(dir, "nothing.bin"), "/reset", "/quit", "never read"}, "\n") + "\n"
	r := runBin(t, nil, in, "chat", "--model", model, "--backend", "cpu")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"/save FILE", "/load FILE", "unknown command /frobnicate", "/save needs a file name",
		"/load needs a file name", "save failed", "state saved to " + state, "state loaded from " + state, "load failed", "(state reset)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("chat output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Assistant:") {
		t.Errorf("a command reached the model:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, ".tmp") || strings.Contains(r.stderr, ".tmp") {
		t.Errorf("an error names a temporary file:\n%s", r.stdout)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("files left in %s: %v", dir, ents)
	}
}

// Ctrl-C at the prompt clears it and does not cancel the next reply; during
// a reply it stops the reply; twice at an empty prompt it quits. Ctrl-D
// (end of input) quits too.
func TestChatInterrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sends SIGINT")
	}
	bin, model, _ := cliBinary(t)
	// A larger random model, greedy: a long reply that never hits "\n\n".
	slow := filepath.Join(t.TempDir(), "slow.safetensors")
	if out, err := exec.Command(bin, "testmodel", "--out", slow, "--shape", "4x256").CombinedOutput(); err != nil {
		t.Fatalf("testmodel: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "chat", "--model", slow, "--backend", "cpu", "--threads", "1", "--temperature", "0", "--max-tokens", "100000")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	out := &transcript{r: bufio.NewReader(pr)}
	go out.pump()
	intr := func() { cmd.Process.Signal(syscall.SIGINT) }

	out.waitFor(t, "User: ", 1)
	intr() // at the prompt: a hint, not an exit, and no reply is cancelled later
	out.waitFor(t, "Ctrl-C again", 1)
	out.waitFor(t, "User: ", 2)
	io.WriteString(stdin, "Hello\n")
	out.waitFor(t, "Assistant:", 1)
	time.Sleep(300 * time.Millisecond) // the reply is under way and not stopped
	if strings.Contains(out.text(), "[stopped]") {
		t.Fatalf("the earlier Ctrl-C stopped the reply:\n%s", out.text())
	}
	intr() // during the reply: stops it
	out.waitFor(t, "[stopped]", 1)
	out.waitFor(t, "User: ", 3)
	intr() // the first at the prompt warns ...
	out.waitFor(t, "Ctrl-C again", 2)
	out.waitFor(t, "User: ", 4)
	intr() // ... the second quits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("chat ended with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("a second Ctrl-C did not quit:\n%s", out.text())
	}
	pw.Close()

	// Ctrl-D: end of input quits with success.
	r := runBin(t, nil, "", "chat", "--model", model, "--backend", "cpu")
	if r.code != 0 {
		t.Errorf("end of input: exit %d %s", r.code, r.stderr)
	}
}

// transcript collects a process's output as it comes.
type transcript struct {
	r   *bufio.Reader
	mu  sync.Mutex
	buf strings.Builder
}

func (tr *transcript) pump() {
	b := make([]byte, 4096)
	for {
		n, err := tr.r.Read(b)
		tr.mu.Lock()
		tr.buf.Write(b[:n])
		tr.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (tr *transcript) text() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

// waitFor waits until s has appeared n times.
func (tr *transcript) waitFor(t *testing.T, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for strings.Count(tr.text(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q ×%d; output so far:\n%s", s, n, tr.text())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chat refuses sampling settings outside package sample's limits, which
// the app and the API share, before loading anything.
func TestSamplingLimitsCLI(t *testing.T) {
	_, model, _ := cliBinary(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--temperature", "3"}, "temperature must be from 0 to 2"},
		{[]string{"--top-p", "1.5"}, "top_p"},
		{[]string{"--top-k", "-1"}, "top_k"},
	} {
		r := runBin(t, nil, "", append([]string{"chat", "--model", model}, c.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "backend") {
			t.Errorf("chat %v: exit %d, stderr %q; want a refusal saying %q", c.args, r.code, r.stderr, c.want)
		}
	}
	r := runBin(t, nil, "/quit\n", "chat", "--model", model, "--backend", "cpu", "--temperature", "2")
	if r.code != 0 {
		t.Errorf("chat --temperature 2: exit %d %s", r.code, r.stderr)
	}
}

// bench --batch-products takes exact or rounded (and says which in its
// batch line); anything else is refused before a model is loaded, and so
// is serve's rounded without --batch.
func TestBenchBatchProducts(t *testing.T) {
	r := runBin(t, nil, "", "bench", "--shape", "2x64", "--batch-products", "fast")
	if r.code == 0 || !strings.Contains(r.stderr, `--batch-products "fast": want exact or rounded`) {
		t.Errorf("bench --batch-products fast: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runBin(t, nil, "", "serve", "--model", "m.pth", "--batch-products", "rounded")
	if r.code == 0 || !strings.Contains(r.stderr, "add --batch") {
		t.Errorf("serve --batch-products rounded without --batch: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, p := range []string{"exact", "rounded"} {
		r := runBin(t, nil, "", "bench", "--shape", "2x64", "--backend", "cpu", "--prompt", "2", "--gen", "2",
			"--batch", "3", "--batch-products", p)
		if r.code != 0 || !strings.Contains(r.stdout, "batch:    3 sessions") ||
			strings.Contains(r.stdout, "products rounded") != (p == "rounded") {
			t.Errorf("bench --batch-products %s: exit %d\n%s%s", p, r.code, r.stdout, r.stderr)
		}
	}
}

// info names the kind of every checkpoint Goose reads, and ask refuses a
// plain language model saying what it is not.
func TestInfoKinds(t *testing.T) {
	for _, c := range []struct{ file, kind string }{
		{"../../testdata/rwkv7/tiny.pth", "kind:        RWKV-7 (x070) language model"},
		{"../../testdata/visualrwkv/mm.visualrwkv.pth", "kind:        VisualRWKV-7"},
		{"../../testdata/arwkv/mm.arwkv.pth", "kind:        A-RWKV"},
	} {
		r := runBin(t, nil, "", "info", c.file)
		if r.code != 0 || !strings.Contains(r.stdout, c.kind) {
			t.Errorf("info %s: exit %d, %q%s; want %q", c.file, r.code, r.stdout, r.stderr, c.kind)
		}
	}
	r := runBin(t, nil, "", "ask", "--model", "../../testdata/rwkv7/tiny.pth", "--image", "../../testdata/visualrwkv/mm.png", "What?")
	if r.code == 0 || !strings.Contains(r.stderr, "not a VisualRWKV-7 checkpoint") || strings.Contains(r.stderr, "shape") {
		t.Errorf("ask with a language model: exit %d, %q", r.code, r.stderr)
	}
}
