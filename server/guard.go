package server

import (
	"context"
	"fmt"
	"log"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// What the server promises a hostile or broken client (README,
// "Reliability"): these bound how long and how much of the server one
// connection can hold.
const (
	// HeaderTimeout bounds reading a request's headers.
	HeaderTimeout = 10 * time.Second
	// BodyTimeout bounds reading a request's body (MaxBodyBytes, 4 MiB by
	// default). The body is read only after the Host, Origin and API-key
	// checks pass.
	BodyTimeout = 30 * time.Second
	// IdleTimeout closes a kept-alive connection with no request.
	IdleTimeout = 2 * time.Minute
	// WriteTimeout bounds each write of a response (each streamed event):
	// a client that stops reading is dropped and its generation stopped.
	// There is no bound on a whole response, which streams as long as
	// the generation runs.
	WriteTimeout = writeTimeout
	// DefaultMaxConns is the default cap on open connections (see
	// LimitListener).
	DefaultMaxConns = 256
)

// HTTPServer returns an http.Server for s with the timeouts above.
// Requests' contexts derive from base (cancel it to stop generations
// still running after a graceful shutdown times out); errorLog may be nil.
// Serve it on a LimitListener.
func (s *Server) HTTPServer(base context.Context, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: HeaderTimeout,
		IdleTimeout:       IdleTimeout,
		// No ReadTimeout or WriteTimeout: those are per connection and
		// would cut streamed replies; the body and each write get their
		// own deadlines in ServeHTTP and the responder.
		BaseContext: func(net.Listener) context.Context { return base },
		ErrorLog:    errorLog,
	}
}

// hostAllowed reports whether a request's Host header names this server
// in a way a DNS-rebinding page cannot forge: an IP address, localhost (or
// a name under .localhost), or a name in allowed ("*" allows any; an entry
// starting with "." allows names under it).
func hostAllowed(host string, allowed []string) bool {
	if host == "" { // HTTP/1.0 without Host: not a browser
		return true
	}
	name := strings.TrimSuffix(strings.ToLower(strings.Trim(hostName(host), "[]")), ".")
	if net.ParseIP(name) != nil || name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(strings.ToLower(a), ".")
		if a == "*" || a == name || (strings.HasPrefix(a, ".") && strings.HasSuffix(name, a)) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a browser request from origin may use the
// API: the same origin as the request's Host, or one listed in
// Options.CORSOrigins ("*" lists all).
func (s *Server) originAllowed(origin, host string) bool {
	if s.corsListed(origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, host)
}

// corsListed reports whether origin is in Options.CORSOrigins.
func (s *Server) corsListed(origin string) bool {
	for _, o := range s.opts.CORSOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	return false
}

// forbidden is a 403 about where a request came from.
func forbidden(code, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusForbidden, Type: typeInvalidRequest, Code: strPtr(code), Message: fmt.Sprintf(format, args...)}
}

// screen applies the checks that come before a request's body is read:
// Host, Origin (answering CORS preflights), and, without an API key, a
// JSON content type for POSTs, which a cross-site form or a "simple"
// fetch cannot send. It returns an error to send, or nil and whether the
// request was fully answered (a preflight).
func (s *Server) screen(w http.ResponseWriter, r *http.Request) (done bool, err *apiError) {
	if !hostAllowed(r.Host, s.opts.AllowedHosts) {
		return false, forbidden("host_not_allowed",
			"the Host %q is not allowed: this server answers to IP addresses and localhost; start it with --allowed-hosts %s to use that name",
			r.Host, hostName(r.Host))
	}
	origin := r.Header.Get("Origin")
	if origin != "" {
		if !s.originAllowed(origin, r.Host) {
			return false, forbidden("origin_not_allowed",
				"requests from web pages at %s are not allowed; start the server with --cors-origin %s to allow them", origin, origin)
		}
		if s.corsListed(origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
	}
	if r.Method == http.MethodOptions {
		h := w.Header()
		h.Set("Allow", "GET, HEAD, POST, OPTIONS")
		if origin != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			h.Set("Access-Control-Max-Age", "600")
		}
		w.WriteHeader(http.StatusNoContent)
		return true, nil
	}
	return false, nil
}

// jsonBody checks, for servers without an API key, that a POST declares a
// JSON body.
func (s *Server) jsonBody(r *http.Request) *apiError {
	if s.opts.APIKey != "" {
		return nil
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" {
		return nil
	}
	return &apiError{Status: http.StatusUnsupportedMediaType, Type: typeInvalidRequest, Code: strPtr("unsupported_media_type"),
		Message: fmt.Sprintf("the request body must be sent as Content-Type: application/json (got %q)", r.Header.Get("Content-Type"))}
}

// hostName is host without its port, if it has one.
func hostName(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

// drainTimeout is how long a refused request's unread body may take to
// arrive after the reply (see refuseEarly).
const drainTimeout = time.Second

// refuseEarly prepares a response sent before the request's body is read
// (an error): the connection is closed after it. After the reply, net/http
// reads up to 256 KiB of the unread body (so that a client still sending
// it sees the reply rather than a reset); drainTimeout bounds that, where
// it used to wait as long as the client took.
func refuseEarly(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(drainTimeout))
}

// LimitListener returns a listener that keeps at most n connections open
// (DefaultMaxConns when n <= 0). A connection over the limit is answered
// with 503 and closed at once, so that idle or slow clients cannot use up
// the process's file descriptors and lock everyone else out.
func LimitListener(ln net.Listener, n int) net.Listener {
	if n <= 0 {
		n = DefaultMaxConns
	}
	return &limitListener{Listener: ln, max: int64(n)}
}

type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

// busyBody is what a connection over the limit gets, with a 503.
const busyBody = `{"error":{"message":"too many open connections; retry later","type":"server_error","param":null,"code":"server_busy"}}` + "\n"

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			go func() {
				c.SetDeadline(time.Now().Add(time.Second))
				fmt.Fprintf(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(busyBody), busyBody)
				c.Close()
			}()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
