package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/goose-rwkv/goose/core"
)

// usage is the OpenAI usage object. cached_tokens counts the prompt tokens
// restored from the prefix cache rather than fed through the model.
type usage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

func usageOf(out *outcome) *usage {
	u := &usage{PromptTokens: out.promptTokens, CompletionTokens: out.stats.Tokens,
		TotalTokens: out.promptTokens + out.stats.Tokens}
	u.PromptTokensDetails.CachedTokens = out.cachedTokens
	return u
}

type chatMessageOut struct {
	Role    string `json:"role,omitempty"`
	Content string `json:"content"`
}

// choice is one choice of a response or a chunk; which fields appear
// depends on the endpoint and on streaming.
type choice struct {
	Index        int             `json:"index"`
	Message      *chatMessageOut `json:"message,omitempty"` // chat
	Delta        *chatMessageOut `json:"delta,omitempty"`   // chat, streamed
	Text         *string         `json:"text,omitempty"`    // completions
	Logprobs     any             `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type response struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []choice `json:"choices"`
	Usage   *usage   `json:"usage,omitempty"`
}

// writeTimeout bounds each write to the client.
const writeTimeout = 30 * time.Second

// responder turns generated pieces into a JSON response or an SSE stream.
type responder struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	j       *job
	id      string
	created int64
	model   string

	started  bool // stream: headers and the first chunk are sent
	broken   bool // stream: a write failed; the client is gone
	seenText bool // a non-space character has been produced
	text     strings.Builder
}

func newResponder(w http.ResponseWriter, j *job, model string) *responder {
	prefix := "chatcmpl-"
	if j.endpoint == "completions" {
		prefix = "cmpl-"
	}
	return &responder{w: w, rc: http.NewResponseController(w), j: j, id: newID(prefix),
		created: time.Now().Unix(), model: model}
}

func (rs *responder) object() string {
	switch {
	case rs.j.endpoint == "completions":
		return "text_completion"
	case rs.j.stream:
		return "chat.completion.chunk"
	}
	return "chat.completion"
}

// piece receives generated text. It returns false once the client is gone,
// which stops the generation.
func (rs *responder) piece(p core.Piece) bool {
	t := p.Text
	if rs.j.trimLeading && !rs.seenText {
		t = strings.TrimLeftFunc(t, unicode.IsSpace)
	}
	if t == "" {
		return !rs.broken
	}
	rs.seenText = true
	if !rs.j.stream {
		rs.text.WriteString(t)
		return true
	}
	rs.start()
	rs.chunk(rs.delta(t, nil), nil)
	return !rs.broken
}

// delta builds a streamed choice.
func (rs *responder) delta(text string, finish *string) choice {
	if rs.j.endpoint == "completions" {
		return choice{Text: &text, FinishReason: finish}
	}
	d := &chatMessageOut{Content: text}
	if finish != nil && text == "" {
		d = &chatMessageOut{}
	}
	return choice{Delta: d, FinishReason: finish}
}

// start sends the stream's headers and first chunk: the assistant role for
// chat, the echoed prompt for completions.
func (rs *responder) start() {
	if rs.started {
		return
	}
	rs.started = true
	h := rs.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	rs.w.WriteHeader(http.StatusOK)
	if rs.j.endpoint == "chat" {
		rs.chunk(choice{Delta: &chatMessageOut{Role: "assistant", Content: ""}}, nil)
	} else if rs.j.echo != "" {
		rs.chunk(rs.delta(rs.j.echo, nil), nil)
	}
}

// chunk sends one SSE event with a single choice (or none, with usage).
func (rs *responder) chunk(c choice, u *usage) {
	resp := response{ID: rs.id, Object: rs.object(), Created: rs.created, Model: rs.model, Choices: []choice{c}, Usage: u}
	if u != nil {
		resp.Choices = []choice{}
	}
	b, err := json.Marshal(resp)
	if err != nil {
		rs.broken = true
		return
	}
	rs.event(b)
}

func (rs *responder) event(data []byte) {
	if rs.broken {
		return
	}
	// A client that stops reading must not hold a session forever.
	rs.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	buf := make([]byte, 0, len(data)+8)
	buf = append(append(append(buf, "data: "...), data...), "\n\n"...)
	if _, err := rs.w.Write(buf); err != nil {
		rs.broken = true
		return
	}
	if err := rs.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		rs.broken = true
	}
}

func finishReason(r core.StopReason) string {
	if r == core.StopLength {
		return "length"
	}
	return "stop"
}

// finish sends the end of the stream, or the whole response.
func (rs *responder) finish(out *outcome) {
	reason := finishReason(out.stats.StopReason)
	if rs.j.stream {
		rs.start()
		rs.chunk(rs.delta("", &reason), nil)
		if rs.j.includeUsage {
			rs.chunk(choice{}, usageOf(out))
		}
		rs.event([]byte("[DONE]"))
		return
	}
	c := choice{FinishReason: &reason}
	text := rs.text.String()
	if rs.j.endpoint == "completions" {
		text = rs.j.echo + text
		c.Text = &text
	} else {
		c.Message = &chatMessageOut{Role: "assistant", Content: text}
	}
	rs.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	writeJSON(rs.w, http.StatusOK, response{ID: rs.id, Object: rs.object(), Created: rs.created,
		Model: rs.model, Choices: []choice{c}, Usage: usageOf(out)})
}

// streamError reports an error after the stream has started.
func (rs *responder) streamError(err error) {
	b, _ := json.Marshal(errorBody{&apiError{Type: typeServer, Message: err.Error()}})
	rs.event(b)
	rs.event([]byte("[DONE]"))
}
