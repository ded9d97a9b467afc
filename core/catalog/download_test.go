package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// blob returns n deterministic pseudo-random bytes and their sha256.
func blob(n int) ([]byte, string) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	sum := sha256.Sum256(b)
	return b, hex.EncodeToString(sum[:])
}

// server serves data at /model.pth. When dropAfter > 0, the first
// `drops` responses are cut off after dropAfter body bytes by closing the
// connection. When noRange is set, Range headers are ignored.
type server struct {
	data      []byte
	etag      string
	noRange   bool
	dropAfter int
	drops     int

	mu       sync.Mutex
	requests []*http.Request
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Clone(context.Background()))
	drop := s.dropAfter > 0 && s.drops > 0
	if drop {
		s.drops--
	}
	s.mu.Unlock()
	if s.etag != "" {
		w.Header().Set("ETag", s.etag)
	}
	if s.noRange {
		w.Header().Set("Content-Length", itoa(len(s.data)))
		w.WriteHeader(http.StatusOK)
		w.Write(s.data)
		return
	}
	if drop {
		// Announce everything, send part, then cut the connection.
		start := 0
		if rh := r.Header.Get("Range"); rh != "" {
			start = atoi(strings.TrimSuffix(strings.TrimPrefix(rh, "bytes="), "-"))
			w.Header().Set("Content-Range", "bytes "+itoa(start)+"-"+itoa(len(s.data)-1)+"/"+itoa(len(s.data)))
			w.Header().Set("Content-Length", itoa(len(s.data)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", itoa(len(s.data)))
			w.WriteHeader(http.StatusOK)
		}
		w.Write(s.data[start : start+s.dropAfter])
		w.(http.Flusher).Flush()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	http.ServeContent(w, r, "model.pth", time.Unix(1700000000, 0), bytes.NewReader(s.data))
}

func (s *server) ranges() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.requests {
		out = append(out, r.Header.Get("Range"))
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func fastDownloader() *Downloader {
	return &Downloader{Backoff: time.Millisecond, Retries: 3}
}

func TestDownload(t *testing.T) {
	data, sum := blob(3<<20 + 17)
	tests := []struct {
		name       string
		srv        *server
		size       int64
		wantRanges []string // Range header of each request
	}{
		{"plain", &server{data: data}, int64(len(data)), []string{""}},
		{"etag", &server{data: data, etag: `"v1"`}, 0, []string{""}},
		{"dropped twice then resumed", &server{data: data, dropAfter: 1 << 20, drops: 2}, int64(len(data)),
			[]string{"", "bytes=1048576-", "bytes=2097152-"}},
		{"no range support", &server{data: data, noRange: true}, 0, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.srv)
			defer ts.Close()
			dest := filepath.Join(t.TempDir(), "model.pth")
			var last Progress
			err := fastDownloader().Download(context.Background(), Request{
				URL: ts.URL + "/model.pth", Dest: dest, SHA256: sum, Size: tt.size,
				Progress: func(p Progress) { last = p },
			})
			if err != nil {
				t.Fatalf("Download: %v", err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("downloaded file differs (err %v, %d bytes)", err, len(got))
			}
			if last.Done != int64(len(data)) || last.Total != int64(len(data)) {
				t.Errorf("last progress %+v, want %d/%d", last, len(data), len(data))
			}
			if _, err := os.Stat(dest + ".part"); !os.IsNotExist(err) {
				t.Errorf(".part file left behind: %v", err)
			}
			if _, err := os.Stat(dest + ".part.json"); !os.IsNotExist(err) {
				t.Errorf(".part.json file left behind: %v", err)
			}
			if r := tt.srv.ranges(); strings.Join(r, "|") != strings.Join(tt.wantRanges, "|") {
				t.Errorf("Range headers %q, want %q", r, tt.wantRanges)
			}
		})
	}
}

// TestPauseResume cancels a download midway (pause), checks the partial file
// is kept, and resumes it in a second call that asks only for the rest.
func TestPauseResume(t *testing.T) {
	data, sum := blob(2<<20 + 5)
	srv := &server{data: data, etag: `"abc"`}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "model.pth")

	ctx, cancel := context.WithCancel(context.Background())
	err := fastDownloader().Download(ctx, Request{
		URL: ts.URL + "/m", Dest: dest, SHA256: sum,
		Progress: func(p Progress) {
			if p.Done >= 1<<20 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("paused Download returned %v, want context.Canceled", err)
	}
	fi, err := os.Stat(dest + ".part")
	if err != nil {
		t.Fatalf("partial file not kept: %v", err)
	}
	kept := fi.Size()
	if kept < 1<<20 || kept >= int64(len(data)) {
		t.Fatalf("partial file has %d bytes, want between 1 MiB and %d", kept, len(data))
	}
	if _, err := os.Stat(dest); !os.IsNotExist(err) {
		t.Fatalf("destination exists after pause")
	}

	var phases []Phase
	err = fastDownloader().Download(context.Background(), Request{
		URL: ts.URL + "/m", Dest: dest, SHA256: sum,
		Progress: func(p Progress) {
			if len(phases) == 0 || phases[len(phases)-1] != p.Phase {
				phases = append(phases, p.Phase)
			}
		},
	})
	if err != nil {
		t.Fatalf("resumed Download: %v", err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) {
		t.Fatal("resumed file differs from the served data")
	}
	r := srv.ranges()
	if want := "bytes=" + itoa(int(kept)) + "-"; r[len(r)-1] != want {
		t.Errorf("resume asked Range %q, want %q", r[len(r)-1], want)
	}
	if len(phases) != 3 || phases[0] != Checking || phases[1] != Connecting || phases[2] != Downloading {
		t.Errorf("phases %v, want [checking connecting downloading]", phases)
	}
	if h := srv.requests[len(srv.requests)-1].Header.Get("If-Range"); h != `"abc"` {
		t.Errorf("If-Range %q, want the ETag", h)
	}
}

// TestResumeServerIgnoresRange leaves a partial file, then resumes against a
// server that ignores Range: the download must start over, not append.
func TestResumeServerIgnoresRange(t *testing.T) {
	data, sum := blob(1<<20 + 3)
	dest := filepath.Join(t.TempDir(), "model.pth")
	ts := httptest.NewServer(&server{data: data, noRange: true})
	defer ts.Close()
	url := ts.URL + "/m"
	// A partial file from an earlier run of the same URL.
	if err := os.WriteFile(dest+".part", data[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dest+".part.json", []byte(`{"url":"`+url+`","total":1048579}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fastDownloader().Download(context.Background(), Request{URL: url, Dest: dest, SHA256: sum}); err != nil {
		t.Fatalf("Download: %v", err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, data) {
		t.Fatalf("file differs: %d bytes, want %d", len(got), len(data))
	}
}

// TestResumeFromOtherURL ignores a partial file that came from another URL.
func TestResumeFromOtherURL(t *testing.T) {
	data, sum := blob(5000)
	srv := &server{data: data}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "model.pth")
	os.WriteFile(dest+".part", bytes.Repeat([]byte{'x'}, 100), 0o644)
	os.WriteFile(dest+".part.json", []byte(`{"url":"http://elsewhere/"}`), 0o644)
	if err := fastDownloader().Download(context.Background(), Request{URL: ts.URL, Dest: dest, SHA256: sum}); err != nil {
		t.Fatalf("Download: %v", err)
	}
	if r := srv.ranges(); len(r) != 1 || r[0] != "" {
		t.Errorf("Range headers %q, want one plain GET", r)
	}
}

func TestDownloadErrors(t *testing.T) {
	data, sum := blob(4096)
	wrong := strings.Repeat("0", 64)
	tests := []struct {
		name    string
		handler http.Handler
		req     Request
		check   func(t *testing.T, err error)
	}{
		{"wrong sha256", &server{data: data}, Request{SHA256: wrong}, func(t *testing.T, err error) {
			var ce *ChecksumError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want *ChecksumError", err)
			}
			if ce.Expected != wrong || ce.Actual != sum {
				t.Errorf("ChecksumError %+v, want expected %s actual %s", ce, wrong, sum)
			}
			if !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), sum) {
				t.Errorf("message %q should name both digests", err)
			}
		}},
		{"wrong size announced", &server{data: data}, Request{Size: 9999}, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "9999") {
				t.Fatalf("error %v, want a size refusal naming 9999", err)
			}
		}},
		{"not found", http.NotFoundHandler(), Request{}, func(t *testing.T, err error) {
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != 404 {
				t.Fatalf("error %v, want HTTPError 404", err)
			}
		}},
		{"server error retried then given up", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}), Request{}, func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), "giving up after 4 failed attempts") {
				t.Fatalf("error %v, want giving up after retries", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(tt.handler)
			defer ts.Close()
			dest := filepath.Join(t.TempDir(), "model.pth")
			tt.req.URL, tt.req.Dest = ts.URL, dest
			err := fastDownloader().Download(context.Background(), tt.req)
			tt.check(t, err)
			if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
				t.Errorf("destination exists after a failed download")
			}
			if tt.name == "wrong sha256" {
				if _, serr := os.Stat(dest + ".part"); !os.IsNotExist(serr) {
					t.Errorf("corrupt .part file kept")
				}
			}
		})
	}
}

// TestDiskFull writes into /dev/full, which fails every write with ENOSPC:
// the error must be returned at once (no retries), name the file and wrap
// the OS error.
func TestDiskFull(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	data, _ := blob(4096)
	ts := httptest.NewServer(&server{data: data})
	defer ts.Close()
	dest := filepath.Join(t.TempDir(), "model.pth")
	if err := os.Symlink("/dev/full", dest+".part"); err != nil {
		t.Skip(err)
	}
	err := fastDownloader().Download(context.Background(), Request{URL: ts.URL, Dest: dest})
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error %v, want ENOSPC", err)
	}
	if !strings.Contains(err.Error(), dest+".part") {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 0-99/100", 0, 100, true},
		{"bytes 50-99/*", 50, 0, true},
		{"bytes */100", 0, 0, false},
		{"items 0-1/2", 0, 0, false},
		{"bytes -5-9/10", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		s, tot, ok := parseContentRange(tt.in)
		if s != tt.start || tot != tt.total || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tt.in, s, tot, ok, tt.start, tt.total, tt.ok)
		}
	}
}

// roundTripFunc is an http.RoundTripper made of a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// With no network, a download fails at once with an OfflineError and
// leaves no files; a partial file from earlier stays for a resume.
func TestDownloadOffline(t *testing.T) {
	for _, cause := range []error{
		&net.DNSError{Err: "no such host", Name: "huggingface.co", IsNotFound: true},
		&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)},
	} {
		calls := 0
		d := &Downloader{Backoff: time.Second, Retries: 5, Client: &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) {
			calls++
			return nil, cause
		})}}
		dir := t.TempDir()
		dest := filepath.Join(dir, "m.pth")
		var phases []Phase
		start := time.Now()
		err := d.Download(context.Background(), Request{URL: "https://huggingface.co/m.pth", Dest: dest,
			Progress: func(p Progress) { phases = append(phases, p.Phase) }})
		var oe *OfflineError
		if !errors.As(err, &oe) || !strings.Contains(err.Error(), "no network connection") || !strings.Contains(err.Error(), "huggingface.co") {
			t.Fatalf("%v: got %v, want an OfflineError", cause, err)
		}
		if calls != 1 || time.Since(start) > 500*time.Millisecond {
			t.Errorf("%v: %d attempts in %v, want one, at once", cause, calls, time.Since(start))
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("%v: files left behind: %v", cause, ents)
		}
		if len(phases) == 0 || phases[0] != Connecting {
			t.Errorf("%v: phases %v, want Connecting first", cause, phases)
		}

		// A partial file from an earlier run is kept.
		os.WriteFile(dest+".part", []byte("abc"), 0o644)
		os.WriteFile(dest+".part.json", []byte(`{"url":"https://huggingface.co/m.pth"}`), 0o644)
		if err := d.Download(context.Background(), Request{URL: "https://huggingface.co/m.pth", Dest: dest}); !errors.As(err, &oe) {
			t.Errorf("resume offline: %v", err)
		}
		if b, _ := os.ReadFile(dest + ".part"); string(b) != "abc" {
			t.Errorf("the partial file became %q", b)
		}
	}
}

// A download that fails before any byte (here: the server answers 404)
// leaves no .part behind either.
func TestDownloadFailureLeavesNothing(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	dir := t.TempDir()
	err := fastDownloader().Download(context.Background(), Request{URL: srv.URL + "/m.pth", Dest: filepath.Join(dir, "m.pth")})
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("got %v, want an HTTPError", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left behind: %v", ents)
	}
}
