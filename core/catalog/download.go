package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Phase says what a download is doing.
type Phase uint8

// Download phases.
const (
	// Checking: rehashing the bytes of a partial file left by an earlier
	// attempt, before resuming after them.
	Checking Phase = iota
	// Downloading: receiving bytes from the server.
	Downloading
	// Connecting: waiting for the server's answer.
	Connecting
)

func (p Phase) String() string {
	switch p {
	case Checking:
		return "checking partial file"
	case Downloading:
		return "downloading"
	case Connecting:
		return "connecting"
	}
	return "phase(" + strconv.Itoa(int(p)) + ")"
}

// Progress reports how far a download has come.
type Progress struct {
	Phase Phase
	// Done is the number of bytes on disk (Downloading) or rehashed
	// (Checking).
	Done int64
	// Total is the size of the whole file, or 0 while unknown.
	Total int64
	// Attempt counts HTTP requests made by this Download call, from 1.
	Attempt int
}

// Request names one file to download.
type Request struct {
	// URL is fetched with GET.
	URL string
	// Dest is the final path. While downloading, the bytes live in
	// Dest+".part" and the server's validators in Dest+".part.json"; Dest
	// itself appears only, by rename, once the file is complete and checked.
	Dest string
	// SHA256 is the expected lower-case hex digest; "" skips the check.
	SHA256 string
	// Size is the exact expected size in bytes; 0 when unknown. When set, a
	// server that announces another size is refused before any bytes are
	// written and the finished file must have this size.
	Size int64
	// Progress, when not nil, is called from the downloading goroutine after
	// every chunk written. It must return quickly.
	Progress func(Progress)
}

// Downloader fetches files over HTTP with resume, retry and verification.
// The zero value is ready to use. A Downloader may be used by several
// goroutines at once, for different destinations.
type Downloader struct {
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// Retries is how many failed attempts in a row (attempts that received
	// no bytes) are tolerated before giving up; 0 means 5.
	Retries int
	// Backoff is the wait after the first failure; it doubles after each
	// further failure, up to 30 s. 0 means one second.
	Backoff time.Duration
	// UserAgent is sent when not empty.
	UserAgent string
}

// ChecksumError reports a finished download whose sha256 digest is wrong.
// The bad file has been deleted.
type ChecksumError struct {
	Path             string
	Expected, Actual string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("download %s: sha256 mismatch: expected %s, got %s (the corrupt file was deleted; download it again)",
		e.Path, e.Expected, e.Actual)
}

// SizeError reports a server or finished file whose size is not the
// expected one.
type SizeError struct {
	Path             string
	Expected, Actual int64
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("download %s: size mismatch: expected %d bytes, got %d", e.Path, e.Expected, e.Actual)
}

// HTTPError reports a response status the downloader cannot use.
type HTTPError struct {
	URL    string
	Status int
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: server answered %d %s", e.URL, e.Status, http.StatusText(e.Status))
}

// Temporary reports whether retrying later may succeed.
func (e *HTTPError) Temporary() bool {
	return e.Status == http.StatusRequestTimeout || e.Status == http.StatusTooManyRequests ||
		e.Status == http.StatusTooEarly || e.Status >= 500
}

// OfflineError reports that the server could not be reached at all: no
// network connection (or no name resolution).
type OfflineError struct {
	URL string
	Err error
}

func (e *OfflineError) Error() string {
	host := e.URL
	if u, err := url.Parse(e.URL); err == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Sprintf("no network connection: cannot reach %s (%v)", host, e.Err)
}

func (e *OfflineError) Unwrap() error { return e.Err }

// offline reports whether err, from an HTTP request, means that the
// network is not there: the name did not resolve or no route leads out.
func offline(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.ENETDOWN) ||
		errors.Is(err, syscall.EHOSTUNREACH)
}

// partMeta is what the downloader remembers about a .part file between runs:
// the URL and the server's validators, so a resumed request can ask for the
// remaining bytes only if the file on the server has not changed.
type partMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Total        int64  `json:"total,omitempty"`
}

// transfer is the state of one Download call.
type transfer struct {
	d        *Downloader
	req      Request
	part     string
	metaPath string
	meta     partMeta
	f        *os.File
	h        hash.Hash
	off      int64 // bytes in the .part file that have been hashed
	attempt  int
	received bool // some response body bytes arrived in this call
}

