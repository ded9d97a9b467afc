// Package assets holds the data files that ship inside the Goose binary:
// the RWKV World tokenizer vocabulary and its license notice.
//
// The files are embedded with go:embed, so a built program needs nothing
// beside itself to tokenize text.
package assets

import _ "embed" // for go:embed

//go:embed rwkv_vocab_v20230424.txt
var worldVocab string

//go:embed NOTICE.md
var notice string

// WorldVocab returns the RWKV World tokenizer vocabulary
// (rwkv_vocab_v20230424.txt, 65,529 lines of "<id> <python literal> <length>").
// Each call returns a fresh copy, so the caller may keep or modify it.
// Package core/tokenizer parses it; see tokenizer.World.
func WorldVocab() []byte {
	return []byte(worldVocab)
}

// Notice returns the text of NOTICE.md: where the World vocabulary comes from
// and its license (Apache-2.0). Programs that ship the vocabulary ship this
// notice with it.
func Notice() string {
	return notice
}
