package vision

import (
	"context"
	"errors"
	"image"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// TestAskFromPNG answers the fixture's question about mm.png end to end:
// decode, preprocess, three towers, projector, prompt with the image
// spliced in, and the language model's first reply token, which must be
// the reference's argmax.
func TestAskFromPNG(t *testing.T) { checkAsk(t, visiontest.CPU(t)) }

// TestAskFromPNGCUDA is TestAskFromPNG with the towers, the projector and
// the language model on the GPU; it skips, saying why, without one.
func TestAskFromPNGCUDA(t *testing.T) { checkAsk(t, visiontest.CUDA(t)) }

func checkAsk(t *testing.T, be kernels.Backend) {
	var fx struct {
		Question  string  `json:"question"`
		PromptIDs []int32 `json:"prompt_ids"`
		Argmax    int32   `json:"argmax_last"`
	}
	visiontest.JSON(t, &fx)
	f, cfg := fixture(t)
	vm, err := LoadEncoder(f, be, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	lm, err := core.Load(core.SubSource(f, "rwkv."), core.LoadOptions{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	defer lm.Close()
	tok, err := tokenizer.World()
	if err != nil {
		t.Fatal(err)
	}
	s, err := core.NewSession(lm, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	png, err := os.Open(visiontest.Path(t, "mm.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer png.Close()
	img, err := preprocess.Decode(png)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := vm.Embed(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != vm.Tokens()*lm.Config().Width {
		t.Fatalf("%d embedding floats, want %d tokens × %d", len(rows), vm.Tokens(), lm.Config().Width)
	}
	// The whole encoder (towers side by side where the backend has
	// queues) gives the reference's projected rows.
	within(t, "encoded rows", rows, visiontest.NPY(t, "mm.projected.npy").Data)

	// The text pieces tokenize as the reference prompt does.
	head := tok.Encode("User: ")
	tail := append(tok.Encode("\n"+fx.Question+"\n\n"), tok.Encode("Assistant:")...)
	want := append(append(head, fx.PromptIDs[len(head):len(head)+vm.Tokens()]...), tail...)
	for i := range fx.PromptIDs {
		if i >= len(want) || want[i] != fx.PromptIDs[i] {
			t.Fatalf("prompt ids differ from the reference at %d: %v vs %v", i, want, fx.PromptIDs)
		}
	}

	ctx := context.Background()
	if err := Prefill(ctx, s, rows, fx.Question); err != nil {
		t.Fatal(err)
	}
	var reply strings.Builder
	st, err := s.Generate(ctx, "", core.GenerateOptions{MaxTokens: 1}, func(p core.Piece) bool {
		reply.WriteString(p.Text)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := reply.String(), string(tok.Token(fx.Argmax)); got != want || st.Tokens != 1 {
		t.Errorf("first reply token %q (%d tokens), reference %q (id %d)", got, st.Tokens, want, fx.Argmax)
	}
	if err := Prefill(ctx, s, rows[:5], fx.Question); err == nil {
		t.Error("a partial embedding row was accepted")
	}

	// Ask (the prompt in one pass, the rows staying on the backend) and
	// AskImages (one pass per image, with the text before or after it)
	// leave the state Prefill does with the rows on the host.
	m := &Model{lm: lm, enc: vm}
	state := func(feed func() error) []float32 {
		t.Helper()
		if err := s.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := feed(); err != nil {
			t.Fatal(err)
		}
		st, err := s.State()
		if err != nil {
			t.Fatal(err)
		}
		defer st.Free()
		v, err := st.Floats()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	same := func(what string, got, want []float32) {
		t.Helper()
		var worst, scale float64
		for i := range want {
			worst = max(worst, math.Abs(float64(got[i]-want[i])))
			scale = max(scale, math.Abs(float64(want[i])))
		}
		if !(worst <= 1e-4*scale) {
			t.Errorf("%s: state max |Δ| = %.3g (largest value %.3g)", what, worst, scale)
		}
	}
	one := state(func() error { return Prefill(ctx, s, rows, fx.Question) })
	same("Ask", state(func() error { return m.Ask(ctx, s, img, fx.Question, nil) }), one)
	two := state(func() error { return Prefill(ctx, s, append(slices.Clone(rows), rows...), fx.Question) })
	same("AskImages", state(func() error { return m.AskImages(ctx, s, []image.Image{img, img}, fx.Question) }), two)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := vm.Embed(cancelled, img); !errors.Is(err, context.Canceled) {
		t.Errorf("Embed with a cancelled context: %v", err)
	}
}

// TestPromptConversation: a conversation with images renders as the
// reference's format piece by piece — text-only messages as "Role:" and
// " text\n\n", a message with images as "Role: ", the images' rows,
// "\n" + text + "\n\n" — then "Assistant:", left-padded to 16 rows.
func TestPromptConversation(t *testing.T) {
	tok, err := tokenizer.World()
	if err != nil {
		t.Fatal(err)
	}
	const rowsPerImage = 5
	turns := []Turn{
		{Role: "System", Text: "Be brief."},
		{Role: "User", Text: "Compare\n\n\nthese.", Images: 2},
		{Role: "Assistant", Text: "Both are geese."},
		{Role: "User", Text: "And now?"},
	}
	pieces, rows := Prompt(tok, turns, rowsPerImage)
	want := [][]int32{
		tok.Encode("System:"), tok.Encode(" Be brief.\n\n"),
		tok.Encode("User: "), nil, nil, tok.Encode("\nCompare\nthese.\n\n"),
		tok.Encode("Assistant:"), tok.Encode(" Both are geese.\n\n"),
		tok.Encode("User:"), tok.Encode(" And now?\n\n"),
		tok.Encode("Assistant:"),
	}
	n := 2 * rowsPerImage
	for _, w := range want {
		n += len(w)
	}
	pad := (16 - n%16) % 16
	if pad > 0 {
		want = append([][]int32{slices.Repeat([]int32{261}, pad)}, want...)
	}
	if rows != n+pad || rows%16 != 0 {
		t.Errorf("rows = %d, want %d (a multiple of 16)", rows, n+pad)
	}
	if len(pieces) != len(want) {
		t.Fatalf("%d pieces, want %d", len(pieces), len(want))
	}
	for i, p := range pieces {
		if !slices.Equal(p.Tokens, want[i]) {
			t.Errorf("piece %d = %v, want %v", i, p.Tokens, want[i])
		}
	}
}
