package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"math/rand/v2"
	"reflect"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/vision"
)

// Limits on request parameters.
const (
	maxStops      = 4   // OpenAI allows up to 4 stop sequences
	maxStopBytes  = 256 // per stop sequence
	maxMessages   = 4096
	penaltyDecay  = 0.996 // alpha_decay of the RWKV chat code (rwkv7-core.md §6.3)
	turnSeparator = "\n\n"
)

// samplingRequest holds the fields both endpoints share. Pointers tell an
// omitted field from a zero one.
type samplingRequest struct {
	Model               string         `json:"model"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	Temperature         *float64       `json:"temperature"`
	TopP                *float64       `json:"top_p"`
	TopK                *int           `json:"top_k"` // extension, as in most local servers
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Stop                stopList       `json:"stop"`
	PresencePenalty     *float64       `json:"presence_penalty"`
	FrequencyPenalty    *float64       `json:"frequency_penalty"`
	PenaltyDecay        *float64       `json:"penalty_decay"` // extension: alpha_decay
	Seed                *int64         `json:"seed"`
	N                   *int           `json:"n"`
	Logprobs            any            `json:"logprobs"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	samplingRequest
	Messages       []chatMessage   `json:"messages"`
	Tools          json.RawMessage `json:"tools"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	samplingRequest
	Prompt json.RawMessage `json:"prompt"`
	Echo   bool            `json:"echo"`
	Suffix *string         `json:"suffix"`
	BestOf *int            `json:"best_of"`
}

// stopList is the "stop" parameter: null, a string, or an array of strings.
type stopList []string

// UnmarshalJSON accepts null, a string or an array of strings.
func (s *stopList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = nil
		return nil
	case len(b) > 0 && b[0] == '"':
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = stopList{one}
		return nil
	case len(b) > 0 && b[0] == '[':
		var many []string
		if err := json.Unmarshal(b, &many); err != nil {
			var typ *json.UnmarshalTypeError
			if asTypeError(err, &typ) {
				return &json.UnmarshalTypeError{Value: typ.Value, Type: reflect.TypeFor[string]()}
			}
			return err
		}
		*s = many
		return nil
	}
	return &json.UnmarshalTypeError{Value: jsonValueKind(b), Type: reflect.TypeFor[[]string]()}
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = t
	}
	return ok
}

// jsonValueKind names the kind of a JSON value from its first byte.
func jsonValueKind(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// job is a validated generation request.
type job struct {
	endpoint     string // "chat" or "completions"
	model        string
	stream       bool
	includeUsage bool
	ids          []int32 // prompt tokens
	// checkpoint is a prompt prefix length worth caching on its own (the
	// conversation before its last message), or 0.
	checkpoint int
	opts       core.GenerateOptions
	// trimLeading drops the space the model puts after "Assistant:".
	trimLeading bool
	echo        string // text to put before the completion (completions' echo)
	// segs is a prompt with images (VisualRWKV-7), instead of ids, and
	// promptRows its length in rows (tokens and image rows).
	segs       []segment
	promptRows int
}

// limits bound what a request may ask for.
type limits struct {
	maxPromptTokens int
	maxTokens       int
	vocab           int
	// vision says image_url parts are accepted: each image becomes
	// imageRows embedding rows; encoded images may be maxImageBytes long.
	vision        bool
	imageRows     int
	maxImageBytes int
}

// sampling validates the shared parameters and fills opts. def gives the
// defaults for omitted sampling fields.
func (r *samplingRequest) sampling(lim limits, def sample.Params, defMax int, j *job) error {
	if r.N != nil && *r.N != 1 {
		return invalid("n", "unsupported_value", "n must be 1: this server returns one choice per request")
	}
	switch v := r.Logprobs.(type) {
	case nil, bool:
		if v == true {
			return invalid("logprobs", "unsupported_value", "logprobs are not supported")
		}
	case float64:
		// completions' logprobs is an integer count; 0 means none
		if v != 0 {
			return invalid("logprobs", "unsupported_value", "logprobs are not supported")
		}
	default:
		return invalid("logprobs", "invalid_type", "invalid type for 'logprobs'")
	}
	p := def
	p.PenaltyDecay = penaltyDecay
	if r.Temperature != nil {
		if *r.Temperature < 0 || *r.Temperature > sample.MaxTemperature {
			return invalid("temperature", "invalid_value", "temperature must be between 0 and %d, got %g", sample.MaxTemperature, *r.Temperature)
		}
		p.Temperature = float32(*r.Temperature)
	}
	if r.TopP != nil {
		if *r.TopP < 0 || *r.TopP > 1 {
			return invalid("top_p", "invalid_value", "top_p must be between 0 and 1, got %g", *r.TopP)
		}
		p.TopP = float32(*r.TopP)
	}
	if r.TopK != nil {
		if *r.TopK < 0 || *r.TopK > lim.vocab {
			return invalid("top_k", "invalid_value", "top_k must be between 0 (off) and %d, got %d", lim.vocab, *r.TopK)
		}
		p.TopK = *r.TopK
	}
	for _, pen := range []struct {
		name string
		v    *float64
		dst  *float32
	}{
		{"presence_penalty", r.PresencePenalty, &p.PresencePenalty},
		{"frequency_penalty", r.FrequencyPenalty, &p.FrequencyPenalty},
	} {
		if pen.v != nil {
			if *pen.v < sample.MinPenalty || *pen.v > sample.MaxPenalty {
				return invalid(pen.name, "invalid_value", "%s must be between %d and %d, got %g", pen.name, sample.MinPenalty, sample.MaxPenalty, *pen.v)
			}
			*pen.dst = float32(*pen.v)
		}
	}
	if r.PenaltyDecay != nil {
		if *r.PenaltyDecay < 0 || *r.PenaltyDecay > 1 {
			return invalid("penalty_decay", "invalid_value", "penalty_decay must be between 0 (no decay) and 1, got %g", *r.PenaltyDecay)
		}
		p.PenaltyDecay = float32(*r.PenaltyDecay)
	}
	if r.Seed != nil {
		p.Seed = uint64(*r.Seed)
	} else {
		p.Seed = rand.Uint64()
	}
	if err := p.Validate(); err != nil {
		return invalid("", "invalid_value", "%v", err)
	}
	maxTokens, param := defMax, "max_tokens"
	switch {
	case r.MaxCompletionTokens != nil:
		maxTokens, param = *r.MaxCompletionTokens, "max_completion_tokens"
	case r.MaxTokens != nil:
		maxTokens = *r.MaxTokens
	}
	if maxTokens < 1 || maxTokens > lim.maxTokens {
		return invalid(param, "invalid_value", "%s must be between 1 and %d, got %d", param, lim.maxTokens, maxTokens)
	}
	if len(r.Stop) > maxStops {
		return invalid("stop", "invalid_value", "at most %d stop sequences are allowed, got %d", maxStops, len(r.Stop))
	}
	for i, s := range r.Stop {
		if s == "" || len(s) > maxStopBytes {
			return invalid("stop", "invalid_value", "stop sequence %d must be 1 to %d bytes long, got %d", i, maxStopBytes, len(s))
		}
	}
	j.model = r.Model
	j.stream = r.Stream
	j.includeUsage = r.Stream && r.StreamOptions != nil && r.StreamOptions.IncludeUsage
	j.opts = core.GenerateOptions{Sample: p, MaxTokens: maxTokens, Stop: append([]string(nil), r.Stop...)}
	return nil
}

// decodeBody unmarshals a request body into v, mapping errors to 400s.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return invalid("", "invalid_json", "the request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return decodeError(err)
	}
	return nil
}

// parseChat validates a chat request and renders its prompt.
func parseChat(body []byte, tok *tokenizer.Tokenizer, lim limits) (*job, error) {
	var r chatRequest
	if err := decodeBody(body, &r); err != nil {
		return nil, err
	}
	j := &job{endpoint: "chat"}
	if err := r.sampling(lim, sample.DefaultChat(), lim.maxTokens, j); err != nil {
		return nil, err
	}
	if len(r.Tools) > 0 && !bytes.Equal(bytes.TrimSpace(r.Tools), []byte("null")) && !bytes.Equal(bytes.TrimSpace(r.Tools), []byte("[]")) {
		return nil, invalid("tools", "unsupported_value", "tools (function calling) are not supported")
	}
	if r.ResponseFormat != nil && r.ResponseFormat.Type != "" && r.ResponseFormat.Type != "text" {
		return nil, invalid("response_format", "unsupported_value", "response_format %q is not supported; only \"text\"", r.ResponseFormat.Type)
	}
	if len(r.Messages) == 0 {
		return nil, invalid("messages", "invalid_value", "messages must be a non-empty array")
	}
	if len(r.Messages) > maxMessages {
		return nil, invalid("messages", "invalid_value", "at most %d messages are allowed, got %d", maxMessages, len(r.Messages))
	}
	msgs := make([]core.Message, len(r.Messages))
	turns := make([]vision.Turn, len(r.Messages))
	var images []image.Image
	for i, m := range r.Messages {
		role, err := speaker(m.Role)
		if err != nil {
			return nil, invalid(fmt.Sprintf("messages[%d].role", i), "invalid_value", "%v", err)
		}
		text, imgs, err := messageContent(m.Content, i, lim)
		if err != nil {
			return nil, err
		}
		if len(imgs) > 0 && role != "User" {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value", "images are accepted in user messages only")
		}
		if images = append(images, imgs...); len(images) > maxImages {
			return nil, invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value", "at most %d images a request", maxImages)
		}
		msgs[i] = core.Message{Role: role, Content: text}
		turns[i] = vision.Turn{Role: role, Text: text, Images: len(imgs)}
	}
	if len(images) > 0 {
		if msgs[len(msgs)-1].Role == "Assistant" {
			return nil, invalid("messages", "invalid_value", "a conversation with images must end with a user message")
		}
		j.segs, j.promptRows = imagePrompt(tok, turns, images, lim.imageRows)
		if err := checkPromptLength(j.promptRows, lim, "messages"); err != nil {
			return nil, err
		}
	} else {
		j.ids, j.checkpoint = chatTokens(tok, msgs)
		if err := checkPromptLength(len(j.ids), lim, "messages"); err != nil {
			return nil, err
		}
	}
	last := msgs[len(msgs)-1]
	j.trimLeading = last.Role != "Assistant" || core.CleanTurn(last.Content) == ""
	j.opts.Stop = append(j.opts.Stop, turnSeparator)
	j.opts.BanEndOfText = true
	return j, nil
}

// speaker maps an OpenAI role to its World-format speaker.
func speaker(role string) (string, error) {
	switch strings.ToLower(role) {
	case "system", "developer":
		return "System", nil
	case "user":
		return "User", nil
	case "assistant":
		return "Assistant", nil
	case "":
		return "", fmt.Errorf("role is required")
	case "tool", "function":
		return "", fmt.Errorf("role %q is not supported (no function calling)", role)
	}
	return "", fmt.Errorf("unknown role %q: use system, user or assistant", role)
}

// messageText reads a message's content: a string, null, or an array of
// content parts of which only text parts are supported.
func messageText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("content is not a valid string: %v", err)
		}
		return s, nil
	case '[':
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return "", fmt.Errorf("content must be a string or an array of {\"type\":\"text\",\"text\":...} parts")
		}
		var texts []string
		for k, p := range parts {
			if p.Type != "text" || p.Text == nil {
				return "", fmt.Errorf("content part %d has type %q: only text parts are supported", k, p.Type)
			}
			texts = append(texts, *p.Text)
		}
		return strings.Join(texts, "\n"), nil
	}
	return "", fmt.Errorf("content must be a string or an array of content parts, got %s", jsonValueKind(raw))
}

// chatTokens renders a conversation in the World chat format
// (core.ChatPrompt) and tokenizes it piece by piece: "Role:" and
// " content\n\n" separately. The World vocabulary has no token that spans
// those boundaries (no ": " or "\n\nX" tokens), so the ids equal those of
// the whole prompt, and a prompt that extends an earlier one by a reply and
// a new turn always has the earlier prompt's ids as a prefix — which is
// what the prefix cache needs. checkpoint is the length of the prompt
// before its last message (0 for a single message).
func chatTokens(tok *tokenizer.Tokenizer, msgs []core.Message) (ids []int32, checkpoint int) {
	for i, m := range msgs {
		if i == len(msgs)-1 && i > 0 {
			checkpoint = len(ids)
		}
		ids = append(ids, tok.Encode(m.Role+":")...)
		content := core.CleanTurn(m.Content)
		if i == len(msgs)-1 && m.Role == "Assistant" {
			// Continue a partial assistant message.
			ids = append(ids, tok.Encode(" "+content)...)
			return ids, checkpoint
		}
		ids = append(ids, tok.Encode(" "+content+turnSeparator)...)
	}
	return append(ids, tok.Encode("Assistant:")...), checkpoint
}

// checkPromptLength checks a prompt's length in tokens; param names the
// request field that holds it ("messages" or "prompt").
func checkPromptLength(n int, lim limits, param string) error {
	if n == 0 {
		return invalid(param, "invalid_value", "the prompt is empty")
	}
	if n > lim.maxPromptTokens {
		return invalid(param, "context_length_exceeded", "the prompt has %d tokens; this server accepts at most %d", n, lim.maxPromptTokens)
	}
	return nil
}

// parseCompletion validates a completions request and tokenizes its prompt.
func parseCompletion(body []byte, tok *tokenizer.Tokenizer, lim limits) (*job, error) {
	var r completionRequest
	if err := decodeBody(body, &r); err != nil {
		return nil, err
	}
	j := &job{endpoint: "completions"}
	def := sample.Params{Temperature: 1, TopP: 0.85, PresencePenalty: 0.2, FrequencyPenalty: 0.2} // PIPELINE_ARGS
	if err := r.sampling(lim, def, min(16, lim.maxTokens), j); err != nil {
		return nil, err
	}
	if r.Suffix != nil && *r.Suffix != "" {
		return nil, invalid("suffix", "unsupported_value", "suffix (insertion) is not supported")
	}
	if r.BestOf != nil && *r.BestOf != 1 {
		return nil, invalid("best_of", "unsupported_value", "best_of must be 1")
	}
	ids, text, err := promptTokens(r.Prompt, tok, lim.vocab)
	if err != nil {
		return nil, err
	}
	if err := checkPromptLength(len(ids), lim, "prompt"); err != nil {
		return nil, err
	}
	j.ids = ids
	if r.Echo {
		j.echo = text
	}
	return j, nil
}

// promptTokens reads completions' prompt: a string, an array of one string,
// an array of token ids, or an array of one array of token ids.
func promptTokens(raw json.RawMessage, tok *tokenizer.Tokenizer, vocab int) ([]int32, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, "", invalid("prompt", "invalid_value", "prompt is required")
	}
	fromIDs := func(ids []int64) ([]int32, string, error) {
		out := make([]int32, len(ids))
		for i, id := range ids {
			if id < 0 || id >= int64(vocab) {
				return nil, "", invalid("prompt", "invalid_value", "token %d at position %d is outside the vocabulary [0,%d)", id, i, vocab)
			}
			out[i] = int32(id)
		}
		return out, strings.ToValidUTF8(string(tok.Decode(out)), "\uFFFD"), nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return tok.Encode(s), s, nil
	}
	var ss []string
	if json.Unmarshal(raw, &ss) == nil {
		if len(ss) != 1 {
			return nil, "", invalid("prompt", "unsupported_value", "prompt must hold exactly one string (batches are not supported), got %d", len(ss))
		}
		return tok.Encode(ss[0]), ss[0], nil
	}
	var ids []int64
	if json.Unmarshal(raw, &ids) == nil {
		return fromIDs(ids)
	}
	var batch [][]int64
	if json.Unmarshal(raw, &batch) == nil {
		if len(batch) != 1 {
			return nil, "", invalid("prompt", "unsupported_value", "prompt must hold exactly one token array (batches are not supported), got %d", len(batch))
		}
		return fromIDs(batch[0])
	}
	return nil, "", invalid("prompt", "invalid_type", "prompt must be a string or an array of token ids, got %s", jsonValueKind(raw))
}
