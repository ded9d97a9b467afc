package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// GenerateOptions control one Generate call.
type GenerateOptions struct {
	// Sample sets the sampler; the zero value is greedy.
	Sample sample.Params
	// MaxTokens caps the reply; 0 means 512.
	MaxTokens int
	// Stop ends the reply at the first of these strings; the stop string
	// itself is not returned but stays in the state.
	Stop []string
	// BanEndOfText forbids token 0 (chat code does this); otherwise token 0
	// ends the reply.
	BanEndOfText bool
}

// StopReason says why a reply ended.
type StopReason string

// Why generation stops.
const (
	StopEndOfText StopReason = "end_of_text" // the model produced token 0
	StopSequence  StopReason = "stop"        // a stop string appeared
	StopLength    StopReason = "length"      // MaxTokens reached
	StopCancelled StopReason = "cancelled"   // ctx was cancelled or yield returned false
)

// Piece is a streamed part of a reply: always whole UTF-8 characters.
type Piece struct {
	Text string
}

// Stats describe one Generate call.
type Stats struct {
	PromptTokens     int
	Tokens           int // generated tokens, the stop sequence included
	TimeToFirstToken time.Duration
	Prefill          time.Duration
	Decode           time.Duration
	StopReason       StopReason
}

// PrefillRate is prompt tokens per second.
func (s Stats) PrefillRate() float64 { return rate(s.PromptTokens, s.Prefill) }

// DecodeRate is generated tokens per second.
func (s Stats) DecodeRate() float64 { return rate(s.Tokens, s.Decode) }

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Session is a conversation with a model: a state, a tokenizer and the
// logits the state predicts next. It is not safe for concurrent use; use
// one Session per conversation (they may share a Model).
type Session struct {
	m      *Model
	tok    *tokenizer.Tokenizer
	st     *State
	logits []float32
	fresh  bool    // logits belong to st
	noText []int32 // ids with no bytes, never sampled
	bt     *Batcher
	// snap holds st's values while a prefill runs, to go back to if it
	// fails or is cancelled; allocated at the first prefill and kept, as
	// allocating and freeing device memory waits for the whole device.
	snap *State
}

// SetBatcher makes the session's replies decode through bt, together with
// the other sessions using it (continuous batching); nil decodes alone.
// The replies are the same either way, up to rounding.
func (s *Session) SetBatcher(bt *Batcher) { s.bt = bt }

// NewSession returns a session at the zero state.
func NewSession(m *Model, tok *tokenizer.Tokenizer) (*Session, error) {
	st, err := m.NewState()
	if err != nil {
		return nil, err
	}
	s := &Session{m: m, tok: tok, st: st, logits: make([]float32, m.cfg.Vocab)}
	for id := 1; id < m.cfg.Vocab; id++ {
		if tok.Token(int32(id)) == nil {
			s.noText = append(s.noText, int32(id))
		}
	}
	return s, nil
}

// Model returns the session's model.
func (s *Session) Model() *Model { return s.m }

// Tokenizer returns the session's tokenizer.
func (s *Session) Tokenizer() *tokenizer.Tokenizer { return s.tok }

// Close frees the session's state.
func (s *Session) Close() {
	s.st.Free()
	if s.snap != nil {
		s.snap.Free()
	}
}

// Reset returns to the zero state.
func (s *Session) Reset() error {
	s.fresh = false
	return s.st.Reset()
}

// State returns a copy of the current state (a snapshot).
func (s *Session) State() (*State, error) { return s.st.Clone() }

// SetState continues from a copy of st (a snapshot of this model).
func (s *Session) SetState(st *State) error {
	s.fresh = false
	return s.st.CopyFrom(st)
}

// Prefill feeds text into the state without generating.
func (s *Session) Prefill(ctx context.Context, text string) error {
	return s.PrefillTokens(ctx, s.tok.Encode(text))
}

// PrefillEmbeds feeds rows of input embeddings into the state (see
// Model.ForwardEmbeds), e.g. an image's projected features between the
// tokens of a prompt. If ctx is cancelled the state is left as before.
func (s *Session) PrefillEmbeds(ctx context.Context, rows []float32) error {
	return s.prefill(func() error { return s.m.ForwardEmbeds(ctx, s.st, rows, s.logits) })
}

