package vision

import (
	"context"
	"fmt"
	"slices"

	"github.com/goose-rwkv/goose/core"
)

// chunkLen and padToken reproduce the reference's sequence-mode padding:
// it left-pads the whole prompt with "\n\n" (token 261) to a multiple of 16
// tokens, so an RNN that prepends the same pad starts from the same state.
const (
	chunkLen = 16
	padToken = 261
)

// Prefill feeds an image question into a session in the VisualRWKV-7
// format: "User: " + the image's embedding rows + "\n" + question + "\n\n"
// + "Assistant:", each piece tokenized on its own as the reference does, the
// whole left-padded to a multiple of 16 tokens. The reply follows with
// s.Generate(ctx, "", …), stopping at "\n\n".
func Prefill(ctx context.Context, s *core.Session, rows []float32, question string) error {
	C := s.Model().Config().Width
	if len(rows) == 0 || len(rows)%C != 0 {
		return fmt.Errorf("vision: %d floats are not whole embedding rows of width %d", len(rows), C)
	}
	tok := s.Tokenizer()
	head := tok.Encode("User: ")
	tail := append(tok.Encode("\n"+core.CleanTurn(question)+"\n\n"), tok.Encode("Assistant:")...)
	n := len(head) + len(rows)/C + len(tail)
	pad := slices.Repeat([]int32{padToken}, (chunkLen-n%chunkLen)%chunkLen)
	if err := s.PrefillTokens(ctx, append(pad, head...)); err != nil {
		return err
	}
	if err := s.PrefillEmbeds(ctx, rows); err != nil {
		return err
	}
	return s.PrefillTokens(ctx, tail)
}
