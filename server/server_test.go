package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/sample"
)

// greedyParams is what a request with temperature 0 and no penalties asks
// for.
func greedyParams() sample.Params { return sample.Params{PenaltyDecay: penaltyDecay} }

// reference generates directly with a session, as the server should.
func reference(t *testing.T, m *core.Model, ids []int32, opts core.GenerateOptions, trim bool) (string, core.Stats) {
	t.Helper()
	sess, err := core.NewSession(m, world(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var b strings.Builder
	stats, _, err := sess.GenerateTokens(context.Background(), ids, opts, func(p core.Piece) bool {
		b.WriteString(p.Text)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	text := b.String()
	if trim {
		text = strings.TrimLeft(text, " \t\n")
	}
	return text, stats
}

func TestModels(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{ModelID: "rwkv7-test"})
	code, body := getText(t, hs.URL+"/v1/models")
	if code != 200 {
		t.Fatalf("GET /v1/models: %d %s", code, body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if path(v, "object") != "list" || path(v, "data", 0, "id") != "rwkv7-test" || path(v, "data", 0, "object") != "model" {
		t.Fatalf("models: %s", body)
	}
	if code, body := getText(t, hs.URL+"/v1/models/rwkv7-test"); code != 200 || !strings.Contains(body, `"id":"rwkv7-test"`) {
		t.Fatalf("GET /v1/models/rwkv7-test: %d %s", code, body)
	}
	if code, _ := getText(t, hs.URL+"/v1/models/other"); code != 404 {
		t.Fatalf("GET /v1/models/other: %d, want 404", code)
	}
}

func TestChatNonStreaming(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{})
	msgs := []core.Message{{Role: "System", Content: "Be brief."}, {Role: "User", Content: "Hello!"}}
	code, v := post(t, hs, "/v1/chat/completions", `{"model":"x","messages":[
		{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hello!"}]}],
		"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":20}`)
	if code != 200 {
		t.Fatalf("status %d: %v", code, v)
	}
	ids, _ := chatTokens(world(t), msgs)
	want, stats := reference(t, m, ids, core.GenerateOptions{Sample: greedyParams(), MaxTokens: 20,
		Stop: []string{"\n\n"}, BanEndOfText: true}, true)
	if got := path(v, "choices", 0, "message", "content"); got != want {
		t.Fatalf("content %q, want %q", got, want)
	}
	if path(v, "object") != "chat.completion" || path(v, "choices", 0, "message", "role") != "assistant" ||
		!strings.HasPrefix(path(v, "id").(string), "chatcmpl-") || path(v, "model") != "goose" {
		t.Fatalf("response shape: %v", v)
	}
	if got := path(v, "choices", 0, "finish_reason"); got != finishReason(stats.StopReason) {
		t.Fatalf("finish_reason %v, want %v", got, finishReason(stats.StopReason))
	}
	u := path(v, "usage")
	if num(path(u, "prompt_tokens")) != len(ids) || num(path(u, "completion_tokens")) != stats.Tokens ||
		num(path(u, "total_tokens")) != len(ids)+stats.Tokens {
		t.Fatalf("usage %v, want prompt %d completion %d", u, len(ids), stats.Tokens)
	}
}

func TestChatStreaming(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{})
	req := `{"messages":[{"role":"user","content":"Tell me a story."}],"temperature":0.8,"top_p":0.5,"seed":42,
		"max_tokens":24,"stream":%s,"stream_options":{"include_usage":true}}`
	code, whole := post(t, hs, "/v1/chat/completions", fmt.Sprintf(req, "false"))
	if code != 200 {
		t.Fatalf("status %d: %v", code, whole)
	}
	resp, err := http.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(fmt.Sprintf(req, "true")))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := sseEvents(t, resp.Body)
	if len(events) < 4 || events[len(events)-1] != "[DONE]" {
		t.Fatalf("events %q: want role, content..., finish, usage, [DONE]", events)
	}
	var text strings.Builder
	var finish any
	var usage any
	for i, e := range events[:len(events)-1] {
		var c map[string]any
		if err := json.Unmarshal([]byte(e), &c); err != nil {
			t.Fatalf("event %d %q: %v", i, e, err)
		}
		if c["object"] != "chat.completion.chunk" {
			t.Fatalf("event %d object %v", i, c["object"])
		}
		if i == 0 && path(c, "choices", 0, "delta", "role") != "assistant" {
			t.Fatalf("first event %s: want the assistant role", e)
		}
		if u := path(c, "usage"); u != nil {
			usage = u
			if n := len(c["choices"].([]any)); n != 0 {
				t.Fatalf("usage chunk has %d choices", n)
			}
			continue
		}
		if s, ok := path(c, "choices", 0, "delta", "content").(string); ok {
			text.WriteString(s)
		}
		if f := path(c, "choices", 0, "finish_reason"); f != nil {
			finish = f
		}
	}
	if got, want := text.String(), path(whole, "choices", 0, "message", "content"); got != want {
		t.Fatalf("streamed %q, non-streamed %q (same seed)", got, want)
	}
	if finish != path(whole, "choices", 0, "finish_reason") {
		t.Fatalf("streamed finish %v, non-streamed %v", finish, path(whole, "choices", 0, "finish_reason"))
	}
	if num(path(usage, "completion_tokens")) != num(path(whole, "usage", "completion_tokens")) {
		t.Fatalf("streamed usage %v, non-streamed %v", usage, path(whole, "usage"))
	}
}

func TestSeed(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{CacheBytes: -1})
	ask := func(seed int) string {
		code, v := post(t, hs, "/v1/completions", fmt.Sprintf(`{"prompt":"The","temperature":1,"top_p":1,"max_tokens":16,"seed":%d}`, seed))
		if code != 200 {
			t.Fatalf("status %d: %v", code, v)
		}
		return path(v, "choices", 0, "text").(string)
	}
	a, b, c := ask(1), ask(1), ask(2)
	if a != b {
		t.Fatalf("seed 1 gave %q then %q", a, b)
	}
	if a == c {
		t.Fatalf("seeds 1 and 2 both gave %q", a)
	}
}

func TestCompletions(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{})
	tok := world(t)
	ids := tok.Encode("Once upon a time")
	want, stats := reference(t, m, ids, core.GenerateOptions{Sample: greedyParams(), MaxTokens: 12}, false)
	idsJSON := mustJSON(t, ids)
	for _, tc := range []struct{ name, prompt string }{
		{"string", `"Once upon a time"`},
		{"one string", `["Once upon a time"]`},
		{"ids", idsJSON},
		{"one id array", "[" + idsJSON + "]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, v := post(t, hs, "/v1/completions", `{"prompt":`+tc.prompt+`,"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":12}`)
			if code != 200 {
				t.Fatalf("status %d: %v", code, v)
			}
			if got := path(v, "choices", 0, "text"); got != want {
				t.Fatalf("text %q, want %q", got, want)
			}
			if path(v, "object") != "text_completion" || num(path(v, "usage", "completion_tokens")) != stats.Tokens {
				t.Fatalf("response %v", v)
			}
		})
	}
	t.Run("echo", func(t *testing.T) {
		code, v := post(t, hs, "/v1/completions", `{"prompt":"Once upon a time","echo":true,"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":12}`)
		if code != 200 || path(v, "choices", 0, "text") != "Once upon a time"+want {
			t.Fatalf("status %d, text %q", code, path(v, "choices", 0, "text"))
		}
	})
	t.Run("stream", func(t *testing.T) {
		resp, err := http.Post(hs.URL+"/v1/completions", "application/json",
			strings.NewReader(`{"prompt":"Once upon a time","stream":true,"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":12}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		events := sseEvents(t, resp.Body)
		var text strings.Builder
		for _, e := range events[:len(events)-1] {
			var c map[string]any
			if err := json.Unmarshal([]byte(e), &c); err != nil {
				t.Fatal(err)
			}
			if c["object"] != "text_completion" {
				t.Fatalf("chunk %s", e)
			}
			s, _ := path(c, "choices", 0, "text").(string)
			text.WriteString(s)
		}
		if text.String() != want || events[len(events)-1] != "[DONE]" {
			t.Fatalf("streamed %q, want %q; last event %q", text.String(), want, events[len(events)-1])
		}
	})
}

// TestCacheSecondTurn: a second turn that extends the first conversation
// restores the cached state instead of prefilling the first prompt again,
// and answers exactly as a server without a cache.
func TestCacheSecondTurn(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	cached, hs := startServer(t, m, Options{})
	_, plain := startServer(t, m, Options{CacheBytes: -1})
	turn := func(hs string, msgs []map[string]string) (string, int, int) {
		t.Helper()
		resp, err := http.Post(hs+"/v1/chat/completions", "application/json", strings.NewReader(mustJSON(t, map[string]any{
			"messages": msgs, "temperature": 0, "presence_penalty": 0, "frequency_penalty": 0, "max_tokens": 16,
		})))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var v map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, err %v, body %v", resp.StatusCode, err, v)
		}
		return path(v, "choices", 0, "message", "content").(string), num(path(v, "usage", "prompt_tokens")),
			num(path(v, "usage", "prompt_tokens_details", "cached_tokens"))
	}
	msgs := []map[string]string{{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hi there, how are you?"}}
	reply1, prompt1, cached1 := turn(hs.URL, msgs)
	if cached1 != 0 {
		t.Fatalf("first turn: %d cached tokens on an empty cache", cached1)
	}
	msgs = append(msgs, map[string]string{"role": "assistant", "content": reply1}, map[string]string{"role": "user", "content": "And then?"})
	reply2, prompt2, cached2 := turn(hs.URL, msgs)
	if cached2 < prompt1-1 || cached2 >= prompt2 {
		t.Fatalf("second turn: %d of %d prompt tokens cached, want at least the first prompt's %d", cached2, prompt2, prompt1)
	}
	// The same conversation on a server without a cache.
	plainReply1, _, _ := turn(plain.URL, msgs[:2])
	plainReply2, plainPrompt2, plainCached2 := turn(plain.URL, msgs)
	if plainReply1 != reply1 || plainReply2 != reply2 || plainPrompt2 != prompt2 || plainCached2 != 0 {
		t.Fatalf("without the cache: %q, %q (%d prompt, %d cached); with it: %q, %q (%d prompt)",
			plainReply1, plainReply2, plainPrompt2, plainCached2, reply1, reply2, prompt2)
	}
	// A third request repeating the second hits its prompt-end state.
	_, prompt3, cached3 := turn(hs.URL, msgs)
	if cached3 != prompt3-1 {
		t.Fatalf("repeated request: %d of %d prompt tokens cached, want all but the last", cached3, prompt3)
	}
	st := cached.cache.stats()
	if st.Lookups != 3 || st.Hits != 2 {
		t.Fatalf("cache stats %+v, want 3 lookups, 2 hits", st)
	}
	_, metrics := getText(t, hs.URL+"/metrics")
	for _, line := range []string{
		"goose_prefix_cache_lookups_total 3", "goose_prefix_cache_hits_total 2",
		fmt.Sprintf("goose_prompt_cached_tokens_total %d", cached2+cached3),
		`goose_requests_total{endpoint="chat",code="200"} 3`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
}

// TestCacheAfterReply: the state after a reply is cached under the prompt
// and the reply's tokens, so a request that continues from those tokens
// restores it.
func TestCacheAfterReply(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	s, hs := startServer(t, m, Options{})
	tok := world(t)
	ids := tok.Encode("The quick brown fox")
	opts := core.GenerateOptions{Sample: greedyParams(), MaxTokens: 10}
	sess, err := core.NewSession(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	_, fed, err := sess.GenerateTokens(context.Background(), ids, opts, func(core.Piece) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	body := `{"prompt":%s,"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":10}`
	if code, v := post(t, hs, "/v1/completions", fmt.Sprintf(body, mustJSON(t, ids))); code != 200 {
		t.Fatalf("status %d: %v", code, v)
	}
	next := slices.Concat(ids, fed, tok.Encode(" and then"))
	code, v := post(t, hs, "/v1/completions", fmt.Sprintf(body, mustJSON(t, next)))
	if code != 200 {
		t.Fatalf("status %d: %v", code, v)
	}
	if got, want := num(path(v, "usage", "prompt_tokens_details", "cached_tokens")), len(ids)+len(fed); got != want {
		t.Fatalf("continuation: %d cached tokens, want %d (prompt + reply)", got, want)
	}
	if s.cache.stats().Entries != 4 {
		t.Fatalf("cache entries %d, want 4 (two prompts, two replies)", s.cache.stats().Entries)
	}
}

// TestCancelOnDisconnect: a client that goes away stops its generation at
// once and frees the worker for the next request.
func TestCancelOnDisconnect(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	s, hs := startServer(t, m, Options{MaxTokens: 1 << 20})
	body := `{"messages":[{"role":"user","content":"Count forever."}],"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":%d,"stream":true}`
	// The greedy reply runs to its length limit: no stop ends it early.
	code, v := post(t, hs, "/v1/chat/completions", strings.Replace(fmt.Sprintf(body, 300), `"stream":true`, `"stream":false`, 1))
	if code != 200 || path(v, "choices", 0, "finish_reason") != "length" {
		t.Fatalf("probe: status %d, %v", code, v)
	}
	elapsed := 0.0
	if tok := num(path(v, "usage", "completion_tokens")); tok != 300 {
		t.Fatalf("probe generated %d tokens", tok)
	}
	_, metrics := getText(t, hs.URL+"/metrics")
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, "goose_decode_seconds_total "); ok {
			elapsed, _ = strconv.ParseFloat(v, 64)
		}
	}
	perToken := time.Duration(elapsed / 300 * float64(time.Second))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/chat/completions", strings.NewReader(fmt.Sprintf(body, 1<<20)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	if _, err := resp.Body.Read(buf); err != nil { // the generation is running
		t.Fatal(err)
	}
	if active, _ := s.sched.load(); active != 1 {
		t.Fatalf("%d active requests, want 1", active)
	}
	cancel()
	resp.Body.Close()
	start := time.Now()
	waitFor(t, 5*time.Second, "the worker to be released", func() bool { active, _ := s.sched.load(); return active == 0 })
	t.Logf("released %v after disconnect (a token takes %v; the full reply would take %v)", time.Since(start), perToken, perToken*(1<<20))
	s.metrics.mu.Lock()
	cancelled := s.metrics.cancelled
	s.metrics.mu.Unlock()
	if cancelled != 1 {
		t.Fatalf("cancelled count %d, want 1", cancelled)
	}
	// The worker serves the next request.
	if code, v := post(t, hs, "/v1/chat/completions", `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":2}`); code != 200 {
		t.Fatalf("next request: %d %v", code, v)
	}
}

// TestOverload: with one worker and a queue of one, a third concurrent
// request gets 503 with Retry-After; a queued request whose client gives up
// leaves the queue.
func TestOverload(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	s, hs := startServer(t, m, Options{Parallel: 1, MaxQueue: 1, MaxTokens: 1 << 20})
	long := `{"messages":[{"role":"user","content":"Go on."}],"temperature":0,"presence_penalty":0,"frequency_penalty":0,"max_tokens":1000000,"stream":true}`
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	reqA, _ := http.NewRequestWithContext(ctxA, "POST", hs.URL+"/v1/chat/completions", strings.NewReader(long))
	reqA.Header.Set("Content-Type", "application/json")
	respA, err := http.DefaultClient.Do(reqA)
	if err != nil {
		t.Fatal(err)
	}
	defer respA.Body.Close()
	if respA.StatusCode != 200 {
		t.Fatalf("A: status %d", respA.StatusCode)
	}
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	doneB := make(chan error, 1)
	go func() {
		reqB, _ := http.NewRequestWithContext(ctxB, "POST", hs.URL+"/v1/chat/completions", strings.NewReader(long))
		reqB.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(reqB)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		doneB <- err
	}()
	waitFor(t, 5*time.Second, "B to queue", func() bool { _, w := s.sched.load(); return w == 1 })

	resp, err := http.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(long))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("C: status %d, want 503: %s", resp.StatusCode, b)
	}
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("C: Retry-After %q", resp.Header.Get("Retry-After"))
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil || path(e, "error", "type") != typeServer || path(e, "error", "message") == "" {
		t.Fatalf("C: body %s", b)
	}

	cancelB() // B gives up while queued
	<-doneB
	waitFor(t, 5*time.Second, "B to leave the queue", func() bool { _, w := s.sched.load(); return w == 0 })
	cancelA()
	waitFor(t, 5*time.Second, "A to stop", func() bool { a, _ := s.sched.load(); return a == 0 })
	_, metrics := getText(t, hs.URL+"/metrics")
	for _, line := range []string{"goose_requests_rejected_total 1", "goose_requests_cancelled_total 2",
		`goose_requests_total{endpoint="chat",code="503"} 1`} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("metrics lack %q", line)
		}
	}
}

