package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels/cpu"
)

// tinyConfig is a random model with the full World vocabulary: fast enough
// for tests, and real enough to exercise every path.
func tinyConfig() core.Config {
	return core.Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
}

var worldOnce = sync.OnceValues(tokenizer.World)

func world(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	tok, err := worldOnce()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// loadModel loads a random-weight model of cfg on a CPU backend.
func loadModel(t testing.TB, cfg core.Config, seed uint64) *core.Model {
	t.Helper()
	be, err := cpu.New(cpu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := core.RandomSource(cfg, seed)
	if err != nil {
		t.Fatal(err)
	}
	m, err := core.Load(src, core.LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		be.Close()
	})
	return m
}

// newServer returns a server for m, closed when the test ends. With m nil
// it serves only opts.Audio.
func newServer(t testing.TB, m *core.Model, opts Options) *Server {
	t.Helper()
	var tok *tokenizer.Tokenizer
	if m != nil {
		tok = world(t)
	}
	s, err := New(m, tok, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// startServer serves m (see newServer) on a loopback listener.
func startServer(t testing.TB, m *core.Model, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s := newServer(t, m, opts)
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.CloseClientConnections()
		hs.Close()
	})
	return s, hs
}

// post sends a JSON body and returns the status and the decoded response.
func post(t testing.TB, hs *httptest.Server, path, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("POST %s: response is not a JSON object: %v\n%s", path, err, b)
	}
	return resp.StatusCode, v
}

// mustJSON marshals v.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// path digs into decoded JSON: path(v, "choices", 0, "message", "content").
func path(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// sseEvents reads a Server-Sent Events body into its data payloads, up to
// and including "[DONE]".
func sseEvents(t testing.TB, r io.Reader) []string {
	t.Helper()
	var events []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Fatalf("SSE line without data: %q", line)
		}
		events = append(events, data)
		if data == "[DONE]" {
			break
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return events
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// getText fetches a URL's body.
func getText(t testing.TB, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}
