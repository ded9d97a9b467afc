package server

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/core"
)

// TestMetricsFormat checks the exposition against the Prometheus text
// format: HELP and TYPE before each family, well-formed samples, and
// cumulative histogram buckets that end in +Inf = _count.
func TestMetricsFormat(t *testing.T) {
	m := newMetrics()
	m.countRequest("chat", 200)
	m.countRequest("chat", 200)
	m.countRequest("chat", 503)
	m.countRequest("models", 200)
	m.countCancelled()
	m.observeQueue(3 * time.Millisecond)
	for _, d := range []time.Duration{20 * time.Millisecond, 700 * time.Millisecond, 2 * time.Second, 10 * time.Minute} {
		m.observeGeneration("chat", &outcome{stats: core.Stats{Tokens: 5, Decode: time.Second}, promptTokens: 10, cachedTokens: 4,
			prefill: 100 * time.Millisecond, ttft: d / 2}, d)
	}
	var b strings.Builder
	m.write(&b, gauges{active: 1, waiting: 2, workers: 1, maxWaiting: 8,
		cache: cacheStats{Entries: 3, Bytes: 300, Capacity: 1000, Lookups: 4, Hits: 3}, uptime: time.Minute})
	text := b.String()

	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="[^"]*",?)*\})? (\S+)$`)
	typed := map[string]string{}
	helped := map[string]bool{}
	values := map[string]float64{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, help, _ := strings.Cut(rest, " ")
			if help == "" {
				t.Fatalf("line %d: empty help", i)
			}
			helped[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if typ != "counter" && typ != "gauge" && typ != "histogram" {
				t.Fatalf("line %d: type %q", i, typ)
			}
			typed[name] = typ
			continue
		}
		mt := sample.FindStringSubmatch(line)
		if mt == nil {
			t.Fatalf("line %d is not a sample: %q", i, line)
		}
		v, err := strconv.ParseFloat(mt[4], 64)
		if err != nil {
			t.Fatalf("line %d: value %q", i, mt[4])
		}
		family := mt[1]
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(family, suf); ok && typed[f] == "histogram" {
				family = f
			}
		}
		if typed[family] == "" || !helped[family] {
			t.Fatalf("line %d: %s has no TYPE or HELP before it", i, family)
		}
		values[mt[1]+mt[2]] = v
	}
	for key, want := range map[string]float64{
		`goose_requests_total{endpoint="chat",code="200"}`:                  2,
		`goose_requests_total{endpoint="chat",code="503"}`:                  1,
		"goose_requests_rejected_total":                                     1,
		"goose_requests_cancelled_total":                                    1,
		"goose_prompt_tokens_total":                                         40,
		"goose_prompt_cached_tokens_total":                                  16,
		"goose_prefill_tokens_total":                                        24,
		"goose_completion_tokens_total":                                     20,
		"goose_prefix_cache_hit_ratio":                                      0.75,
		"goose_requests_waiting":                                            2,
		`goose_request_duration_seconds_count{endpoint="chat"}`:             4,
		`goose_request_duration_seconds_bucket{endpoint="chat",le="0.025"}`: 1,
		`goose_request_duration_seconds_bucket{endpoint="chat",le="1"}`:     2,
		`goose_request_duration_seconds_bucket{endpoint="chat",le="300"}`:   3,
		`goose_request_duration_seconds_bucket{endpoint="chat",le="+Inf"}`:  4,
		"goose_queue_wait_seconds_count":                                    1,
		`goose_queue_wait_seconds_bucket{le="0.005"}`:                       1,
	} {
		if got, ok := values[key]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	if m.meanDuration() <= 0 {
		t.Error("mean duration not positive")
	}
}
