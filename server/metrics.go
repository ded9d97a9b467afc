package server

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// numBuckets is the number of finite latency histogram buckets.
const numBuckets = 15

// latencyBuckets returns the upper bounds, in seconds, of the latency
// histograms' buckets.
func latencyBuckets() [numBuckets]float64 {
	return [numBuckets]float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300}
}

// histogram counts observations into latencyBuckets.
type histogram struct {
	counts [numBuckets + 1]uint64 // the last is +Inf
	sum    float64
	n      uint64
}

func (h *histogram) observe(d time.Duration) {
	v := d.Seconds()
	bounds := latencyBuckets()
	i, _ := slices.BinarySearch(bounds[:], v)
	h.counts[i]++
	h.sum += v
	h.n++
}

// requestKey labels the request counter.
type requestKey struct {
	endpoint string
	code     int
}

// metrics are the server's counters, exposed at GET /metrics in the
// Prometheus text format.
type metrics struct {
	mu        sync.Mutex
	requests  map[requestKey]uint64
	rejected  uint64 // 503: queue full
	cancelled uint64 // client went away or gave up while queued or generating

	promptTokens, cachedTokens, completionTokens uint64
	prefillSeconds, decodeSeconds                float64

	duration  map[string]*histogram // by endpoint, generation requests only
	queueWait histogram
	ttft      histogram
}

func newMetrics() *metrics {
	return &metrics{requests: map[requestKey]uint64{}, duration: map[string]*histogram{}}
}

func (m *metrics) countRequest(endpoint string, code int) {
	m.mu.Lock()
	m.requests[requestKey{endpoint, code}]++
	if code == 503 {
		m.rejected++
	}
	m.mu.Unlock()
}

func (m *metrics) countCancelled() {
	m.mu.Lock()
	m.cancelled++
	m.mu.Unlock()
}

func (m *metrics) observeQueue(d time.Duration) {
	m.mu.Lock()
	m.queueWait.observe(d)
	m.mu.Unlock()
}

// observeGeneration records a finished generation.
func (m *metrics) observeGeneration(endpoint string, r *outcome, total time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.promptTokens += uint64(r.promptTokens)
	m.cachedTokens += uint64(r.cachedTokens)
	m.completionTokens += uint64(r.stats.Tokens)
	m.prefillSeconds += r.prefill.Seconds()
	m.decodeSeconds += r.stats.Decode.Seconds()
	if r.stats.Tokens > 0 {
		m.ttft.observe(r.ttft)
	}
	h := m.duration[endpoint]
	if h == nil {
		h = &histogram{}
		m.duration[endpoint] = h
	}
	h.observe(total)
}

// meanDuration is the mean generation request time, or 0 if none finished.
func (m *metrics) meanDuration() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	var sum float64
	var n uint64
	for _, h := range m.duration {
		sum += h.sum
		n += h.n
	}
	if n == 0 {
		return 0
	}
	return time.Duration(sum / float64(n) * float64(time.Second))
}

// gauges are point-in-time values added to the exposition.
type gauges struct {
	active, waiting, workers, maxWaiting int
	cache                                cacheStats
	uptime                               time.Duration
}

