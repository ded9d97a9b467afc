package tokenizer

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func mustWorld(t testing.TB) *Tokenizer {
	t.Helper()
	tk, err := World()
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

type worldCase struct {
	Text string  `json:"text"`
	IDs  []int32 `json:"ids"`
}

func loadWorldCases(t testing.TB) []worldCase {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "tokenizer", "world_cases.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vocab string      `json:"vocab"`
		Cases []worldCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(f.Cases) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return f.Cases
}

// referenceVectors are from rwkv7-core.md §5.3 (official TRIE_TOKENIZER).
var referenceVectors = []worldCase{
	{"Today is a beautiful day. 今天是美好的一天。", []int32{33520, 4600, 332, 59219, 21509, 47, 33, 10381, 11639, 13091, 15597, 11685, 14734, 10250, 11639, 10080}},
	{"Hello world", []int32{33155, 40213}},
	{"Hello, world!", []int32{33155, 45, 40213, 34}},
	{"The Eiffel tower is in the city of", []int32{6699, 304, 25740, 109, 39990, 4600, 4596, 22590, 30449, 4706}},
	{"User: hi\n\nAssistant:", []int32{24281, 59, 4571, 261, 5585, 41693, 59}},
	{"\n\n", []int32{261}},
	{"你好，世界", []int32{10464, 11685, 19137, 10267, 14610}},
	{"1234567", []int32{632, 654, 676, 56}},
	{" 123", []int32{3485, 52}},
	{"Élan vital", []int32{2471, 8056, 40131}},
	{"🙂", []int32{3319, 2417}},
	{"\x00", []int32{1}},
	{"   ", []int32{3340}},
	{"\t\tx", []int32{257, 121}},
	{"a\r\nb", []int32{98, 263, 99}},
	{"Hello, world! こんにちは、世界！", []int32{33155, 45, 40213, 34, 33, 10115, 10165, 10136, 10127, 10139, 10079, 10267, 14610, 19126}},
	{"User: simulate SpaceX mars landing using python\n\nAssistant: <think", []int32{24281, 59, 57236, 44898, 31377, 52092, 40085, 46966, 261, 5585, 41693, 59, 295, 35762}},
	{"<think>\n</think>", []int32{61, 35762, 63, 11, 754, 35762, 63}},
}

func TestWorldEncodeDecode(t *testing.T) {
	tk := mustWorld(t)
	cases := append(loadWorldCases(t), referenceVectors...)
	for _, c := range cases {
		t.Run(c.Text, func(t *testing.T) {
			if got := tk.Encode(c.Text); !slices.Equal(got, c.IDs) {
				t.Errorf("Encode(%q) = %v, want %v", c.Text, got, c.IDs)
			}
			if got := tk.EncodeBytes([]byte(c.Text)); !slices.Equal(got, c.IDs) {
				t.Errorf("EncodeBytes(%q) = %v, want %v", c.Text, got, c.IDs)
			}
			if got := tk.Decode(c.IDs); string(got) != c.Text {
				t.Errorf("Decode(%v) = %q, want %q", c.IDs, got, c.Text)
			}
			if got := streamDecode(tk, c.IDs); got != c.Text {
				t.Errorf("Decoder over %v = %q, want %q", c.IDs, got, c.Text)
			}
		})
	}
}

func TestWorldFacts(t *testing.T) {
	tk := mustWorld(t)
	if got := tk.VocabSize(); got != 65536 {
		t.Errorf("VocabSize() = %d, want 65536", got)
	}
	tk2 := mustWorld(t)
	if tk2 != tk {
		t.Error("World() returned a different Tokenizer on the second call")
	}
	for _, c := range []struct {
		id   int32
		want string
	}{
		{1, "\x00"},
		{11, "\n"},
		{33, " "},
		{129, "\x80"},
		{256, "\xff"},
		{257, "\t\t"},
		{261, "\n\n"},
		{2423, "\u0080"}, // '\x80' in a str literal: U+0080, bytes C2 80
		{65529, strings.Repeat(" ", 128)},
	} {
		if got := string(tk.Token(c.id)); got != c.want {
			t.Errorf("Token(%d) = %q, want %q", c.id, got, c.want)
		}
	}
	for _, id := range []int32{EndOfText, -1, 65530, 65531, 65535, 65536, 1 << 30} {
		if got := tk.Token(id); got != nil {
			t.Errorf("Token(%d) = %q, want nil", id, got)
		}
		if got := tk.Decode([]int32{id}); len(got) != 0 {
			t.Errorf("Decode([%d]) = %q, want empty", id, got)
		}
	}
	// Token returns a copy.
	b := tk.Token(98)
	b[0] = 'z'
	if got := string(tk.Token(98)); got != "a" {
		t.Errorf("after modifying a Token result, Token(98) = %q", got)
	}
	// The \uHHHH entries of the file.
	for _, s := range []string{"\u3000", "\ufeff", "\u200b"} {
		if ids := tk.Encode(s); len(ids) != 1 {
			t.Errorf("Encode(%q) = %v, want one token", s, ids)
		}
	}
}

func TestWorldSingleBytes(t *testing.T) {
	tk := mustWorld(t)
	for c := range 256 {
		want := []int32{int32(c) + 1}
		if got := tk.EncodeBytes([]byte{byte(c)}); !slices.Equal(got, want) {
			t.Errorf("EncodeBytes(%#02x) = %v, want %v", c, got, want)
		}
		if got := tk.Token(int32(c) + 1); !bytes.Equal(got, []byte{byte(c)}) {
			t.Errorf("Token(%d) = %q, want %q", c+1, got, []byte{byte(c)})
		}
	}
}

// TestWorldEveryToken checks every vocabulary entry: its bytes encode to ids
// that decode back, and to a single token (its own id) because the file has
// no duplicates and the whole entry is the longest match.
func TestWorldEveryToken(t *testing.T) {
	tk := mustWorld(t)
	n := 0
	for id := int32(1); id < int32(tk.VocabSize()); id++ {
		b := tk.Token(id)
		if b == nil {
			if id <= 65529 {
				t.Errorf("Token(%d) = nil", id)
			}
			continue
		}
		n++
		ids := tk.EncodeBytes(b)
		if got := tk.Decode(ids); !bytes.Equal(got, b) {
			t.Errorf("id %d: Decode(EncodeBytes(%q)) = %q", id, b, got)
		}
		if len(ids) != 1 || ids[0] != id {
			t.Errorf("id %d: EncodeBytes(%q) = %v, want [%d]", id, b, ids, id)
		}
	}
	if n != 65529 {
		t.Errorf("%d ids have bytes, want 65529", n)
	}
}

func streamDecode(tk *Tokenizer, ids []int32) string {
	d := tk.NewDecoder()
	var sb strings.Builder
	for _, id := range ids {
		sb.WriteString(d.Write(id))
	}
	sb.WriteString(d.Flush())
	return sb.String()
}

func TestDecoder(t *testing.T) {
	tk := mustWorld(t)
	type step struct {
		id   int32
		want string
	}
	tests := []struct {
		name  string
		steps []step
		flush string
	}{
		{"emoji split over two tokens", []step{{3319, ""}, {2417, "🙂"}}, ""},
		{"text around emoji", []step{{34295, "emoji"}, {32845, " 🙂"}, {3319, ""}, {155, ""}, {129, "🚀"}, {30666, " done"}}, ""},
		{"end of text and empty ids", []step{{98, "a"}, {EndOfText, ""}, {65535, ""}, {99, "b"}}, ""},
		{"incomplete at end", []step{{3319, ""}}, "\uFFFD"},
		{"stray continuation byte", []step{{0x80 + 1, "\uFFFD"}, {98, "a"}}, ""},
		{"invalid lead byte", []step{{0xFF + 1, "\uFFFD"}, {0xFE + 1, ""}, {98, "a"}}, ""},
		{"prefix broken by ASCII", []step{{0xF0 + 1, ""}, {0x9F + 1, ""}, {98, "\uFFFDa"}}, ""},
		{"prefix broken by new lead", []step{{0xE4 + 1, ""}, {0xE4 + 1, "\uFFFD"}, {0xB8 + 1, ""}, {0x80 + 1, "一"}}, ""},
		{"bytes one at a time", []step{{0xE4 + 1, ""}, {0xB8 + 1, ""}, {0x80 + 1, "一"}}, ""},
		{"surrogate encoding is invalid", []step{{0xED + 1, ""}, {0xA0 + 1, "\uFFFD"}, {0x80 + 1, ""}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tk.NewDecoder()
			var ids []int32
			var all strings.Builder
			for i, s := range tt.steps {
				ids = append(ids, s.id)
				got := d.Write(s.id)
				all.WriteString(got)
				if got != s.want {
					t.Errorf("step %d: Write(%d) = %q, want %q", i, s.id, got, s.want)
				}
			}
			got := d.Flush()
			all.WriteString(got)
			if got != tt.flush {
				t.Errorf("Flush() = %q, want %q", got, tt.flush)
			}
			want := strings.ToValidUTF8(string(tk.Decode(ids)), "\uFFFD")
			if all.String() != want {
				t.Errorf("whole output %q, want %q", all.String(), want)
			}
			if got := d.Flush(); got != "" {
				t.Errorf("second Flush() = %q, want empty", got)
			}
		})
	}
}

// TestDecoderSplitsEveryCharacter encodes text one byte per token (ids 1..256)
// so that every multi-byte character arrives in pieces.
func TestDecoderSplitsEveryCharacter(t *testing.T) {
	tk := mustWorld(t)
	text := "Ünïcödé 数字和中文 🙂🚀 Привет"
	d := tk.NewDecoder()
	var sb strings.Builder
	for i := 0; i < len(text); i++ {
		out := d.Write(int32(text[i]) + 1)
		if !utf8.ValidString(out) {
			t.Fatalf("byte %d: Write returned invalid UTF-8 %q", i, out)
		}
		sb.WriteString(out)
		if !strings.HasPrefix(text, sb.String()) {
			t.Fatalf("byte %d: output so far %q is not a prefix of %q", i, sb.String(), text)
		}
	}
	if got := d.Flush(); got != "" {
		t.Errorf("Flush() = %q, want empty", got)
	}
	if sb.String() != text {
		t.Errorf("got %q, want %q", sb.String(), text)
	}
}

func TestWorldRandomRoundTrip(t *testing.T) {
	tk := mustWorld(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("01 \n\r\t,.;!?:'\"-=你好abcXYZ🙂é")
	for i := range 2000 {
		var b []byte
		switch i % 4 {
		case 0: // runes from a small alphabet, like the ChatRWKV test
			for range rng.IntN(60) {
				b = utf8.AppendRune(b, alphabet[rng.IntN(len(alphabet))])
			}
		case 1: // random code points
			for range rng.IntN(30) {
				r := rune(rng.IntN(0x110000))
				if !utf8.ValidRune(r) {
					r = 'x'
				}
				b = utf8.AppendRune(b, r)
			}
		case 2: // random bytes, usually invalid UTF-8
			for range rng.IntN(60) {
				b = append(b, byte(rng.IntN(256)))
			}
		case 3: // long runs of one byte
			c := byte(rng.IntN(256))
			b = bytes.Repeat([]byte{c}, rng.IntN(600))
		}
		ids := tk.EncodeBytes(b)
		if got := tk.Decode(ids); !bytes.Equal(got, b) {
			t.Fatalf("Decode(EncodeBytes(%q)) = %q", b, got)
		}
		if got, want := streamDecode(tk, ids), strings.ToValidUTF8(string(b), "\uFFFD"); got != want {
			t.Fatalf("Decoder over EncodeBytes(%q) = %q, want %q", b, got, want)
		}
		if enc := tk.Encode(string(b)); !slices.Equal(enc, ids) {
			t.Fatalf("Encode and EncodeBytes differ on %q", b)
		}
	}
}
