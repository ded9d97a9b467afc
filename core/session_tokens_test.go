package core

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
)

func TestGenerateTokensMatchesGenerate(t *testing.T) {
	m := randomModel(t)
	tests := []struct {
		name string
		opts GenerateOptions
	}{
		{"greedy", GenerateOptions{MaxTokens: 12}},
		{"sampled", GenerateOptions{MaxTokens: 12, Sample: sample.Params{Temperature: 1, TopP: 0.9, Seed: 7}}},
		{"stop", GenerateOptions{MaxTokens: 40, Stop: []string{"e"}, BanEndOfText: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const prompt = "User: hello there\n\nAssistant:"
			a := newSession(t, m)
			want, wantStats := generate(t, a, context.Background(), prompt, tc.opts)

			b := newSession(t, m)
			ids := b.Tokenizer().Encode(prompt)
			var got strings.Builder
			stats, fed, err := b.GenerateTokens(context.Background(), ids, tc.opts, func(p Piece) bool {
				got.WriteString(p.Text)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Fatalf("GenerateTokens text %q, Generate %q", got.String(), want)
			}
			if stats.Tokens != wantStats.Tokens || stats.StopReason != wantStats.StopReason || stats.PromptTokens != len(ids) {
				t.Fatalf("stats %+v, want tokens %d stop %s prompt %d", stats, wantStats.Tokens, wantStats.StopReason, len(ids))
			}
			if len(fed) != stats.Tokens {
				t.Fatalf("fed %d ids, stats count %d tokens", len(fed), stats.Tokens)
			}
			// The state must equal prompt+fed prefilled from zero.
			c := newSession(t, m)
			if err := c.PrefillTokens(context.Background(), slices.Concat(ids, fed)); err != nil {
				t.Fatal(err)
			}
			sb, _ := b.State()
			defer sb.Free()
			sc, _ := c.State()
			defer sc.Free()
			fb, _ := sb.Floats()
			fc, _ := sc.Floats()
			for i := range fb {
				if d := fb[i] - fc[i]; d > 1e-4 || d < -1e-4 {
					t.Fatalf("state differs at %d: %v vs %v", i, fb[i], fc[i])
				}
			}
		})
	}
}

func TestGenerateTokensAfterPrefill(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	ctx := context.Background()
	if _, _, err := s.GenerateTokens(ctx, nil, GenerateOptions{MaxTokens: 2}, func(Piece) bool { return true }); err == nil {
		t.Fatal("empty prompt on a fresh session: no error")
	}
	ids := s.Tokenizer().Encode("Once upon a time")
	if err := s.PrefillTokens(ctx, ids); err != nil {
		t.Fatal(err)
	}
	stats, fed, err := s.GenerateTokens(ctx, nil, GenerateOptions{MaxTokens: 3}, func(Piece) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if stats.PromptTokens != 0 || len(fed) != 3 || stats.StopReason != StopLength {
		t.Fatalf("stats %+v fed %v", stats, fed)
	}
	// Cancelled before the first token: nothing fed.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	stats, fed, err = s.GenerateTokens(cctx, []int32{1, 2}, GenerateOptions{MaxTokens: 3}, func(Piece) bool { return true })
	if err != nil || stats.StopReason != StopCancelled || len(fed) != 0 {
		t.Fatalf("cancelled: stats %+v fed %v err %v", stats, fed, err)
	}
	if _, _, err := s.GenerateTokens(ctx, []int32{70000}, GenerateOptions{}, func(Piece) bool { return true }); err == nil {
		t.Fatal("token outside the vocabulary: no error")
	}
}
