package server

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the request bodies in testdata/requests as fuzz seeds.
func addSeeds(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/requests: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":null}],"logprobs":false}`))
	f.Add([]byte(`{"prompt":["x"],"logprobs":0,"stop":null}`))
	f.Add([]byte(`null`))
}

// checkParse checks what a parser returned for any input: a job within the
// limits, or a 4xx OpenAI-style error.
func checkParse(t *testing.T, j *job, err error, lim limits) {
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Fatalf("error %v is not an API error", err)
		}
		if ae.Status < 400 || ae.Status > 499 || ae.Message == "" || ae.Type == "" {
			t.Fatalf("error %+v", ae)
		}
		return
	}
	if len(j.ids) == 0 || len(j.ids) > lim.maxPromptTokens {
		t.Fatalf("prompt of %d tokens accepted", len(j.ids))
	}
	for _, id := range j.ids {
		if id < 0 || int(id) >= lim.vocab {
			t.Fatalf("token %d accepted", id)
		}
	}
	if j.checkpoint < 0 || j.checkpoint >= len(j.ids) {
		t.Fatalf("checkpoint %d of %d tokens", j.checkpoint, len(j.ids))
	}
	if j.opts.MaxTokens < 1 || j.opts.MaxTokens > lim.maxTokens {
		t.Fatalf("max tokens %d accepted", j.opts.MaxTokens)
	}
	if err := j.opts.Sample.Validate(); err != nil {
		t.Fatalf("invalid sampling accepted: %v", err)
	}
	for _, s := range j.opts.Stop {
		if s == "" {
			t.Fatal("empty stop string accepted")
		}
	}
	if !strings.Contains(j.endpoint, "c") {
		t.Fatalf("endpoint %q", j.endpoint)
	}
}

func FuzzParseChat(f *testing.F) {
	addSeeds(f)
	tok := world(f)
	lim := limits{maxPromptTokens: 4096, maxTokens: 1024, vocab: 65536}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := parseChat(body, tok, lim)
		checkParse(t, j, err, lim)
	})
}

func FuzzParseCompletion(f *testing.F) {
	addSeeds(f)
	tok := world(f)
	lim := limits{maxPromptTokens: 4096, maxTokens: 1024, vocab: 65536}
	f.Fuzz(func(t *testing.T, body []byte) {
		j, err := parseCompletion(body, tok, lim)
		checkParse(t, j, err, lim)
	})
}
