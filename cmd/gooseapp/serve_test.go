package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServe runs serve with args on a free loopback port until stop is
// called or the test ends. It returns the address served, serve's stdout
// and stop, which ends serve and returns its error.
func startServe(t *testing.T, args ...string) (addr string, stdout *bytes.Buffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	stdout = new(bytes.Buffer)
	var stderr bytes.Buffer
	go func() {
		done <- serve(ctx, append(args, "--addr", "127.0.0.1:0"), stdout, &stderr, func(a string) { addrs <- a })
	}()
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serve ended: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			return errors.New("serve did not stop")
		}
	}
	return addr, stdout, stop
}

func TestServe(t *testing.T) {
	addr, stdout, stop := startServe(t, "--model", testModel(t), "--backend", "cpu", "--api-key", "k")
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer k")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v map[string]any
		json.Unmarshal(b, &v)
		return resp.StatusCode, v
	}
	if code, v := call("GET", "/v1/models", ""); code != 200 || !strings.Contains(mustString(v), `"id":"tiny-rwkv"`) {
		t.Fatalf("models: %d %v", code, v)
	}
	code, v := call("POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3}`)
	if code != 200 || v["choices"] == nil {
		t.Fatalf("chat: %d %v", code, v)
	}
	if err := stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !strings.Contains(stdout.String(), "http://"+addr+"/v1") {
		t.Fatalf("stdout %q lacks the URL", stdout.String())
	}
}

func mustString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestServeFlags(t *testing.T) {
	t.Setenv("GOOSE_API_KEY", "")
	for _, args := range [][]string{
		{},                                  // no model
		{"--model", "x", "--parallel", "0"}, // bad number
		{"--model", "x", "--addr", "nohost"},
		{"--model", filepath.Join(t.TempDir(), "missing.pth"), "--addr", "127.0.0.1:0", "--backend", "cpu"},
		{"--model", "x", "extra"},
	} {
		var stderr bytes.Buffer
		if err := serve(context.Background(), args, io.Discard, &stderr, nil); err == nil {
			t.Errorf("serve %q: no error", args)
		}
	}
	var stderr bytes.Buffer
	serve(context.Background(), []string{"--model", filepath.Join(t.TempDir(), "missing.pth"), "--addr", "0.0.0.0:0", "--backend", "cpu"}, io.Discard, &stderr, nil)
	if !strings.Contains(stderr.String(), "no --api-key") {
		t.Errorf("no warning for a public address: %q", stderr.String())
	}
}
