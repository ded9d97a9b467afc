package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// naiveEncode is a slow, obviously correct greedy longest-match encoder: at
// each position it tries every length from the longest down.
func naiveEncode(vocab map[string]int32, maxLen int, s string) []int32 {
	ids := []int32{}
	for i := 0; i < len(s); {
		for n := min(maxLen, len(s)-i); n >= 1; n-- {
			if id, ok := vocab[s[i:i+n]]; ok {
				ids = append(ids, id)
				i += n
				break
			}
		}
	}
	return ids
}

// bytesLiteral writes b as a Python bytes literal.
func bytesLiteral(b string) string {
	var sb strings.Builder
	sb.WriteString("b'")
	for i := 0; i < len(b); i++ {
		fmt.Fprintf(&sb, `\x%02x`, b[i])
	}
	sb.WriteString("'")
	return sb.String()
}

// TestEncodeMatchesNaive builds random vocabularies with many shared
// prefixes and checks the trie against naiveEncode.
func TestEncodeMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 5 {
		alphabet := "ab\x00\xff\xe4"[:1+round]
		vocab := map[string]int32{}
		var lines []string
		add := func(s string) {
			if _, dup := vocab[s]; dup {
				return
			}
			id := int32(len(vocab) + 1)
			vocab[s] = id
			lines = append(lines, fmt.Sprintf("%d %s %d", id, bytesLiteral(s), len(s)))
		}
		for c := range 256 {
			add(string([]byte{byte(c)}))
		}
		maxLen := 1
		for range 3000 {
			n := 2 + rng.IntN(14)
			var sb strings.Builder
			for range n {
				if rng.IntN(8) == 0 {
					sb.WriteByte(byte(rng.IntN(256)))
				} else {
					sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
				}
			}
			add(sb.String())
			maxLen = max(maxLen, n)
		}
		rng.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
		tk, err := Parse(strings.NewReader(strings.Join(lines, "\n")))
		if err != nil {
			t.Fatal(err)
		}
		for range 300 {
			var sb strings.Builder
			for range rng.IntN(200) {
				if rng.IntN(10) == 0 {
					sb.WriteByte(byte(rng.IntN(256)))
				} else {
					sb.WriteByte(alphabet[rng.IntN(len(alphabet))])
				}
			}
			s := sb.String()
			got, want := tk.Encode(s), naiveEncode(vocab, maxLen, s)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d: Encode(%q) = %v, want %v", round, s, got, want)
			}
		}
	}
}

// TestWorldMatchesNaive checks the World tokenizer against naiveEncode on
// the benchmark text.
func TestWorldMatchesNaive(t *testing.T) {
	tk := mustWorld(t)
	vocab := map[string]int32{}
	maxLen := 0
	for id := int32(1); id < int32(tk.VocabSize()); id++ {
		if b := tk.Token(id); b != nil {
			vocab[string(b)] = id
			maxLen = max(maxLen, len(b))
		}
	}
	text := mixedText(64 << 10)
	if got, want := tk.Encode(text), naiveEncode(vocab, maxLen, text); !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("Encode differs from naiveEncode at token %d: %d, want %d", i, got[i], want[i])
			}
		}
		t.Fatalf("Encode gives %d tokens, naiveEncode %d", len(got), len(want))
	}
}
