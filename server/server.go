// Package server is Goose's local OpenAI-compatible HTTP API: GET
// /v1/models, POST /v1/chat/completions and POST /v1/completions, streamed
// as Server-Sent Events or not, plus GET /metrics in the Prometheus text
// format, and Goose's own POST /v1/audio/tags (AudioSet tags of a WAV
// recording) when an audio tagger is loaded.
//
// Because an RWKV model's state after a prompt is small and of fixed size,
// the server keeps a bounded cache from token prefixes to states: a request
// that extends an earlier conversation (the previous prompt, the reply, and
// a new turn) restores the state after the longest cached prefix and only
// feeds the new tokens. Requests queue first come, first served for a fixed
// number of sessions; when the queue is full the server answers 503 with
// Retry-After, and a client that disconnects stops its generation within a
// token.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/vision"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// ModelID is the model's name in /v1/models and in responses; default
	// "goose". Requests may name any model: the server has one.
	ModelID string
	// Parallel is the number of requests that generate at once, each with a
	// session of its own; default 1 (on a CPU the kernels already use every
	// core).
	Parallel int
	// MaxQueue is the number of requests that may wait for a session;
	// default 64. More get 503 with Retry-After. Negative means none may
	// wait.
	MaxQueue int
	// CacheBytes bounds the prefix state cache; default 256 MiB. Negative
	// disables it. States live in the backend's memory.
	CacheBytes int64
	// APIKey, if set, is required as "Authorization: Bearer KEY".
	APIKey string
	// MaxBodyBytes caps request bodies; default 4 MiB.
	MaxBodyBytes int64
	// BodyTimeout bounds reading a request's body; default BodyTimeout.
	BodyTimeout time.Duration
	// MaxPromptTokens caps a prompt's length; default 32768.
	MaxPromptTokens int
	// MaxTokens is the largest max_tokens a request may ask for, and the
	// default for chat; default 4096.
	MaxTokens int
	// Audio, if set, serves POST /v1/audio/tags (see audio.go). The server
	// does not close it.
	Audio *audio.Tagger
	// Vision, if set, is the image encoder of the served VisualRWKV-7
	// model (on the model's backend): chat messages may then carry images
	// as image_url parts with data: URLs (images.go). The server does not
	// close it.
	Vision *vision.Encoder
	// MaxImageBytes caps one image's encoded size; default
	// DefaultMaxImageBytes. With Vision set, MaxBodyBytes defaults to
	// 32 MiB so that such images fit in base64.
	MaxImageBytes int
	// MaxAudioBytes caps a /v1/audio/tags body; default 256 MiB (over an
	// hour of 32 kHz 16-bit mono). It is read as it arrives, never whole.
	MaxAudioBytes int64
	// AllowedHosts lists the host names, besides IP addresses and
	// localhost, that requests may carry in their Host header ("*": any;
	// ".example.com": names under it). Checking Host defeats DNS
	// rebinding, through which a web page could otherwise read replies.
	AllowedHosts []string
	// CORSOrigins lists the web origins (such as "http://localhost:3000";
	// "*" for all) whose pages may call the API from a browser. Requests
	// from other origins are refused with 403.
	CORSOrigins []string
	// Batch decodes the Parallel sessions' replies together (continuous
	// batching, core.Batcher): each step reads the weights once for every
	// reply in flight, and requests join and leave between steps. Prompts
	// are prefilled between the steps in pieces of at most PrefillPiece
	// tokens, so that a long prompt does not stall the others.
	Batch bool
	// BatchOptions configure the batch (core.BatchOptions: whether its
	// large products may round their inputs).
	BatchOptions core.BatchOptions
	// PrefillPiece is the most prompt tokens fed at once when batching;
	// default 512.
	PrefillPiece int
	// BatchWait is how long a batched step waits for members that have
	// not yet submitted their next token once another has (0:
	// core.DefaultBatchWait).
	BatchWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.ModelID == "" {
		o.ModelID = "goose"
	}
	if o.Parallel <= 0 {
		o.Parallel = 1
	}
	switch {
	case o.MaxQueue == 0:
		o.MaxQueue = 64
	case o.MaxQueue < 0:
		o.MaxQueue = 0
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = 256 << 20
	}
	if o.MaxImageBytes <= 0 {
		o.MaxImageBytes = DefaultMaxImageBytes
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
		if o.Vision != nil {
			o.MaxBodyBytes = 32 << 20
		}
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = BodyTimeout
	}
	if o.MaxPromptTokens <= 0 {
		o.MaxPromptTokens = 32768
	}
	if o.MaxTokens <= 0 {
		o.MaxTokens = 4096
	}
	if o.PrefillPiece <= 0 {
		o.PrefillPiece = 512
	}
	if o.MaxAudioBytes <= 0 {
		o.MaxAudioBytes = 256 << 20
	}
	return o
}

