package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
)

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
	decodeStart := time.Now()
	finish := func(r StopReason) (Stats, []int32, error) {
		stats.StopReason = r
		stats.Decode = time.Since(decodeStart)
		if rest := stop.flush(r == StopSequence); rest != "" && r != StopCancelled {
			yield(Piece{Text: rest})
		}
		return stats, fed, nil
	}
	for {
		if ctx.Err() != nil {
			return finish(StopCancelled)
		}
		tok := smp.Sample(s.logits)
		if stats.Tokens == 0 {
			stats.TimeToFirstToken = time.Since(start)
		}
		if tok < 0 {
			s.fresh = false
			stats.Decode = time.Since(decodeStart)
			return stats, fed, errors.New("generate: no token can be sampled (every logit is banned or not a number)")
		}
		if tok == tokenizer.EndOfText {
			s.fresh = false // token 0 is not fed: the state ends the document
			stop.add(dec.Flush())
			return finish(StopEndOfText)
		}
		if err := s.m.Forward(context.WithoutCancel(ctx), s.st, []int32{tok}, s.logits); err != nil {
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
			stop.add(dec.Flush())
			return finish(StopLength)
		}
	}
}