func TestAuth(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{APIKey: "sekrit"})
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", 401}, {"Bearer wrong", 401}, {"sekrit", 401}, {"Basic sekrit", 401},
		{"Bearer sekrit", 200}, {"bearer sekrit", 200},
	} {
		req, _ := http.NewRequest("GET", hs.URL+"/v1/models", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("Authorization %q: status %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
		if tc.want == 401 && !strings.Contains(string(b), `"code":"invalid_api_key"`) {
			t.Errorf("Authorization %q: body %s", tc.auth, b)
		}
	}
}

func TestBadRequests(t *testing.T) {
	m := loadModel(t, tinyConfig(), 1)
	_, hs := startServer(t, m, Options{MaxBodyBytes: 1 << 16, MaxTokens: 1000, MaxPromptTokens: 200})
	chat := func(extra string) string {
		return `{"messages":[{"role":"user","content":"hi"}]` + extra + `}`
	}
	tests := []struct {
		name, path, body string
		status           int
		param            string // "" for null
	}{
		{"not JSON", "/v1/chat/completions", `{"messages":`, 400, ""},
		{"empty body", "/v1/chat/completions", ``, 400, ""},
		{"array body", "/v1/chat/completions", `[1,2]`, 400, ""},
		{"trailing garbage", "/v1/chat/completions", chat("") + "x", 400, ""},
		{"temperature string", "/v1/chat/completions", chat(`,"temperature":"hot"`), 400, "temperature"},
		{"temperature too high", "/v1/chat/completions", chat(`,"temperature":5`), 400, "temperature"},
		{"temperature huge", "/v1/chat/completions", chat(`,"temperature":1e400`), 400, "temperature"},
		{"top_p negative", "/v1/chat/completions", chat(`,"top_p":-0.1`), 400, "top_p"},
		{"top_k negative", "/v1/chat/completions", chat(`,"top_k":-1`), 400, "top_k"},
		{"max_tokens zero", "/v1/chat/completions", chat(`,"max_tokens":0`), 400, "max_tokens"},
		{"max_tokens absurd", "/v1/chat/completions", chat(`,"max_tokens":1000000000`), 400, "max_tokens"},
		{"max_tokens fraction", "/v1/chat/completions", chat(`,"max_tokens":1.5`), 400, "max_tokens"},
		{"max_completion_tokens", "/v1/chat/completions", chat(`,"max_completion_tokens":-3`), 400, "max_completion_tokens"},
		{"presence out of range", "/v1/chat/completions", chat(`,"presence_penalty":10`), 400, "presence_penalty"},
		{"frequency wrong type", "/v1/chat/completions", chat(`,"frequency_penalty":[1]`), 400, "frequency_penalty"},
		{"seed string", "/v1/chat/completions", chat(`,"seed":"abc"`), 400, "seed"},
		{"n=2", "/v1/chat/completions", chat(`,"n":2`), 400, "n"},
		{"stream string", "/v1/chat/completions", chat(`,"stream":"yes"`), 400, "stream"},
		{"stop number", "/v1/chat/completions", chat(`,"stop":7`), 400, "stop"},
		{"stop array of numbers", "/v1/chat/completions", chat(`,"stop":[1]`), 400, "stop"},
		{"five stops", "/v1/chat/completions", chat(`,"stop":["a","b","c","d","e"]`), 400, "stop"},
		{"empty stop", "/v1/chat/completions", chat(`,"stop":[""]`), 400, "stop"},
		{"logprobs", "/v1/chat/completions", chat(`,"logprobs":true`), 400, "logprobs"},
		{"tools", "/v1/chat/completions", chat(`,"tools":[{"type":"function"}]`), 400, "tools"},
		{"json mode", "/v1/chat/completions", chat(`,"response_format":{"type":"json_object"}`), 400, "response_format"},
		{"no messages", "/v1/chat/completions", `{"messages":[]}`, 400, "messages"},
		{"messages missing", "/v1/chat/completions", `{"model":"x"}`, 400, "messages"},
		{"messages object", "/v1/chat/completions", `{"messages":{"role":"user"}}`, 400, "messages"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"hi"}]}`, 400, "messages[0].role"},
		{"tool role", "/v1/chat/completions", `{"messages":[{"role":"tool","content":"hi"}]}`, 400, "messages[0].role"},
		{"content number", "/v1/chat/completions", `{"messages":[{"role":"user","content":5}]}`, 400, "messages[0].content"},
		{"image content", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400, "messages[0].content"},
		{"prompt too long", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 300) + `"}]}`, 400, "messages"},
		{"body too large", "/v1/chat/completions", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<17) + `"}]}`, 413, ""},
		{"completion no prompt", "/v1/completions", `{"max_tokens":3}`, 400, "prompt"},
		{"completion empty prompt", "/v1/completions", `{"prompt":""}`, 400, "prompt"},
		{"completion prompt object", "/v1/completions", `{"prompt":{"a":1}}`, 400, "prompt"},
		{"completion batch", "/v1/completions", `{"prompt":["a","b"]}`, 400, "prompt"},
		{"completion bad token", "/v1/completions", `{"prompt":[1,70000]}`, 400, "prompt"},
		{"completion negative token", "/v1/completions", `{"prompt":[-1]}`, 400, "prompt"},
		{"completion suffix", "/v1/completions", `{"prompt":"a","suffix":"b"}`, 400, "suffix"},
		{"completion best_of", "/v1/completions", `{"prompt":"a","best_of":3}`, 400, "best_of"},
		{"completion logprobs", "/v1/completions", `{"prompt":"a","logprobs":5}`, 400, "logprobs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, v := post(t, hs, tc.path, tc.body)
			if code != tc.status {
				t.Fatalf("status %d, want %d: %v", code, tc.status, v)
			}
			e, ok := v["error"].(map[string]any)
			if !ok || len(v) != 1 {
				t.Fatalf("body %v: want only an error object", v)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e[k]; !ok {
					t.Fatalf("error object lacks %q: %v", k, e)
				}
			}
			if msg, _ := e["message"].(string); msg == "" || e["type"] != typeInvalidRequest {
				t.Fatalf("error %v", e)
			}
			var want any
			if tc.param != "" {
				want = tc.param
			}
			if e["param"] != want {
				t.Fatalf("param %v, want %v (%v)", e["param"], want, e["message"])
			}
		})
	}
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/chat/completions", 405},
		{"DELETE", "/v1/models", 405},
		{"GET", "/v1/nothing", 404},
		{"POST", "/v2/chat/completions", 404},
	} {
		req, _ := http.NewRequest(tc.method, hs.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		err = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != tc.status || err != nil || path(v, "error", "message") == nil {
			t.Errorf("%s %s: status %d (want %d), body %v, err %v", tc.method, tc.path, resp.StatusCode, tc.status, v, err)
		}
	}
	// The server still works.
	if code, v := post(t, hs, "/v1/chat/completions", chat(`,"max_tokens":2`)); code != 200 {
		t.Fatalf("after bad requests: %d %v", code, v)
	}
}