// Server serves one model over the OpenAI API. It is an http.Handler.
type Server struct {
	opts    Options
	model   *core.Model
	tok     *tokenizer.Tokenizer
	lim     limits
	workers []*worker
	batcher *core.Batcher // when Options.Batch
	sched   *scheduler
	cache   *prefixCache
	metrics *metrics
	started time.Time
	created int64 // the model's "created" time in /v1/models

	closeOnce sync.Once
}

// New returns a server for m. Call Close to free its sessions and cached
// states. m may be nil when opts.Audio is set (a server that only tags
// audio); the generation endpoints then answer 404.
func New(m *core.Model, tok *tokenizer.Tokenizer, opts Options) (*Server, error) {
	if (m == nil || tok == nil) && (m != nil || opts.Audio == nil) {
		return nil, errors.New("server: a model and a tokenizer are required (or an audio tagger alone)")
	}
	opts = opts.withDefaults()
	s := &Server{
		opts:    opts,
		model:   m,
		tok:     tok,
		lim:     limits{maxPromptTokens: opts.MaxPromptTokens, maxTokens: opts.MaxTokens},
		cache:   newPrefixCache(opts.CacheBytes),
		metrics: newMetrics(),
		started: time.Now(),
	}
	s.created = s.started.Unix()
	if m != nil {
		s.lim.vocab = m.Config().Vocab
	}
	if opts.Vision != nil {
		if m == nil || opts.Vision.Width() != m.Config().Width {
			return nil, errors.New("server: the image encoder does not fit the language model")
		}
		s.lim.vision, s.lim.imageRows, s.lim.maxImageBytes = true, opts.Vision.Tokens(), opts.MaxImageBytes
	}
	if opts.Batch && m != nil {
		bt, err := m.NewBatcher(opts.Parallel, opts.BatchWait, opts.BatchOptions)
		if err != nil {
			return nil, fmt.Errorf("server: batch of %d: %w", opts.Parallel, err)
		}
		s.batcher = bt
	}
	for i := range opts.Parallel {
		if m == nil {
			break
		}
		sess, err := core.NewSession(m, tok)
		if err != nil {
			s.freeWorkers()
			return nil, fmt.Errorf("server: session %d: %w", i, err)
		}
		if s.batcher != nil {
			sess.SetBatcher(s.batcher)
		}
		s.workers = append(s.workers, &worker{id: i, sess: sess})
	}
	s.sched = newScheduler(append([]*worker(nil), s.workers...), opts.MaxQueue)
	return s, nil
}

func (s *Server) freeWorkers() {
	for _, w := range s.workers {
		w.sess.Close()
	}
	s.workers = nil
	if s.batcher != nil {
		s.batcher.Close()
		s.batcher = nil
	}
}

