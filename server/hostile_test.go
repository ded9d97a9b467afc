package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// rawRequest opens a connection to hs and writes head (request line and
// headers, then a blank line) and the first bytes of a body.
func rawRequest(t *testing.T, addr, head, body string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	return c
}

// closedWithin reads c until the server closes it, failing the test if
// that takes longer than d. It returns what was read.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v; read %q", d, b)
	}
	return string(b)
}

// TestSlowBody: a client that sends headers and one byte of its body used
// to hold its connection forever (20,000 of them exhausted the file
// descriptors). The body must now arrive within BodyTimeout; the
// deadline is lifted once it has, so a long streamed reply is not cut.
func TestSlowBody(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{BodyTimeout: 300 * time.Millisecond})
	addr := hs.Listener.Addr().String()
	c := rawRequest(t, addr, "POST /v1/chat/completions HTTP/1.1\r\nHost: "+addr+
		"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n", "{")
	reply := closedWithin(t, c, 5*time.Second)
	if !strings.Contains(reply, "408") || !strings.Contains(reply, "request_timeout") {
		t.Errorf("slow body: reply %q, want a 408", reply)
	}

	// A stream that outlives BodyTimeout runs to its end.
	start := time.Now()
	resp, err := http.Post(hs.URL+"/v1/completions", "application/json", strings.NewReader(
		`{"prompt":"Once","max_tokens":300,"temperature":1,"top_p":1,"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err != nil || !strings.HasSuffix(strings.TrimSpace(string(b)), "data: [DONE]") {
		t.Fatalf("stream after %v: %v, ends %q", took, err, tail(string(b), 200))
	}
	if took < 300*time.Millisecond {
		t.Logf("the stream took only %v: it does not test the lifted deadline", took)
	}
	if testing.Verbose() {
		t.Logf("stream took %v", took)
	}
}

func tail(s string, n int) string { return s[max(0, len(s)-n):] }

// TestRefusedBeforeBody: with --api-key, an unauthenticated request is
// answered 401 without its body being read, and the connection closed
// within drainTimeout (net/http used to wait for up to 256 KiB of body,
// as slowly as the client liked, before closing).
func TestRefusedBeforeBody(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{APIKey: "sekrit"})
	addr := hs.Listener.Addr().String()
	for _, path := range []string{"/v1/chat/completions", "/v1/nothing"} {
		c := rawRequest(t, addr, "POST "+path+" HTTP/1.1\r\nHost: "+addr+
			"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n", "{")
		reply := closedWithin(t, c, drainTimeout+3*time.Second)
		if !strings.HasPrefix(reply, "HTTP/1.1 401") || !strings.Contains(reply, "invalid_api_key") {
			t.Errorf("%s: reply %q, want a 401", path, reply)
		}
	}
}

// TestMaxConns: connections over the cap get a 503 and are closed; the
// others are served, and a closed connection frees its place.
func TestMaxConns(t *testing.T) {
	s := newServer(t, loadModel(t, tinyConfig(), 1), Options{})
	hs := httptest.NewUnstartedServer(s)
	hs.Listener = LimitListener(hs.Listener, 3)
	hs.Start()
	defer hs.Close()
	addr := hs.Listener.Addr().String()
	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	c := rawRequest(t, addr, "GET /v1/models HTTP/1.1\r\nHost: "+addr+"\r\n", "")
	if reply := closedWithin(t, c, 5*time.Second); !strings.HasPrefix(reply, "HTTP/1.1 503") || !strings.Contains(reply, "server_busy") {
		t.Fatalf("connection over the cap: %q", reply)
	}
	idle[0].Close()
	time.Sleep(100 * time.Millisecond)
	c = rawRequest(t, addr, "GET /v1/models HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n", "")
	if reply := closedWithin(t, c, 5*time.Second); !strings.HasPrefix(reply, "HTTP/1.1 200") {
		t.Fatalf("after a connection closed: %q", reply)
	}
}

// TestBrowserRequests: a web page could start a generation with a "simple"
// cross-origin text/plain POST, and read replies through DNS rebinding
// (the Host header was not checked). Now: Host must be an IP address,
// localhost or an allowed name; a foreign Origin is refused unless listed;
// without an API key POSTs must be JSON; listed origins get CORS headers.
func TestBrowserRequests(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{AllowedHosts: []string{"goose.lan"}, CORSOrigins: []string{"http://localhost:3000"}})
	const chatBody = `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":1}`
	tests := []struct {
		name, method, path, host, origin, ctype string
		want                                    int
		code                                    string
	}{
		{"plain", "POST", "/v1/chat/completions", "", "", "application/json", 200, ""},
		{"json with charset", "POST", "/v1/chat/completions", "", "", "application/json; charset=utf-8", 200, ""},
		{"text/plain", "POST", "/v1/chat/completions", "", "", "text/plain", 415, "unsupported_media_type"},
		{"form", "POST", "/v1/completions", "", "", "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
		{"no content type", "POST", "/v1/chat/completions", "", "", "", 415, "unsupported_media_type"},
		{"rebinding host", "GET", "/v1/models", "evil.example:11435", "", "", 403, "host_not_allowed"},
		{"rebinding post", "POST", "/v1/chat/completions", "attacker.example", "", "application/json", 403, "host_not_allowed"},
		{"localhost", "GET", "/v1/models", "localhost:11435", "", "", 200, ""},
		{"ipv6 loopback", "GET", "/v1/models", "[::1]:11435", "", "", 200, ""},
		{"allowed name", "GET", "/v1/models", "Goose.LAN:11435", "", "", 200, ""},
		{"foreign origin", "POST", "/v1/chat/completions", "", "http://evil.example", "application/json", 403, "origin_not_allowed"},
		{"foreign origin text", "POST", "/v1/chat/completions", "", "http://evil.example", "text/plain", 403, "origin_not_allowed"},
		{"null origin", "GET", "/v1/models", "", "null", "", 403, "origin_not_allowed"},
		{"listed origin", "POST", "/v1/chat/completions", "", "http://localhost:3000", "application/json", 200, ""},
		{"preflight listed", "OPTIONS", "/v1/chat/completions", "", "http://localhost:3000", "", 204, ""},
		{"preflight foreign", "OPTIONS", "/v1/chat/completions", "", "http://evil.example", "", 403, "origin_not_allowed"},
	}
	for _, tc := range tests {
		var body io.Reader
		if tc.method == "POST" {
			body = strings.NewReader(chatBody)
		}
		req, _ := http.NewRequest(tc.method, hs.URL+tc.path, body)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		if tc.method == "OPTIONS" {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, resp.StatusCode, tc.want, b)
			continue
		}
		if tc.code != "" && !strings.Contains(string(b), `"code":"`+tc.code+`"`) {
			t.Errorf("%s: body %s lacks code %q", tc.name, b, tc.code)
		}
		acao := resp.Header.Get("Access-Control-Allow-Origin")
		if listed := tc.origin == "http://localhost:3000" && tc.want < 400; listed != (acao != "") {
			t.Errorf("%s: Access-Control-Allow-Origin %q", tc.name, acao)
		}
		if tc.method == "OPTIONS" && tc.want == 204 && !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
			t.Errorf("%s: preflight headers %v", tc.name, resp.Header)
		}
	}

	// With an API key, clients that send another content type still work
	// (a browser cannot attach the key without a preflight).
	_, hk := startServer(t, m, Options{APIKey: "k"})
	req, _ := http.NewRequest("POST", hk.URL+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl -d's default
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("keyed request with a form content type: %d", resp.StatusCode)
	}
}