// write renders every metric in the Prometheus text exposition format
// (version 0.0.4).
func (m *metrics) write(w io.Writer, g gauges) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	head := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	one := func(name, typ, help string, v float64) {
		head(name, typ, help)
		fmt.Fprintf(&b, "%s %s\n", name, num(v))
	}
	hist := func(name, labels string, h *histogram) {
		var cum uint64
		for i, le := range latencyBuckets() {
			cum += h.counts[i]
			fmt.Fprintf(&b, "%s_bucket{%sle=\"%s\"} %d\n", name, labels, num(le), cum)
		}
		cum += h.counts[numBuckets]
		fmt.Fprintf(&b, "%s_bucket{%sle=\"+Inf\"} %d\n", name, labels, cum)
		l := strings.TrimSuffix(labels, ",")
		if l != "" {
			l = "{" + l + "}"
		}
		fmt.Fprintf(&b, "%s_sum%s %s\n%s_count%s %d\n", name, l, num(h.sum), name, l, h.n)
	}

	head("goose_requests_total", "counter", "HTTP requests by endpoint and status code.")
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b requestKey) int {
		return cmp.Or(cmp.Compare(a.endpoint, b.endpoint), cmp.Compare(a.code, b.code))
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "goose_requests_total{endpoint=%q,code=\"%d\"} %d\n", k.endpoint, k.code, m.requests[k])
	}
	one("goose_requests_rejected_total", "counter", "Requests refused with 503 because the queue was full.", float64(m.rejected))
	one("goose_requests_cancelled_total", "counter", "Requests whose client disconnected while queued or generating.", float64(m.cancelled))
	one("goose_requests_active", "gauge", "Requests generating now.", float64(g.active))
	one("goose_requests_waiting", "gauge", "Requests waiting in the queue.", float64(g.waiting))
	one("goose_workers", "gauge", "Requests that can generate at once.", float64(g.workers))
	one("goose_queue_capacity", "gauge", "Requests that may wait before new ones get 503.", float64(g.maxWaiting))

	one("goose_prompt_tokens_total", "counter", "Prompt tokens of finished generations.", float64(m.promptTokens))
	one("goose_prompt_cached_tokens_total", "counter", "Prompt tokens restored from the prefix cache instead of prefilled.", float64(m.cachedTokens))
	one("goose_prefill_tokens_total", "counter", "Prompt tokens fed through the model.", float64(m.promptTokens-m.cachedTokens))
	one("goose_completion_tokens_total", "counter", "Generated tokens.", float64(m.completionTokens))
	one("goose_prefill_seconds_total", "counter", "Time spent restoring and prefilling prompts.", m.prefillSeconds)
	one("goose_decode_seconds_total", "counter", "Time spent generating tokens.", m.decodeSeconds)

	c := g.cache
	one("goose_prefix_cache_lookups_total", "counter", "Prefix cache lookups (one per generation).", float64(c.Lookups))
	one("goose_prefix_cache_hits_total", "counter", "Lookups that found a cached prefix.", float64(c.Hits))
	ratio := 0.0
	if c.Lookups > 0 {
		ratio = float64(c.Hits) / float64(c.Lookups)
	}
	one("goose_prefix_cache_hit_ratio", "gauge", "Hits divided by lookups.", ratio)
	one("goose_prefix_cache_hit_tokens_total", "counter", "Prompt tokens covered by cache hits.", float64(c.HitTokens))
	one("goose_prefix_cache_inserts_total", "counter", "States stored in the prefix cache.", float64(c.Inserts))
	one("goose_prefix_cache_evictions_total", "counter", "States evicted to stay within the capacity.", float64(c.Evictions))
	one("goose_prefix_cache_entries", "gauge", "States in the prefix cache.", float64(c.Entries))
	one("goose_prefix_cache_bytes", "gauge", "Bytes held by the prefix cache.", float64(c.Bytes))
	one("goose_prefix_cache_capacity_bytes", "gauge", "Capacity of the prefix cache in bytes.", float64(c.Capacity))

	head("goose_request_duration_seconds", "histogram", "Generation request latency, from arrival to the last byte.")
	eps := make([]string, 0, len(m.duration))
	for e := range m.duration {
		eps = append(eps, e)
	}
	slices.Sort(eps)
	for _, e := range eps {
		hist("goose_request_duration_seconds", fmt.Sprintf("endpoint=%q,", e), m.duration[e])
	}
	head("goose_queue_wait_seconds", "histogram", "Time requests waited for a free worker.")
	hist("goose_queue_wait_seconds", "", &m.queueWait)
	head("goose_time_to_first_token_seconds", "histogram", "Time from getting a worker to the first generated token.")
	hist("goose_time_to_first_token_seconds", "", &m.ttft)
	one("goose_uptime_seconds", "gauge", "Seconds since the server started.", math.Round(g.uptime.Seconds()))
	io.WriteString(w, b.String())
}