// Close refuses further requests, answers queued ones with 503, waits for
// running generations to end (cancel their requests' contexts, for example
// through http.Server.BaseContext, to end them within a token), and frees
// the sessions and the cached states.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.sched.close()
		s.sched.drain()
		s.cache.close()
		s.freeWorkers()
	})
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	endpoint := "other"
	var h func(http.ResponseWriter, *http.Request) int
	method := http.MethodGet
	body := s.jsonBody // checks a POST's declared body type
	switch {
	case path == "/v1/chat/completions" || path == "/chat/completions":
		endpoint, method, h = "chat", http.MethodPost, s.handleChat
	case path == "/v1/completions" || path == "/completions":
		endpoint, method, h = "completions", http.MethodPost, s.handleCompletion
	case path == "/v1/audio/tags":
		endpoint, method, h, body = "audio_tags", http.MethodPost, s.handleAudioTags, audioBody
	case path == "/v1/models" || path == "/models":
		endpoint, h = "models", s.handleModels
	case strings.HasPrefix(path, "/v1/models/"):
		endpoint, h = "models", s.handleModel
	case path == "/metrics":
		endpoint, h = "metrics", s.handleMetrics
	case path == "" || path == "/health":
		endpoint, h = "health", s.handleHealth
	}
	code := s.serve(w, r, method, h, body)
	s.metrics.countRequest(endpoint, code)
}

