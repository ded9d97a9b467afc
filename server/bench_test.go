package server

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels/backend"
)

// BenchmarkServeLoad is a bounded load test on loopback: b.N chat requests
// from 1, 4 and 16 concurrent clients against a random-weight model of the
// official 0.1B shape on the CPU. Each request has a shared system prompt
// and a distinct short question (about 30 prompt tokens) and asks for 16
// greedy tokens, so the prefix cache can serve the system prompt.
// It reports requests/s, p50 and p99 latency, generated tokens/s and the
// cache hit ratio. Keep it short: go test -bench ServeLoad -benchtime 32x.
//
// GOOSE_BENCH_BACKEND=cuda and GOOSE_BENCH_SHAPE=1.5b run it on the GPU at
// another shape (the 64-client case with batching is the one that shows
// continuous batching); GOOSE_BENCH_TOKENS sets the reply length and
// GOOSE_BENCH_SAMPLE=chat asks for the chat sampling settings (temperature
// 1, top-p 0.3, presence and frequency penalties) instead of greedy;
// GOOSE_BENCH_BATCH_WAIT (a duration) sets Options.BatchWait.
func BenchmarkServeLoad(b *testing.B) {
	shape := cmp.Or(os.Getenv("GOOSE_BENCH_SHAPE"), "0.1b")
	maxTokens, err := strconv.Atoi(cmp.Or(os.Getenv("GOOSE_BENCH_TOKENS"), "16"))
	if err != nil || maxTokens < 1 {
		b.Fatalf("GOOSE_BENCH_TOKENS=%q: want a positive count", os.Getenv("GOOSE_BENCH_TOKENS"))
	}
	var wait time.Duration
	if v := os.Getenv("GOOSE_BENCH_BATCH_WAIT"); v != "" {
		if wait, err = time.ParseDuration(v); err != nil {
			b.Fatalf("GOOSE_BENCH_BATCH_WAIT: %v", err)
		}
	}
	sampling := `"temperature":0`
	switch v := os.Getenv("GOOSE_BENCH_SAMPLE"); v {
	case "", "greedy":
	case "chat":
		sampling = `"temperature":1,"top_p":0.3,"presence_penalty":0.5,"frequency_penalty":0.5`
	default:
		b.Fatalf("GOOSE_BENCH_SAMPLE=%q: want greedy or chat", v)
	}
	cfg, ok := core.OfficialShape(shape)
	if !ok {
		b.Fatalf("GOOSE_BENCH_SHAPE=%s: unknown shape", shape)
	}
	var m *core.Model
	if name := os.Getenv("GOOSE_BENCH_BACKEND"); name != "" {
		be, _, err := backend.Open(name, backend.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		src, err := core.RandomSource(cfg, 1)
		if err != nil {
			b.Fatal(err)
		}
		if m, err = core.Load(src, core.LoadOptions{Backend: be}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { m.Close() })
	} else {
		m = loadModel(b, cfg, 1)
	}
	for _, bc := range []struct {
		clients, parallel int
		batch             bool
	}{{1, 1, false}, {4, 1, false}, {16, 1, false}, {16, 2, false}, {16, 16, true}, {64, 64, true}} {
		b.Run(fmt.Sprintf("clients=%d/parallel=%d/batch=%v", bc.clients, bc.parallel, bc.batch), func(b *testing.B) {
			s, hs := startServer(b, m, Options{Parallel: bc.parallel, MaxQueue: 64, Batch: bc.batch, BatchWait: wait})
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: bc.clients}}
			lat := make([]time.Duration, b.N)
			var next, tokens atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ResetTimer()
			for range bc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := int(next.Add(1) - 1)
						if i >= b.N {
							return
						}
						body := fmt.Sprintf(`{"messages":[{"role":"system","content":"You are a helpful assistant. Answer briefly."},`+
							`{"role":"user","content":"Question %d: what is %d plus %d?"}],%s,"max_tokens":%d,"seed":%d}`, i, i, i+1, sampling, maxTokens, i)
						start := time.Now()
						resp, err := client.Post(hs.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
						if err != nil {
							failed.Store(err)
							return
						}
						var v struct {
							Usage struct {
								CompletionTokens int `json:"completion_tokens"`
							} `json:"usage"`
						}
						err = json.NewDecoder(resp.Body).Decode(&v)
						resp.Body.Close()
						if err != nil || resp.StatusCode != 200 {
							failed.Store(fmt.Errorf("status %d: %v", resp.StatusCode, err))
							return
						}
						lat[i] = time.Since(start)
						tokens.Add(int64(v.Usage.CompletionTokens))
					}
				}()
			}
			wg.Wait()
			elapsed := b.Elapsed()
			b.StopTimer()
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
			}
			st := s.cache.stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(tokens.Load())/elapsed.Seconds(), "gen-tok/s")
			b.ReportMetric(float64(st.Hits)/float64(max(st.Lookups, 1)), "cache-hit")
			s.metrics.mu.Lock()
			b.ReportMetric(1000*s.metrics.prefillSeconds/float64(b.N), "prefill-ms/req")
			b.ReportMetric(1000*s.metrics.decodeSeconds/float64(b.N), "decode-ms/req")
			s.metrics.mu.Unlock()
			if s.batcher != nil {
				bs := s.batcher.Stats()
				steps := float64(max(bs.Steps, 1))
				b.ReportMetric(float64(bs.Rows)/steps, "rows/step")
				b.ReportMetric(float64(bs.Busy.Microseconds())/1000/steps, "busy-ms/step")
				b.ReportMetric(float64(bs.Parked)/steps, "parked/step")
				b.ReportMetric(float64(bs.Drawn)/float64(max(bs.Rows, 1)), "drawn")
				b.ReportMetric(float64(bs.Steps)/elapsed.Seconds(), "steps/s")
				b.ReportMetric(float64(bs.Waited.Microseconds())/1000/steps, "wait-ms/step")
				b.ReportMetric(float64(bs.Early)/steps, "early")
				b.ReportMetric(float64(bs.FirstBack.Microseconds())/1000/steps, "first-back-ms")
				b.ReportMetric(float64(bs.LastBack.Microseconds())/1000/steps, "last-back-ms")
				b.ReportMetric(float64(bs.Joins)/steps, "joins/step")
				b.ReportMetric(float64(bs.Joining.Microseconds())/1000/float64(max(bs.Joins, 1)), "ms/join")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkSecondTurn measures the latency of a conversation's second turn
// with and without the prefix cache, on the 0.1B shape: with the cache only
// the reply and the new turn are prefilled.
func BenchmarkSecondTurn(b *testing.B) {
	cfg, _ := core.OfficialShape("0.1b")
	m := loadModel(b, cfg, 1)
	history := strings.Repeat("Tell me about the history of the printing press and its effects on Europe. ", 4)
	for _, cached := range []bool{false, true} {
		name := "cache=off"
		opts := Options{CacheBytes: -1}
		if cached {
			name, opts = "cache=on", Options{}
		}
		b.Run(name, func(b *testing.B) {
			_, hs := startServer(b, m, opts)
			var promptTokens, cachedTokens int
			for i := range b.N {
				// A new conversation each time, so the cache holds only its
				// first turn.
				b.StopTimer()
				msgs := []map[string]string{{"role": "user", "content": fmt.Sprintf("(%d) %s", i, history)}}
				code, v := post(b, hs, "/v1/chat/completions", mustJSON(b, map[string]any{"messages": msgs, "temperature": 0, "max_tokens": 8}))
				if code != 200 {
					b.Fatal(v)
				}
				msgs = append(msgs, map[string]string{"role": "assistant", "content": path(v, "choices", 0, "message", "content").(string)},
					map[string]string{"role": "user", "content": "Why?"})
				second := mustJSON(b, map[string]any{"messages": msgs, "temperature": 0, "max_tokens": 8})
				b.StartTimer()
				code, v = post(b, hs, "/v1/chat/completions", second)
				if code != 200 {
					b.Fatal(v)
				}
				promptTokens = num(path(v, "usage", "prompt_tokens"))
				cachedTokens = num(path(v, "usage", "prompt_tokens_details", "cached_tokens"))
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/turn")
			b.ReportMetric(float64(promptTokens), "prompt-tok")
			b.ReportMetric(float64(promptTokens-cachedTokens), "prefilled-tok")
		})
	}
}

// TestBatchedServing sends concurrent greedy requests to a server that
// decodes them together (Options.Batch) and requires the replies a
// one-at-a-time server gives.
func TestBatchedServing(t *testing.T) {
	m := loadModel(t, tinyConfig(), 5)
	body := func(i int) string {
		return fmt.Sprintf(`{"messages":[{"role":"user","content":"Question %d: what is %d plus %d?"}],"temperature":0,"max_tokens":%d}`, i, i, i*7, 4+3*i)
	}
	const n = 6
	want := make([]string, n)
	_, plain := startServer(t, m, Options{Parallel: 1})
	for i := range n {
		code, v := post(t, plain, "/v1/chat/completions", body(i))
		if code != 200 {
			t.Fatalf("plain request %d: %d %v", i, code, v)
		}
		want[i] = path(v, "choices", 0, "message", "content").(string)
	}
	_, batched := startServer(t, m, Options{Parallel: 4, Batch: true})
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			code, v := post(t, batched, "/v1/chat/completions", body(i))
			if code == 200 {
				got[i] = path(v, "choices", 0, "message", "content").(string)
			}
		})
	}
	wg.Wait()
	for i := range n {
		if got[i] != want[i] {
			t.Errorf("request %d batched: %q, alone %q", i, got[i], want[i])
		}
	}
}