// TestPromptTooLongNamesParam: a too-long completions prompt said
// "param: messages".
func TestPromptTooLongNamesParam(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{MaxPromptTokens: 10})
	long := strings.Repeat("word ", 50)
	for _, tc := range []struct{ path, body, param string }{
		{"/v1/completions", fmt.Sprintf(`{"prompt":%q}`, long), "prompt"},
		{"/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":%q}]}`, long), "messages"},
	} {
		code, v := post(t, hs, tc.path, tc.body)
		if code != 400 || path(v, "error", "param") != tc.param || path(v, "error", "code") != "context_length_exceeded" {
			t.Errorf("%s: %d %v, want param %q", tc.path, code, v, tc.param)
		}
	}
}

// TestHTTPServerTimeouts: the http.Server the serve command runs has the
// documented timeouts and no whole-connection read or write timeout (those
// would cut a streamed reply).
func TestHTTPServerTimeouts(t *testing.T) {
	s := newServer(t, loadModel(t, tinyConfig(), 1), Options{})
	hs := s.HTTPServer(context.Background(), nil)
	if hs.ReadHeaderTimeout != HeaderTimeout || hs.IdleTimeout != IdleTimeout || hs.ReadTimeout != 0 || hs.WriteTimeout != 0 {
		t.Errorf("timeouts: header %v idle %v read %v write %v", hs.ReadHeaderTimeout, hs.IdleTimeout, hs.ReadTimeout, hs.WriteTimeout)
	}
}
