// Package tokenizer implements the RWKV World tokenizer: greedy longest-match
// encoding of UTF-8 bytes over the rwkv_vocab_v20230424 vocabulary, decoding
// back to bytes, and a streaming Decoder that emits only whole UTF-8
// characters.
//
// Encoding works on bytes: the text is not normalized and no special tokens
// are added. At each position the longest vocabulary entry that matches the
// following bytes is taken. Every single byte is a token (id = byte + 1), so
// any input encodes, and Decode(Encode(x)) == x for every x.
//
// Id 0 (EndOfText) ends a document; it and ids past the vocabulary (65530 to
// 65535 in the World model) decode to nothing.
//
// A Tokenizer is immutable once built and safe for concurrent use.
package tokenizer

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
)

// EndOfText is the id that ends a document (<|endoftext|>). It has no bytes.
const EndOfText int32 = 0

// A Tokenizer maps text to token ids and back. Build one with Parse or World.
type Tokenizer struct {
	// data holds every token's bytes back to back; id's bytes are
	// data[off[id]:off[id+1]]. len(off) == vocabSize+1.
	data []byte
	off  []uint32

	vocabSize int

	trie trie // every token's bytes, for longest-match lookups
}

// build makes a Tokenizer from parsed vocabulary entries whose bytes are in
// buf.
func build(entries []entry, buf []byte) (*Tokenizer, error) {
	tok := func(e entry) []byte { return buf[e.off : e.off+e.n] }

	// Entries in id order (usually already so), to find duplicate ids and
	// lay out the token bytes.
	byID := entries
	byIDCmp := func(a, b entry) int { return cmp.Compare(a.id, b.id) }
	if !slices.IsSortedFunc(byID, byIDCmp) {
		byID = slices.Clone(entries)
		slices.SortStableFunc(byID, byIDCmp)
	}
	for i := 1; i < len(byID); i++ {
		if byID[i].id == byID[i-1].id {
			return nil, fmt.Errorf("tokenizer: line %d: duplicate id %d (first on line %d)", byID[i].line, byID[i].id, byID[i-1].line)
		}
	}
	t := &Tokenizer{vocabSize: int(byID[len(byID)-1].id) + 1}
	t.data = make([]byte, 0, len(buf))
	t.off = make([]uint32, t.vocabSize+1)
	next := 0
	for _, e := range byID {
		for ; next <= int(e.id); next++ {
			t.off[next] = uint32(len(t.data))
		}
		t.data = append(t.data, tok(e)...)
	}
	for ; next <= t.vocabSize; next++ {
		t.off[next] = uint32(len(t.data))
	}

	// Entries in byte order, to find duplicate tokens and build the trie.
	byTok := sortByBytes(entries, buf)
	for i := 1; i < len(byTok); i++ {
		if bytes.Equal(tok(byTok[i]), tok(byTok[i-1])) {
			return nil, fmt.Errorf("tokenizer: line %d: id %d has the same bytes %q as id %d on line %d",
				byTok[i].line, byTok[i].id, tok(byTok[i]), byTok[i-1].id, byTok[i-1].line)
		}
	}
	t.trie = buildTrie(byTok, buf)
	for c := range 256 {
		if k := t.trie.child(trieRoot, byte(c)); k < 0 || t.trie.cells[k].id == 0 {
			return nil, fmt.Errorf("tokenizer: vocabulary has no token for the single byte 0x%02x (every byte needs one)", c)
		}
	}
	return t, nil
}

// Encode returns the token ids of text's UTF-8 bytes.
func (t *Tokenizer) Encode(text string) []int32 {
	return encode(t, text)
}

// EncodeBytes returns the token ids of b, which need not be valid UTF-8.
func (t *Tokenizer) EncodeBytes(b []byte) []int32 {
	return encode(t, b)
}