// retryable marks an error after which another attempt may succeed.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// Download fetches req.URL into req.Dest.
//
// If Dest+".part" exists from an earlier call for the same URL, its bytes are
// rehashed and only the rest is requested, with an HTTP Range request guarded
// by If-Range; a server that ignores Range, or whose file changed, answers
// with the whole file and the download starts over. Network failures are
// retried with exponential backoff.
//
// Cancelling ctx pauses: Download returns an error wrapping ctx.Err() and the
// .part file stays for the next call. A full disk or other local I/O error
// is returned at once, wrapped with the path. When the file is complete its
// size and digest are checked; a bad file is deleted and a *ChecksumError or
// *SizeError returned. On success the .part file is renamed to Dest.
//
// When the server cannot be reached at all (no network) and no byte has
// arrived in this call, Download returns an *OfflineError at once, without
// retrying. A new download that fails or pauses before receiving anything
// leaves no files behind; an earlier partial file stays for a resume.
func (d *Downloader) Download(ctx context.Context, req Request) (err error) {
	if req.URL == "" || req.Dest == "" {
		return errors.New("download: URL and destination are required")
	}
	t := &transfer{d: d, req: req, part: req.Dest + ".part", metaPath: req.Dest + ".part.json", h: sha256.New()}
	_, statErr := os.Stat(t.part)
	fresh := errors.Is(statErr, os.ErrNotExist) // no earlier partial download
	if err := t.open(ctx); err != nil {
		return err
	}
	defer func() {
		if t.f != nil {
			t.f.Close()
		}
		if err != nil && fresh && t.off == 0 {
			os.Remove(t.part)
			os.Remove(t.metaPath)
		}
	}()

	retries := d.Retries
	if retries <= 0 {
		retries = 5
	}
	wait := d.Backoff
	if wait <= 0 {
		wait = time.Second
	}
	failures := 0
	for {
		before := t.off
		done, err := t.fetch(ctx)
		if done {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("download %s: paused at %d bytes: %w", req.Dest, t.off, ctx.Err())
		}
		var r retryable
		if !errors.As(err, &r) {
			return err
		}
		if !t.received && offline(err) {
			return &OfflineError{URL: req.URL, Err: errors.Unwrap(r.err)}
		}
		if t.off > before {
			failures, wait = 0, max(d.Backoff, 0)
			if wait == 0 {
				wait = time.Second
			}
		}
		failures++
		if failures > retries {
			return fmt.Errorf("download %s: giving up after %d failed attempts: %w", req.Dest, failures, r.err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("download %s: paused at %d bytes: %w", req.Dest, t.off, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
	return t.finish()
}

// open opens or creates the .part file and rehashes the bytes already in it.
func (t *transfer) open(ctx context.Context) error {
	if b, err := os.ReadFile(t.metaPath); err == nil {
		if json.Unmarshal(b, &t.meta) != nil || t.meta.URL != t.req.URL {
			t.meta = partMeta{}
		}
	}
	f, err := os.OpenFile(t.part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	t.f = f
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("download: stat %s: %w", t.part, err)
	}
	size := fi.Size()
	if t.meta.URL == "" {
		// No record of where these bytes came from: start over.
		size = 0
	}
	if size == 0 {
		t.meta = partMeta{URL: t.req.URL}
		return nil
	}
	// Rehash what is there so the final digest covers the whole file.
	buf := make([]byte, 1<<20)
	var n int64
	for n < size {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("download %s: paused while checking partial file: %w", t.req.Dest, err)
		}
		k, err := f.ReadAt(buf[:min(int64(len(buf)), size-n)], n)
		t.h.Write(buf[:k])
		n += int64(k)
		t.progress(Checking, n)
		if errors.Is(err, io.EOF) {
			break // the file shrank; fetch truncates to what was hashed
		}
		if err != nil {
			return fmt.Errorf("download: read %s: %w", t.part, err)
		}
	}
	t.off = n
	return nil
}

func (t *transfer) progress(p Phase, done int64) {
	if t.req.Progress != nil {
		t.req.Progress(Progress{Phase: p, Done: done, Total: t.meta.Total, Attempt: t.attempt})
	}
}

// restart forgets the partial file.
func (t *transfer) restart() {
	t.off = 0
	t.h.Reset()
	t.meta = partMeta{URL: t.req.URL}
}

func (t *transfer) saveMeta() error {
	b, err := json.Marshal(t.meta)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := os.WriteFile(t.metaPath, b, 0o644); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	return nil
}

// fetch makes one request and appends what it receives. It reports done when
// the whole file is on disk.
func (t *transfer) fetch(ctx context.Context) (done bool, err error) {
	t.attempt++
	// Bytes after t.off may be a partial write that was never hashed.
	if fi, err := t.f.Stat(); err == nil && fi.Size() != t.off {
		if err := t.f.Truncate(t.off); err != nil {
			return false, fmt.Errorf("download: truncate %s: %w", t.part, err)
		}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, t.req.URL, nil)
	if err != nil {
		return false, fmt.Errorf("download %s: %w", t.req.URL, err)
	}
	if t.d.UserAgent != "" {
		hreq.Header.Set("User-Agent", t.d.UserAgent)
	}
	if t.off > 0 {
		hreq.Header.Set("Range", fmt.Sprintf("bytes=%d-", t.off))
		if t.meta.ETag != "" && !strings.HasPrefix(t.meta.ETag, "W/") {
			hreq.Header.Set("If-Range", t.meta.ETag)
		} else if t.meta.LastModified != "" {
			hreq.Header.Set("If-Range", t.meta.LastModified)
		}
	}
	client := t.d.Client
	if client == nil {
		client = http.DefaultClient
	}
	t.progress(Connecting, t.off)
	resp, err := client.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, retryable{fmt.Errorf("download %s: %w", t.req.URL, err)}
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != t.off {
			t.restart()
			return false, retryable{fmt.Errorf("download %s: server sent range %q, wanted bytes from %d; starting over",
				t.req.URL, resp.Header.Get("Content-Range"), t.off)}
		}
		if total > 0 {
			t.meta.Total = total
		}
	case http.StatusOK:
		// Either a fresh download, or the server ignored Range / the file
		// changed under If-Range: the body is the whole file.
		prev := t.off
		t.restart()
		if resp.ContentLength > 0 {
			t.meta.Total = resp.ContentLength
		}
		t.meta.ETag = resp.Header.Get("ETag")
		t.meta.LastModified = resp.Header.Get("Last-Modified")
		if prev > 0 {
			if err := t.f.Truncate(0); err != nil {
				return false, fmt.Errorf("download: truncate %s: %w", t.part, err)
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if t.meta.Total > 0 && t.off == t.meta.Total {
			return true, nil
		}
		t.restart()
		return false, retryable{fmt.Errorf("download %s: server refused to resume at byte %d; starting over", t.req.URL, t.off)}
	default:
		herr := &HTTPError{URL: t.req.URL, Status: resp.StatusCode}
		if herr.Temporary() {
			return false, retryable{herr}
		}
		return false, fmt.Errorf("download: %w", herr)
	}
	if t.req.Size > 0 && t.meta.Total > 0 && t.meta.Total != t.req.Size {
		return false, fmt.Errorf("download %s: server offers %d bytes but the catalog expects %d; refusing",
			t.req.URL, t.meta.Total, t.req.Size)
	}
	if err := t.saveMeta(); err != nil {
		return false, err
	}

	if _, err := t.f.Seek(t.off, io.SeekStart); err != nil {
		return false, fmt.Errorf("download: seek %s: %w", t.part, err)
	}
	t.progress(Downloading, t.off)
	buf := make([]byte, 256<<10)
	for {
		if ctx.Err() != nil {
			// Paused: stop at once, even if the body has buffered bytes.
			return false, ctx.Err()
		}
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			t.received = true
			if t.meta.Total > 0 && t.off+int64(n) > t.meta.Total {
				t.restart()
				return false, retryable{fmt.Errorf("download %s: server sent more than the %d bytes it announced", t.req.URL, t.meta.Total)}
			}
			if _, err := t.f.Write(buf[:n]); err != nil {
				return false, fmt.Errorf("download: write %s: %w", t.part, err)
			}
			t.h.Write(buf[:n])
			t.off += int64(n)
			t.progress(Downloading, t.off)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			return false, retryable{fmt.Errorf("download %s: connection lost after %d bytes: %w", t.req.URL, t.off, rerr)}
		}
	}
	if t.meta.Total > 0 && t.off < t.meta.Total {
		return false, retryable{fmt.Errorf("download %s: connection closed after %d of %d bytes", t.req.URL, t.off, t.meta.Total)}
	}
	return true, nil
}

// finish checks the complete file and moves it into place.
func (t *transfer) finish() error {
	if err := t.f.Sync(); err != nil {
		return fmt.Errorf("download: sync %s: %w", t.part, err)
	}
	err := t.f.Close()
	t.f = nil
	if err != nil {
		return fmt.Errorf("download: close %s: %w", t.part, err)
	}
	discard := func() {
		os.Remove(t.part)
		os.Remove(t.metaPath)
	}
	if t.req.Size > 0 && t.off != t.req.Size {
		discard()
		return &SizeError{Path: t.req.Dest, Expected: t.req.Size, Actual: t.off}
	}
	if t.req.SHA256 != "" {
		actual := hex.EncodeToString(t.h.Sum(nil))
		if !strings.EqualFold(actual, t.req.SHA256) {
			discard()
			return &ChecksumError{Path: t.req.Dest, Expected: strings.ToLower(t.req.SHA256), Actual: actual}
		}
	}
	if err := os.Rename(t.part, t.req.Dest); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	os.Remove(t.metaPath)
	return nil
}

// parseContentRange parses "bytes start-end/total" ("*" total gives 0).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	if tot != "*" {
		total, err = strconv.ParseInt(tot, 10, 64)
		if err != nil || total < 0 {
			return 0, 0, false
		}
	}
	return start, total, true
}