// PrefillEmbedTensor is PrefillEmbeds for rows already on the model's
// backend (see Model.ForwardEmbedTensor).
func (s *Session) PrefillEmbedTensor(ctx context.Context, rows kernels.Tensor) error {
	return s.prefill(func() error { return s.m.ForwardEmbedTensor(ctx, s.st, rows, s.logits) })
}

// PrefillSegments feeds a prompt of token and embedding-row segments
// into the state in one pass (see Model.ForwardSegments). If ctx is
// cancelled the state is left as before.
func (s *Session) PrefillSegments(ctx context.Context, segs ...Segment) error {
	return s.prefill(func() error { return s.m.ForwardSegments(ctx, s.st, segs, s.logits) })
}

// PrefillTokens feeds tokens into the state. If ctx is cancelled the
// state is left as it was before the call.
func (s *Session) PrefillTokens(ctx context.Context, ids []int32) error {
	if len(ids) == 0 {
		return nil
	}
	return s.prefill(func() error { return s.m.Forward(ctx, s.st, ids, s.logits) })
}

// prefill runs feed, which advances the state and sets the logits; on an
// error (a cancelled ctx included) it puts the state back as it was.
func (s *Session) prefill(feed func() error) error {
	if s.snap == nil {
		snap, err := s.m.NewState()
		if err != nil {
			return err
		}
		s.snap = snap
	}
	snap := s.snap
	if err := snap.CopyFrom(s.st); err != nil {
		return err
	}
	if err := feed(); err != nil {
		// The state goes back to the snapshot; the logits are only written
		// at the end of a successful feed, so they still belong to it.
		if rerr := s.st.CopyFrom(snap); rerr != nil {
			s.fresh = false
			return errors.Join(err, rerr)
		}
		return err
	}
	s.fresh = true
	return nil
}

// Generate feeds prompt, then samples a reply, calling yield with each
// piece of text as it becomes final. It returns when the reply ends: on
// end of text, a stop string, MaxTokens, or cancellation — ctx is checked
// before every token and between prefill chunks, and yield returning false
// also cancels. A cancelled call returns StopCancelled and a nil error;
// when cancelled during the prompt the state is left as before the call.
// Every sampled token, the stop string included, is fed into the state so
// the conversation can continue.
func (s *Session) Generate(ctx context.Context, prompt string, opts GenerateOptions, yield func(Piece) bool) (Stats, error) {
	st, _, err := s.GenerateTokens(ctx, s.tok.Encode(prompt), opts, yield)
	return st, err
}