// encode returns the ids of s. It is generic so that neither Encode nor
// EncodeBytes copies its input.
func encode[S string | []byte](t *Tokenizer, s S) []int32 {
	if len(s) == 0 {
		return []int32{}
	}
	dst := make([]int32, 0, len(s)/3+1)
	cells := t.trie.cells
	for i := 0; i < len(s); {
		cur := int32(trieRoot)
		best, end := int32(0), i+1
		for j := i; j < len(s); j++ {
			next := cells[cur].base + int32(s[j])
			if uint(next) >= uint(len(cells)) || cells[next].check != cur {
				break
			}
			cur = next
			if id := cells[cur].id; id != 0 {
				best, end = id, j+1
			}
		}
		// best != 0 always: build checked that every byte is a token.
		dst = append(dst, best)
		i = end
	}
	return dst
}

// Decode returns the bytes of ids, concatenated. Ids without bytes
// (EndOfText, ids past the vocabulary, negative ids) add nothing. The result
// may be invalid UTF-8, for example when ids end inside a character.
func (t *Tokenizer) Decode(ids []int32) []byte {
	n := 0
	for _, id := range ids {
		n += len(t.token(id))
	}
	out := make([]byte, 0, n)
	for _, id := range ids {
		out = append(out, t.token(id)...)
	}
	return out
}

// Token returns a copy of the bytes of id, or nil if id has none.
func (t *Tokenizer) Token(id int32) []byte {
	b := t.token(id)
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

// token returns the bytes of id without copying; callers must not modify them.
func (t *Tokenizer) token(id int32) []byte {
	if id <= 0 || int(id) >= t.vocabSize {
		return nil
	}
	return t.data[t.off[id]:t.off[id+1]]
}

// VocabSize returns the number of ids the model uses: 65536 for World, and
// the largest id plus one for a vocabulary read with Parse. Valid ids are
// 0..VocabSize()-1; some of them may have no bytes.
func (t *Tokenizer) VocabSize() int {
	return t.vocabSize
}

// sortByBytes returns entries sorted by their bytes in buf, equal ones (which
// are errors) by line.
func sortByBytes(entries []entry, buf []byte) []entry {
	tok := func(e entry) []byte { return buf[e.off : e.off+e.n] }
	type sortKey struct {
		prefix uint64 // first 8 bytes, big-endian, zero-padded
		e      entry
	}
	keys := make([]sortKey, len(entries))
	for i, e := range entries {
		var p [8]byte
		copy(p[:], tok(e))
		keys[i] = sortKey{binary.BigEndian.Uint64(p[:]), e}
	}
	// LSD radix sort on the prefix, a byte per pass. Comparing zero-padded
	// prefixes agrees with comparing the bytes wherever the prefixes differ.
	tmp := make([]sortKey, len(keys))
	for shift := 0; shift < 64; shift += 8 {
		var count [256]int
		for _, k := range keys {
			count[byte(k.prefix>>shift)]++
		}
		if count[byte(keys[0].prefix>>shift)] == len(keys) {
			continue // every key has the same byte here
		}
		pos := 0
		for d, n := range count {
			count[d] = pos
			pos += n
		}
		for _, k := range keys {
			d := byte(k.prefix >> shift)
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	// Keys with equal prefixes (long tokens sharing their first 8 bytes, or
	// a short token and one that extends it with zero bytes) are sorted by
	// all their bytes.
	for i := 0; i < len(keys); {
		j := i + 1
		for j < len(keys) && keys[j].prefix == keys[i].prefix {
			j++
		}
		if j-i > 1 {
			slices.SortFunc(keys[i:j], func(a, b sortKey) int {
				if c := bytes.Compare(tok(a.e), tok(b.e)); c != 0 {
					return c
				}
				return cmp.Compare(a.e.line, b.e.line)
			})
		}
		i = j
	}
	out := make([]entry, len(keys))
	for i, k := range keys {
		out[i] = k.e
	}
	return out
}
