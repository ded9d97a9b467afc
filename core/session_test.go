package core

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels"
)

// testModelPath writes (once per test binary run, per test) a small
// random-weight model with the full World vocabulary.
func randomModel(t testing.TB) *Model {
	t.Helper()
	return randomModelOn(t, newCPU(t))
}

// randomModelOn loads randomModel's weights on be.
func randomModelOn(t testing.TB, be kernels.Backend) *Model {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rand.safetensors")
	cfg := Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
	if err := WriteRandom(path, cfg, 42); err != nil {
		t.Fatal(err)
	}
	m, err := LoadFile(path, LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

var worldOnce = sync.OnceValues(tokenizer.World)

func newSession(t testing.TB, m *Model) *Session {
	t.Helper()
	tok, err := worldOnce()
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSession(m, tok)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func generate(t *testing.T, s *Session, ctx context.Context, prompt string, opts GenerateOptions) (string, Stats) {
	t.Helper()
	var b strings.Builder
	st, err := s.Generate(ctx, prompt, opts, func(p Piece) bool { b.WriteString(p.Text); return true })
	if err != nil {
		t.Fatal(err)
	}
	return b.String(), st
}

func TestGenerateDeterministicAndRestorable(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	ctx := context.Background()
	if err := s.Prefill(ctx, "User: hello\n\n"); err != nil {
		t.Fatal(err)
	}
	snap, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Free()
	opts := GenerateOptions{Sample: sample.Params{Temperature: 1, TopP: 0.9, Seed: 5}, MaxTokens: 24}
	a, sa := generate(t, s, ctx, "Assistant:", opts)
	if sa.Tokens == 0 || sa.PromptTokens == 0 || a == "" {
		t.Fatalf("nothing generated: %+v %q", sa, a)
	}
	if err := s.SetState(snap); err != nil {
		t.Fatal(err)
	}
	b, _ := generate(t, s, ctx, "Assistant:", opts)
	if a != b {
		t.Errorf("same state and seed gave different replies:\n%q\n%q", a, b)
	}
	// A serialized state restores exactly too.
	data, err := snap.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	st2, err := m.NewState()
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Free()
	if err := st2.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(st2); err != nil {
		t.Fatal(err)
	}
	c, _ := generate(t, s, ctx, "Assistant:", opts)
	if a != c {
		t.Errorf("restored state gave a different reply:\n%q\n%q", a, c)
	}
}

func TestGenerateStops(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	ctx := context.Background()
	greedy := GenerateOptions{MaxTokens: 40}
	full, st := generate(t, s, ctx, "The", greedy)
	if st.StopReason != StopLength && st.StopReason != StopEndOfText {
		t.Fatalf("stop reason %q", st.StopReason)
	}
	if st.StopReason == StopLength && st.Tokens != 40 {
		t.Errorf("length stop after %d tokens, want 40", st.Tokens)
	}
	if len(full) < 4 {
		t.Skipf("reply too short to pick a stop string: %q", full)
	}
	// Stop at a string taken from the middle of the greedy reply.
	stop := full[len(full)/2 : len(full)/2+2]
	want := full[:strings.Index(full, stop)]
	if err := s.Reset(); err != nil {
		t.Fatal(err)
	}
	greedy.Stop = []string{stop}
	got, st := generate(t, s, ctx, "The", greedy)
	if st.StopReason != StopSequence || got != want {
		t.Errorf("with stop %q: got %q (%s), want %q", stop, got, st.StopReason, want)
	}
}

func TestGenerateCancel(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	// Cancelled before it starts: nothing fed, state unchanged.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before, _ := s.State()
	defer before.Free()
	st, err := s.Generate(ctx, strings.Repeat("long prompt ", 200), GenerateOptions{}, func(Piece) bool { return true })
	if err != nil || st.StopReason != StopCancelled || st.Tokens != 0 {
		t.Fatalf("got %+v, %v", st, err)
	}
	after, _ := s.State()
	defer after.Free()
	fb, _ := before.Floats()
	fa, _ := after.Floats()
	if d, _ := maxDiff(fa, fb); d != 0 {
		t.Errorf("cancelled prompt changed the state")
	}
	// yield returning false stops within one token.
	n := 0
	st, err = s.Generate(context.Background(), "Hi", GenerateOptions{MaxTokens: 100, Sample: sample.Params{Temperature: 1, Seed: 1}}, func(Piece) bool {
		n++
		return n < 3
	})
	if err != nil || st.StopReason != StopCancelled || n != 3 {
		t.Errorf("after yield false: %+v, %v, %d pieces", st, err, n)
	}
}

func TestSequenceMatchesRNN(t *testing.T) {
	m := randomModel(t)
	tok, _ := worldOnce()
	ids := tok.Encode("User: Tell me about geese and recurrent networks.\n\nAssistant:")
	V := m.Config().Vocab
	ctx := context.Background()
	seq := make([]float32, len(ids)*V)
	st, _ := m.NewState()
	defer st.Free()
	if err := m.ForwardAll(ctx, st, ids, seq); err != nil {
		t.Fatal(err)
	}
	st2, _ := m.NewState()
	defer st2.Free()
	one := make([]float32, V)
	for i, id := range ids {
		if err := m.Forward(ctx, st2, []int32{id}, one); err != nil {
			t.Fatal(err)
		}
		row := seq[i*V : (i+1)*V]
		if d, at := maxDiff(one, row); d > 1e-4*std(row) {
			t.Fatalf("token %d: seq and rnn differ by %g at %d", i, d, at)
		}
	}
}

func TestStateFormatErrors(t *testing.T) {
	m := randomModel(t)
	st, _ := m.NewState()
	defer st.Free()
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(data)
	corrupt[100] ^= 1
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a Goose state"},
		{"bad magic", append([]byte("NOTSTATE"), data[8:]...), "not a Goose state"},
		{"truncated", data[:len(data)-10], "unexpected EOF"},
		{"corrupt", corrupt, "checksum"},
	}
	for _, tc := range tests {
		err := st.UnmarshalBinary(tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
	if err := st.UnmarshalBinary(data); err != nil {
		t.Errorf("valid data: %v", err)
	}
}

func TestForwardErrors(t *testing.T) {
	m := randomModel(t)
	st, _ := m.NewState()
	ctx := context.Background()
	if err := m.Forward(ctx, st, []int32{70000}, nil); err == nil || !strings.Contains(err.Error(), "outside the vocabulary") {
		t.Errorf("out-of-range token: %v", err)
	}
	if err := m.Forward(ctx, st, []int32{1}, make([]float32, 3)); err == nil {
		t.Error("short logits buffer accepted")
	}
	st.Free()
	if err := m.Forward(ctx, st, []int32{1}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("freed state: %v", err)
	}
}

func TestStopMatcher(t *testing.T) {
	tests := []struct {
		stops  []string
		pieces []string
		want   string
		hit    bool
	}{
		{[]string{"\n\n"}, []string{"Hello", "\n", "\n", "more"}, "Hello", true},
		{[]string{"\n\n"}, []string{"Hello\n", "world"}, "Hello\nworld", false},
		{[]string{"User:", "\n\n"}, []string{"ok Us", "er: x"}, "ok ", true},
		{nil, []string{"a", "b"}, "ab", false},
	}
	for _, tc := range tests {
		m := newStopMatcher(tc.stops)
		var out strings.Builder
		hit := false
		for _, p := range tc.pieces {
			s, h := m.add(p)
			out.WriteString(s)
			if h {
				hit = true
				break
			}
		}
		out.WriteString(m.flush(hit))
		if out.String() != tc.want || hit != tc.hit {
			t.Errorf("stops %q pieces %q: got %q hit=%v, want %q hit=%v", tc.stops, tc.pieces, out.String(), hit, tc.want, tc.hit)
		}
	}
}

func TestChatPrompt(t *testing.T) {
	tests := []struct {
		msgs []Message
		want string
	}{
		{[]Message{{"user", "hi"}}, "User: hi\n\nAssistant:"},
		{[]Message{{"system", "Be brief."}, {"user", "a\n\n\nb "}, {"assistant", "c"}, {"user", "d"}},
			"System: Be brief.\n\nUser: a\nb\n\nAssistant: c\n\nUser: d\n\nAssistant:"},
		{[]Message{{"user", "q"}, {"assistant", "partial"}}, "User: q\n\nAssistant: partial"},
	}
	for _, tc := range tests {
		if got := ChatPrompt(tc.msgs); got != tc.want {
			t.Errorf("ChatPrompt(%v) = %q, want %q", tc.msgs, got, tc.want)
		}
	}
}

// TestGenerateTextMatchesTokens checks that the streamed text is exactly the
// decoded fed tokens when no stop string matches, held-back text included.
func TestGenerateTextMatchesTokens(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	for _, maxTokens := range []int{1, 7, 30} {
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		opts := GenerateOptions{MaxTokens: maxTokens, Stop: []string{"\n\n\n\n\n\n", "zzzzzzzz"}, Sample: sample.Params{Temperature: 1, Seed: uint64(maxTokens)}}
		st, fed, err := s.GenerateTokens(context.Background(), s.Tokenizer().Encode("Q:"), opts, func(p Piece) bool {
			b.WriteString(p.Text)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.StopReason == StopSequence {
			continue
		}
		want := strings.ToValidUTF8(string(s.Tokenizer().Decode(fed)), "\uFFFD")
		if b.String() != want {
			t.Errorf("max %d (%s): streamed %q, tokens decode to %q", maxTokens, st.StopReason, b.String(), want)
		}
	}
}

func TestPrefillEmbeds(t *testing.T) {
	m := randomModel(t)
	s := newSession(t, m)
	rows := make([]float32, 3*m.Config().Width)
	for i := range rows {
		rows[i] = float32(i%7) / 7
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before, _ := s.State()
	defer before.Free()
	if err := s.PrefillEmbeds(ctx, rows); err == nil {
		t.Fatal("cancelled PrefillEmbeds succeeded")
	}
	after, _ := s.State()
	defer after.Free()
	fb, _ := before.Floats()
	fa, _ := after.Floats()
	if d, _ := maxDiff(fa, fb); d != 0 {
		t.Error("a cancelled PrefillEmbeds changed the state")
	}
	if err := s.PrefillEmbeds(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PrefillEmbeds(context.Background(), rows[:5]); err == nil {
		t.Error("a partial row was accepted")
	}
	got, _ := generate(t, s, context.Background(), "", GenerateOptions{MaxTokens: 3})
	if got == "" {
		t.Error("nothing generated after the embeddings")
	}
}