// serve screens a request and runs its handler. Everything that can
// refuse a request is checked before its body is read (for a POST, body
// checks its declared type), and a refusal closes the connection without
// draining the body; the body itself must arrive within BodyTimeout.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, method string, h func(http.ResponseWriter, *http.Request) int, body func(*http.Request) *apiError) int {
	fail := func(err *apiError) int {
		refuseEarly(w)
		return writeError(w, err)
	}
	if done, err := s.screen(w, r); err != nil {
		return fail(err)
	} else if done {
		return http.StatusNoContent
	}
	if s.opts.APIKey != "" && !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="goose"`)
		return fail(&apiError{Status: http.StatusUnauthorized, Type: typeAuthentication, Code: strPtr("invalid_api_key"),
			Message: "missing or incorrect API key: send it as \"Authorization: Bearer KEY\""})
	}
	if h == nil {
		return fail(&apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: strPtr("unknown_url"),
			Message: fmt.Sprintf("unknown URL %s %s: this server has /v1/models, /v1/chat/completions, /v1/completions, /v1/audio/tags and /metrics", r.Method, r.URL.Path)})
	}
	if r.Method != method && !(method == http.MethodGet && r.Method == http.MethodHead) {
		w.Header().Set("Allow", method)
		return fail(&apiError{Status: http.StatusMethodNotAllowed, Type: typeInvalidRequest, Code: strPtr("method_not_allowed"),
			Message: fmt.Sprintf("%s %s is not allowed; use %s", r.Method, r.URL.Path, method)})
	}
	if method == http.MethodPost {
		if err := body(r); err != nil {
			return fail(err)
		}
	}
	return h(w, r)
}

// authorized checks the bearer token in constant time.
func (s *Server) authorized(r *http.Request) bool {
	auth := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(auth[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.APIKey)) == 1
}

func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) int {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "model": s.opts.ModelID})
	return http.StatusOK
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.opts.ModelID, Object: "model", Created: s.created, OwnedBy: "goose"}
}

func (s *Server) handleModels(w http.ResponseWriter, _ *http.Request) int {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []modelObject{s.modelObject()}})
	return http.StatusOK
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) int {
	id := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/models/")
	if id != s.opts.ModelID {
		writeError(w, &apiError{Status: http.StatusNotFound, Type: typeInvalidRequest, Param: strPtr("model"), Code: strPtr("model_not_found"),
			Message: fmt.Sprintf("the model %q does not exist; this server has %q", id, s.opts.ModelID)})
		return http.StatusNotFound
	}
	writeJSON(w, http.StatusOK, s.modelObject())
	return http.StatusOK
}

func (s *Server) handleMetrics(w http.ResponseWriter, _ *http.Request) int {
	active, waiting := s.sched.load()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	s.metrics.write(w, gauges{active: active, waiting: waiting, workers: s.opts.Parallel,
		maxWaiting: s.opts.MaxQueue, cache: s.cache.stats(), uptime: time.Since(s.started)})
	return http.StatusOK
}

// readBody reads a capped request body.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	// The body must arrive within BodyTimeout; the deadline is lifted
	// afterwards, or net/http's watch for a client disconnecting would hit
	// it and cancel a long generation.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(s.opts.BodyTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err == nil {
		rc.SetReadDeadline(time.Time{})
		return body, nil
	}
	// Close the connection after the reply without waiting for the rest of
	// the body.
	w.Header().Set("Connection", "close")
	rc.SetReadDeadline(time.Now())
	if ae := bodyError(err, fmt.Sprintf("the request body exceeds %d bytes", s.opts.MaxBodyBytes),
		fmt.Sprintf("the request body did not arrive within %v", s.opts.BodyTimeout)); ae != nil {
		return nil, ae
	}
	return nil, invalid("", "invalid_body", "cannot read the request body: %v", err)
}

// bodyError is the reply to a request body that could not be read: a 413
// with the message tooLarge when it went over its limit, a 408 with
// timedOut when it stopped arriving; nil for other errors.
func bodyError(err error, tooLarge, timedOut string) *apiError {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeInvalidRequest, Code: strPtr("request_too_large"), Message: tooLarge}
	case isTimeout(err):
		return &apiError{Status: http.StatusRequestTimeout, Type: typeInvalidRequest, Code: strPtr("request_timeout"), Message: timedOut}
	}
	return nil
}

// isTimeout reports whether err is a network timeout: a read deadline
// passed.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) int {
	return s.handleGenerate(w, r, parseChat)
}

func (s *Server) handleCompletion(w http.ResponseWriter, r *http.Request) int {
	return s.handleGenerate(w, r, parseCompletion)
}

// noLanguageModel answers a generation request to a server that only tags
// audio.
func noLanguageModel(w http.ResponseWriter) int {
	return writeError(w, &apiError{Status: http.StatusNotFound, Type: typeNotFound, Code: strPtr("no_language_model"),
		Message: "no language model is loaded: this server only tags audio (POST /v1/audio/tags); start it with --model FILE to chat"})
}

// newID returns a random response id with the given prefix.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// retryAfter estimates, in whole seconds, when a refused request might get
// a place: the mean request time times the queue's length per worker.
func (s *Server) retryAfter() int {
	_, waiting := s.sched.load()
	mean := s.metrics.meanDuration().Seconds()
	est := int(mean*float64(waiting+1)/float64(s.opts.Parallel) + 0.999)
	return min(max(est, 1), 60)
}

// handleGenerate runs a chat or completions request: parse, queue, generate,
// respond. It returns the status code for the metrics (499 when the client
// went away).
func (s *Server) handleGenerate(w http.ResponseWriter, r *http.Request, parse func([]byte, *tokenizer.Tokenizer, limits) (*job, error)) int {
	if s.model == nil {
		return noLanguageModel(w)
	}
	arrived := time.Now()
	body, err := s.readBody(w, r)
	if err != nil {
		return writeError(w, err)
	}
	j, err := parse(body, s.tok, s.lim)
	if err != nil {
		return writeError(w, err)
	}
	ctx := r.Context()
	queued := time.Now()
	wk, err := s.sched.acquire(ctx)
	switch {
	case errors.Is(err, errBusy) || errors.Is(err, errClosed):
		msg := "the server is busy: too many requests are waiting; retry later"
		if errors.Is(err, errClosed) {
			msg = "the server is shutting down"
		}
		ae := &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: strPtr("server_busy"),
			Message: msg, RetryAfter: s.retryAfter()}
		return writeError(w, ae)
	case err != nil: // the client went away while queued
		s.metrics.countCancelled()
		return statusClientClosed
	}
	defer s.sched.release(wk)
	s.metrics.observeQueue(time.Since(queued))

	rs := newResponder(w, j, s.opts.ModelID)
	out, err := s.generate(ctx, wk, j, rs.piece)
	if err != nil {
		if rs.started {
			rs.streamError(err)
			return http.StatusInternalServerError
		}
		return writeError(w, err)
	}
	if out.stats.StopReason == core.StopCancelled || ctx.Err() != nil {
		s.metrics.countCancelled()
		return statusClientClosed
	}
	rs.finish(out)
	s.metrics.observeGeneration(j.endpoint, out, time.Since(arrived))
	return http.StatusOK
}

// statusClientClosed is the status logged for requests whose client
// disconnected (nginx's convention); nothing is sent.
const statusClientClosed = 499

// outcome describes one finished generation.
type outcome struct {
	stats        core.Stats
	promptTokens int
	cachedTokens int           // prompt tokens restored from the cache
	prefill      time.Duration // restore + prefill
	ttft         time.Duration // from getting a worker to the first token
}

// prefill feeds ids into sess, in pieces of the backend's InterruptChunk
// where it states one (a slow backend, where a model's own chunk can take
// seconds): a disconnected client then stops its prefill within that many
// tokens.
func (s *Server) prefill(ctx context.Context, sess *core.Session, ids []int32) error {
	piece := len(ids)
	if s.batcher != nil {
		piece = s.opts.PrefillPiece
	}
	if c := s.model.Backend().Capabilities().InterruptChunk; c > 0 {
		piece = min(piece, c)
	}
	for len(ids) > 0 {
		k := min(piece, len(ids))
		if err := sess.PrefillTokens(ctx, ids[:k]); err != nil {
			return err
		}
		ids = ids[k:]
	}
	return nil
}

// generate restores the longest cached prefix of the prompt, prefills the
// rest (caching the states at the checkpoint and before the prompt's last
// token), generates, and caches the state after the reply.
func (s *Server) generate(ctx context.Context, wk *worker, j *job, yield func(core.Piece) bool) (*outcome, error) {
	if len(j.segs) > 0 {
		return s.generateWithImages(ctx, wk, j, yield)
	}
	start := time.Now()
	sess := wk.sess
	out := &outcome{promptTokens: len(j.ids)}
	// At least the last prompt token is fed, so the logits are fresh.
	n, err := s.cache.restore(j.ids[:len(j.ids)-1], sess)
	if err != nil {
		return nil, fmt.Errorf("restore a cached state: %w", err)
	}
	out.cachedTokens = n
	cancelled := func() (*outcome, error) {
		out.stats.StopReason = core.StopCancelled
		return out, nil
	}
	if j.checkpoint > n && j.checkpoint < len(j.ids) {
		if err := s.prefill(ctx, sess, j.ids[n:j.checkpoint]); err != nil {
			if ctx.Err() != nil {
				return cancelled()
			}
			return nil, fmt.Errorf("prefill: %w", err)
		}
		if err := s.cache.store(j.ids[:j.checkpoint], sess); err != nil {
			return nil, fmt.Errorf("cache a state: %w", err)
		}
		n = j.checkpoint
	}
	// The state before the last prompt token is cached, so that a request
	// repeating this prompt exactly (a regenerated reply) restores it too.
	last := len(j.ids) - 1
	if err := s.prefill(ctx, sess, j.ids[n:last]); err != nil {
		if ctx.Err() != nil {
			return cancelled()
		}
		return nil, fmt.Errorf("prefill: %w", err)
	}
	if err := s.cache.store(j.ids[:last], sess); err != nil {
		return nil, fmt.Errorf("cache a state: %w", err)
	}
	before := time.Since(start)
	stats, fed, err := sess.GenerateTokens(ctx, j.ids[last:], j.opts, yield)
	out.stats = stats
	out.prefill = before + stats.Prefill
	out.ttft = before + stats.TimeToFirstToken
	if err != nil {
		return nil, err
	}
	if stats.StopReason != core.StopCancelled && len(fed) > 0 {
		if err := s.cache.store(append(j.ids[:len(j.ids):len(j.ids)], fed...), sess); err != nil {
			return nil, fmt.Errorf("cache a state: %w", err)
		}
	}
	return out, nil
}
