package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
)

// The API accepts exactly the sampling ranges of package sample, which the
// app and the terminal commands use too.
func TestSamplingLimitsShared(t *testing.T) {
	tok := world(t)
	lim := limits{maxPromptTokens: 4096, maxTokens: 1024, vocab: 65536}
	for _, c := range []struct {
		field string
		v     float64
		ok    bool
	}{
		{"temperature", 0, true}, {"temperature", sample.MaxTemperature, true}, {"temperature", sample.MaxTemperature + 0.01, false},
		{"temperature", -0.01, false},
		{"top_p", 0, true}, {"top_p", 1, true}, {"top_p", 1.01, false},
		{"presence_penalty", sample.MinPenalty, true}, {"presence_penalty", sample.MaxPenalty, true},
		{"presence_penalty", sample.MaxPenalty + 0.1, false}, {"frequency_penalty", sample.MinPenalty - 0.1, false},
		{"penalty_decay", 0, true}, {"penalty_decay", 1, true}, {"penalty_decay", 1.01, false},
	} {
		body := fmt.Sprintf(`{"messages":[{"role":"user","content":"hi"}],%q:%g}`, c.field, c.v)
		j, err := parseChat([]byte(body), tok, lim)
		if c.ok != (err == nil) {
			t.Errorf("%s %g: error %v, want ok=%v", c.field, c.v, err, c.ok)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s %g: error %q does not name the field", c.field, c.v, err)
		}
		if err == nil {
			if verr := j.opts.Sample.Validate(); verr != nil {
				t.Errorf("%s %g: accepted, but sample.Validate says %v", c.field, c.v, verr)
			}
		}
	}
}
