package tokenizer

import (
	"fmt"
	"sync"

	"github.com/goose-rwkv/goose/assets"
)

// WorldVocabSize is the number of ids of the RWKV World models: ids 1..65529
// are vocabulary entries, 0 is EndOfText, and 65530..65535 have no bytes.
const WorldVocabSize = 65536

// world parses the embedded vocabulary once. The Tokenizer it returns is
// never modified, so sharing it is safe.
var world = sync.OnceValues(func() (*Tokenizer, error) {
	t, err := parse(assets.WorldVocab())
	if err != nil {
		return nil, fmt.Errorf("world vocabulary (assets/rwkv_vocab_v20230424.txt): %w", err)
	}
	if t.vocabSize > WorldVocabSize {
		return nil, fmt.Errorf("world vocabulary: %d ids, want at most %d", t.vocabSize, WorldVocabSize)
	}
	t.off = growOffsets(t.off, WorldVocabSize)
	t.vocabSize = WorldVocabSize
	return t, nil
})

// World returns the RWKV World tokenizer (rwkv_vocab_v20230424, embedded in
// package assets). It is parsed on the first call and shared afterwards.
// VocabSize is 65536.
func World() (*Tokenizer, error) {
	return world()
}

// growOffsets extends an offset table to cover ids up to size-1; the new ids
// have no bytes.
func growOffsets(off []uint32, size int) []uint32 {
	end := off[len(off)-1]
	for len(off) < size+1 {
		off = append(off, end)
	}
	return off
}