// GenerateTokens is Generate for a prompt given as token ids. It also
// returns the ids it fed into the state after the prompt: the reply's
// tokens, the stop sequence included (a final end-of-text token is not fed,
// so it is not among them). The state then equals the state after feeding
// prompt followed by those ids, which lets callers cache it under that
// token sequence.
//
// prompt may be empty when the session holds fresh logits, for example
// right after PrefillTokens.
func (s *Session) GenerateTokens(ctx context.Context, prompt []int32, opts GenerateOptions, yield func(Piece) bool) (Stats, []int32, error) {
	start := time.Now()
	var stats Stats
	if err := opts.Sample.Validate(); err != nil {
		return stats, nil, err
	}
	stats.PromptTokens = len(prompt)
	if len(prompt) == 0 && !s.fresh {
		return stats, nil, errors.New("generate: empty prompt and nothing to continue from")
	}
	if err := s.PrefillTokens(ctx, prompt); err != nil {
		if ctx.Err() != nil {
			stats.StopReason = StopCancelled
			return stats, nil, nil
		}
		return stats, nil, fmt.Errorf("generate: %w", err)
	}
	stats.Prefill = time.Since(start)

	maxTokens := opts.MaxTokens
	if maxTokens <= 0 {
		maxTokens = 512
	}
	smp := sample.New(opts.Sample, s.m.cfg.Vocab)
	smp.Ban(s.noText...)
	if opts.BanEndOfText {
		smp.Ban(tokenizer.EndOfText)
	}
	dec := s.tok.NewDecoder()
	stop := newStopMatcher(opts.Stop)
	var fed []int32
	// How a token is fed and the next one found. Greedy settings on a
	// backend that picks tokens itself: only the token comes back from the
	// device, unless the logits need the sampler (ForwardGreedy). Other
	// settings on a backend that draws tokens itself: smp's draw runs
	// there, and only the token comes back unless the host must decide
	// (ForwardSample, or StepSample through a Batcher). picked is then the
	// next token; otherwise the logits come back and smp samples them.
	picked := int32(-1)
	_, draws := s.m.be.(kernels.Drawer)
	step := func(tok int32) error { return s.m.Forward(context.WithoutCancel(ctx), s.st, []int32{tok}, s.logits) }
	switch {
	case s.bt != nil:
		slot, err := s.bt.Enter(s.st)
		if err != nil {
			return stats, nil, fmt.Errorf("generate: %w", err)
		}
		defer slot.Exit()
		step = func(tok int32) error { return slot.Step(context.WithoutCancel(ctx), tok, s.logits) }
		if draws {
			step = func(tok int32) (err error) {
				picked, err = slot.StepSample(context.WithoutCancel(ctx), tok, s.logits, smp)
				return err
			}
		}
	case opts.Sample.Greedy():
		step = func(tok int32) (err error) {
			picked, err = s.m.ForwardGreedy(context.WithoutCancel(ctx), s.st, tok, s.logits, func(id int32) bool { return !smp.Banned(id) })
			return err
		}
	case draws:
		step = func(tok int32) (err error) {
			picked, err = s.m.ForwardSample(context.WithoutCancel(ctx), s.st, tok, s.logits, smp)
			return err
		}
	}
	decodeStart := time.Now()
	finish := func(r StopReason) (Stats, []int32, error) {
		stats.StopReason = r
		if picked >= 0 {
			s.fresh = false // the last step left its logits on the device
		}
		stats.Decode = time.Since(decodeStart)
		if r == StopEndOfText || r == StopLength {
			// A partial character left in the decoder, then whatever the
			// stop matcher held back, ends the reply.
			out, hit := stop.add(dec.Flush())
			if rest := stop.flush(hit); out+rest != "" {
				yield(Piece{Text: out + rest})
			}
		}
		return stats, fed, nil
	}
	for {
		if ctx.Err() != nil {
			return finish(StopCancelled)
		}
		tok := picked
		if tok < 0 {
			tok = smp.Sample(s.logits)
		}
		if stats.Tokens == 0 {
			stats.TimeToFirstToken = time.Since(start)
		}
		if tok < 0 {
			s.fresh = false
			stats.Decode = time.Since(decodeStart)
			if i := weights.FirstNonFinite(kernels.F32, half.Bytes(s.logits)); i >= 0 {
				return stats, fed, fmt.Errorf("generate: the model's output is %s: %w (its weights or its state are corrupt; `gooseapp info --verify MODEL` checks a model file)",
					weights.Describe(kernels.F32, half.Bytes(s.logits), i), ErrNotFinite)
			}
			return stats, fed, errors.New("generate: no token can be sampled (every logit is banned)")
		}
		if tok == tokenizer.EndOfText {
			s.fresh = false // token 0 is not fed: the state ends the document
			return finish(StopEndOfText)
		}
		if err := step(tok); err != nil {
			s.fresh = false
			stats.Decode = time.Since(decodeStart)
			return stats, fed, fmt.Errorf("generate: %w", err)
		}
		fed = append(fed, tok)
		stats.Tokens++
		out, hit := stop.add(dec.Write(tok))
		if out != "" && !yield(Piece{Text: out}) {
			return finish(StopCancelled)
		}
		if hit {
			return finish(StopSequence)
		}
		if stats.Tokens >= maxTokens {
			return finish(StopLength)
		}
	}
}

// stopMatcher holds back text that may be the start of a stop string.
type stopMatcher struct {
	stops   []string
	pending string
}

func newStopMatcher(stops []string) *stopMatcher {
	m := &stopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// add appends text and returns what is safe to show, and whether a stop
// string was found (the text before it is returned; the rest dropped).
func (m *stopMatcher) add(text string) (string, bool) {
	m.pending += text
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(m.pending, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		out := m.pending[:first]
		m.pending = ""
		return out, true
	}
	hold := 0
	for _, s := range m.stops {
		for n := min(len(s)-1, len(m.pending)); n > hold; n-- {
			if strings.HasSuffix(m.pending, s[:n]) {
				hold = n
				break
			}
		}
	}
	out := m.pending[:len(m.pending)-hold]
	m.pending = m.pending[len(m.pending)-hold:]
	return out, false
}

// flush returns held-back text at the end of a reply.
func (m *stopMatcher) flush(matched bool) string {
	out := m.pending
	m.pending = ""
	if matched {
		return ""
	}
	return out
}
