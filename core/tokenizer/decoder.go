package tokenizer

import "unicode/utf8"

// A Decoder turns a stream of token ids into text without ever splitting a
// UTF-8 character, for printing tokens as a model generates them. A token
// may end inside a character (🙂 is two World tokens, F0 9F and 99 82); the
// Decoder holds such an incomplete prefix, at most 3 bytes, until the bytes
// that complete it arrive.
//
// Bytes that can never become valid UTF-8 are replaced by U+FFFD as soon as
// that is certain, one U+FFFD for each run of them, so the concatenated
// output of Write calls and a final Flush is exactly
// strings.ToValidUTF8(string(t.Decode(ids)), "\uFFFD").
//
// A Decoder is not safe for concurrent use. The zero Decoder is not usable;
// make one with Tokenizer.NewDecoder.
type Decoder struct {
	t       *Tokenizer
	pending [utf8.UTFMax - 1]byte // incomplete but possibly valid prefix
	n       int                   // bytes in pending
	bad     bool                  // the last output was U+FFFD for invalid bytes
	in, out []byte                // scratch
}

// NewDecoder returns a streaming Decoder over t's tokens.
func (t *Tokenizer) NewDecoder() *Decoder {
	return &Decoder{t: t}
}

// Write adds the bytes of token id and returns the text they complete, which
// may be "". Ids without bytes (EndOfText, ids past the vocabulary) add
// nothing.
func (d *Decoder) Write(id int32) string {
	tok := d.t.token(id)
	if len(tok) == 0 {
		return ""
	}
	if d.n == 0 && utf8.Valid(tok) {
		d.bad = false
		return string(tok)
	}
	d.in = append(append(d.in[:0], d.pending[:d.n]...), tok...)
	return d.decode(d.in, false)
}

// Flush returns the pending bytes, an incomplete character, as U+FFFD (or ""
// if none is pending), and resets the Decoder so that the next Write starts
// a new stream.
func (d *Decoder) Flush() string {
	d.in = append(d.in[:0], d.pending[:d.n]...)
	s := d.decode(d.in, true)
	d.n = 0
	d.bad = false
	return s
}

// decode converts in to valid UTF-8. Unless final, it stops before an
// incomplete but possibly valid character at the end of in and keeps it
// pending.
func (d *Decoder) decode(in []byte, final bool) string {
	out := d.out[:0]
	i := 0
	for i < len(in) {
		c := in[i]
		if c < utf8.RuneSelf {
			out = append(out, c)
			d.bad = false
			i++
			continue
		}
		if !final && !utf8.FullRune(in[i:]) {
			break // fewer than 4 bytes left, and they may still form a character
		}
		r, size := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && size == 1 {
			if !d.bad {
				out = append(out, "\uFFFD"...)
				d.bad = true
			}
			i++
			continue
		}
		out = append(out, in[i:i+size]...)
		d.bad = false
		i += size
	}
	d.n = copy(d.pending[:], in[i:])
	d.out = out
	return string(out)
}
