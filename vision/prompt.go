package vision

import (
	"context"
	"fmt"
	"slices"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
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

// promptText returns the prompt's tokens before and after n image rows
// of one question: the padding and "User: ", then "\n" + question +
// "\n\n" + "Assistant:" (Prompt with one user turn holding the rows as one
// image).
func promptText(s *core.Session, n int, question string) (head, tail []int32) {
	pieces, _ := Prompt(s.Tokenizer(), []Turn{{Role: "User", Text: question, Images: 1}}, n)
	for i, p := range pieces {
		if p.Tokens == nil {
			for _, q := range pieces[:i] {
				head = append(head, q.Tokens...)
			}
			for _, q := range pieces[i+1:] {
				tail = append(tail, q.Tokens...)
			}
			break
		}
	}
	return head, tail
}

// Turn is one message of a conversation for Prompt.
type Turn struct {
	Role   string // the speaker as the World format names it: "User", "Assistant", "System"
	Text   string
	Images int // images at the start of the message (user messages)
}

// Piece is a run of a prompt's tokens, or (Tokens nil) the place of the
// next image's embedding rows.
type Piece struct {
	Tokens []int32
}

// Prompt renders a conversation with images in VisualRWKV-7's format and
// tokenizes it piece by piece, as the reference does: a message with
// images is "Role: " + its images' rows + "\n" + text + "\n\n", others
// "Role:" + " text\n\n"; then "Assistant:". The whole is left-padded with
// "\n\n" tokens (261) to a multiple of 16 rows, as the reference pads its
// sequence. rowsPerImage is the number of embedding rows one image
// becomes; rows is the prompt's length in rows, images and padding
// included.
func Prompt(tok *tokenizer.Tokenizer, turns []Turn, rowsPerImage int) (pieces []Piece, rows int) {
	add := func(ids []int32) {
		if len(ids) > 0 {
			pieces = append(pieces, Piece{Tokens: ids})
			rows += len(ids)
		}
	}
	for _, t := range turns {
		text := core.CleanTurn(t.Text)
		if t.Images == 0 {
			add(tok.Encode(t.Role + ":"))
			add(tok.Encode(" " + text + "\n\n"))
			continue
		}
		add(tok.Encode(t.Role + ": "))
		for range t.Images {
			pieces = append(pieces, Piece{})
			rows += rowsPerImage
		}
		add(tok.Encode("\n" + text + "\n\n"))
	}
	add(tok.Encode("Assistant:"))
	if n := (chunkLen - rows%chunkLen) % chunkLen; n > 0 {
		pieces = append([]Piece{{Tokens: slices.Repeat([]int32{padToken}, n)}}, pieces...)
		rows += n
	}
	return pieces, rows
}
