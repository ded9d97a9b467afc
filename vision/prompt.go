package vision

import (
	"context"
	"fmt"
	"slices"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
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
// s.Generate(ctx, "", …), stopping at "\n\n". rows holds the embedding
// rows on the host; PrefillTensor takes them on the backend.
func Prefill(ctx context.Context, s *core.Session, rows []float32, question string) error {
	C := s.Model().Config().Width
	if len(rows) == 0 || len(rows)%C != 0 {
		return fmt.Errorf("vision: %d floats are not whole embedding rows of width %d", len(rows), C)
	}
	head, tail := promptText(s, len(rows)/C, question)
	if err := s.PrefillTokens(ctx, head); err != nil {
		return err
	}
	if err := s.PrefillEmbeds(ctx, rows); err != nil {
		return err
	}
	return s.PrefillTokens(ctx, tail)
}

// PrefillTensor is Prefill with the embedding rows in an F32 [n, Width]
// tensor on the session's backend. The whole prompt, text and image rows,
// runs as one sequence-mode pass (core.Session.PrefillSegments).
func PrefillTensor(ctx context.Context, s *core.Session, rows kernels.Tensor, question string) error {
	C := s.Model().Config().Width
	if rows.Rows == 0 || rows.Cols != C {
		return fmt.Errorf("vision: embedding rows %v, want rows of width %d", rows, C)
	}
	head, tail := promptText(s, rows.Rows, question)
	return s.PrefillSegments(ctx, core.Segment{Tokens: head}, core.Segment{Rows: rows}, core.Segment{Tokens: tail})
}

// promptText returns the prompt's tokens before and after n image rows:
// the padding and "User: ", then "\n" + question + "\n\n" + "Assistant:".
func promptText(s *core.Session, n int, question string) (head, tail []int32) {
	tok := s.Tokenizer()
	head = tok.Encode("User: ")
	tail = append(tok.Encode("\n"+core.CleanTurn(question)+"\n\n"), tok.Encode("Assistant:")...)
	total := len(head) + n + len(tail)
	pad := slices.Repeat([]int32{padToken}, (chunkLen-total%chunkLen)%chunkLen)
	return append(pad, head...), tail
}