func TestChatTokens(t *testing.T) {
	tok := world(t)
	tests := [][]core.Message{
		{{Role: "User", Content: "Hello!"}},
		{{Role: "System", Content: "Be kind."}, {Role: "User", Content: "What is 2+2?"}},
		{{Role: "User", Content: "Hi"}, {Role: "Assistant", Content: "Hello. How can I help?"}, {Role: "User", Content: "A poem:\n\n\nplease"}},
		{{Role: "User", Content: "Start"}, {Role: "Assistant", Content: "Sure, here"}},
		{{Role: "User", Content: ":) emoji 🙂 and ünïcode"}},
	}
	for i, msgs := range tests {
		ids, checkpoint := chatTokens(tok, msgs)
		if want := tok.Encode(core.ChatPrompt(msgs)); !slices.Equal(ids, want) {
			t.Errorf("case %d: ids differ from Encode(ChatPrompt)\n got %v\nwant %v", i, ids, want)
		}
		if len(msgs) > 1 {
			last := msgs[len(msgs)-1]
			head, tail := string(tok.Decode(ids[:checkpoint])), string(tok.Decode(ids[checkpoint:]))
			if !strings.HasPrefix(tail, last.Role+": "+core.CleanTurn(last.Content)) || head+tail != core.ChatPrompt(msgs) ||
				!strings.HasSuffix(head, "\n\n") {
				t.Errorf("case %d: checkpoint %d splits the prompt into %q and %q", i, checkpoint, head, tail)
			}
		} else if checkpoint != 0 {
			t.Errorf("case %d: checkpoint %d for one message", i, checkpoint)
		}
	}
}
