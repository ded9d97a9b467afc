package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/assets"
)

// byteVocab returns vocabulary lines for the 256 single bytes, ids 1..256,
// written the way the World file writes them.
func byteVocab() string {
	var sb strings.Builder
	for c := range 256 {
		var lit string
		switch {
		case c == '\'':
			lit = `"'"`
		case c == '\\':
			lit = `'\\'`
		case c == '\n':
			lit = `'\n'`
		case c >= 0x20 && c < 0x7F:
			lit = "'" + string(rune(c)) + "'"
		case c < 0x80:
			lit = fmt.Sprintf(`'\x%02x'`, c)
		default:
			lit = fmt.Sprintf(`b'\x%02x'`, c)
		}
		fmt.Fprintf(&sb, "%d %s 1\n", c+1, lit)
	}
	return sb.String()
}

func TestAppendLiteral(t *testing.T) {
	tests := []struct {
		lit  string
		want string
	}{
		{`'a'`, "a"},
		{`'hello world'`, "hello world"},
		{`"it's"`, "it's"},
		{`'it\'s'`, "it's"},
		{`'say "hi"'`, `say "hi"`},
		{`'\n\t\r\\'`, "\n\t\r\\"},
		{`'\a\b\f\v'`, "\a\b\f\v"},
		{`'\x41'`, "A"},
		{`'\x80'`, "\xc2\x80"}, // str: code point U+0080
		{`'\xff'`, "\xc3\xbf"}, // str: ÿ
		{`b'\x80'`, "\x80"},    // bytes: raw byte
		{`b'\xe4\xbd'`, "\xe4\xbd"},
		{`B'\xFF'`, "\xff"},
		{`'\u3000'`, "\u3000"},
		{`'\ufeff'`, "\ufeff"},
		{`'\U0001F642'`, "🙂"},
		{`b'\u3000'`, `\u3000`}, // not an escape in bytes
		{`'\0'`, "\x00"},
		{`'\101\7'`, "A\x07"},
		{`'\777'`, "\u01ff"},
		{`b'\377'`, "\xff"},
		{`'\q'`, `\q`}, // unknown escape keeps the backslash
		{`'你好'`, "你好"},
		{`u'x'`, "x"},
		{`''`, ""},
	}
	for _, tt := range tests {
		got, err := appendLiteral(nil, []byte(tt.lit))
		if err != nil {
			t.Errorf("appendLiteral(%s): %v", tt.lit, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("appendLiteral(%s) = %q, want %q", tt.lit, got, tt.want)
		}
	}
}

func TestAppendLiteralErrors(t *testing.T) {
	tests := []struct {
		lit  string
		want string // substring of the error
	}{
		{`a`, "not a quoted"},
		{`'a"`, "not a quoted"},
		{`'`, "not a quoted"},
		{`r'a'`, "not a quoted"},
		{`'a'b'`, "unescaped '"},
		{`'''a'''`, "triple-quoted"},
		{`'a\'`, "unterminated"},
		{`'\x4'`, "hex digits"},
		{`'\xzz'`, "hex digits"},
		{`'\u12'`, "hex digits"},
		{`'\ud800'`, "surrogate"},
		{`'\U00110000'`, "out of range"},
		{`'\N{DASH}'`, `\N`},
		{`b'é'`, "non-ASCII"},
		{"'\xff'", "invalid UTF-8"},
		{`b'\777'`, "larger than a byte"},
	}
	for _, tt := range tests {
		_, err := appendLiteral(nil, []byte(tt.lit))
		if err == nil {
			t.Errorf("appendLiteral(%s) succeeded, want an error containing %q", tt.lit, tt.want)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("appendLiteral(%s) error %q, want it to contain %q", tt.lit, err, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	vocab := byteVocab() +
		"257 '\\t\\t' 2\n" +
		"258 'ab' 2\n" +
		"259 'abc' 3\n" +
		"260 'a b' 3\r\n" + // CRLF is tolerated; the literal may contain spaces
		"\n" + // blank lines are skipped
		"262 '\\x80' 2\n" + // gap: id 261 has no bytes
		"263 b'\\xe4\\xbd' 2\n"
	tk, err := Parse(strings.NewReader(vocab))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.VocabSize(); got != 264 {
		t.Errorf("VocabSize() = %d, want 264", got)
	}
	for _, c := range []struct {
		in   string
		want []int32
	}{
		{"", []int32{}},
		{"abcab", []int32{259, 258}},
		{"a b", []int32{260}},
		{"a bc", []int32{260, 100}},
		{"\t\t\t", []int32{257, 10}},
		{"\u0080", []int32{262}},
		{"你", []int32{263, 0xa0 + 1}},
		{"abd", []int32{258, 101}},
	} {
		got := tk.Encode(c.in)
		if !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
		if dec := tk.Decode(got); string(dec) != c.in {
			t.Errorf("Decode(%v) = %q, want %q", got, dec, c.in)
		}
	}
	if got := tk.Token(261); got != nil {
		t.Errorf("Token(261) = %q, want nil", got)
	}
}

func TestParseErrors(t *testing.T) {
	base := byteVocab() // lines 1..256
	tests := []struct {
		name  string
		input string
		want  []string // substrings of the error
	}{
		{"no fields", base + "garbage\n", []string{"line 257", "want"}},
		{"two fields", base + "300 'x'\n", []string{"line 257", "want"}},
		{"bad id", base + "x3 'ab' 2\n", []string{"line 257", "bad id"}},
		{"negative id", base + "-3 'ab' 2\n", []string{"line 257", "bad id"}},
		{"id zero", base + "0 'ab' 2\n", []string{"line 257", "reserved"}},
		{"huge id", base + "99999999 'ab' 2\n", []string{"line 257", "larger than"}},
		{"bad length", base + "300 'ab' two\n", []string{"line 257", "bad length"}},
		{"bad literal", base + "300 'ab 2\n", []string{"line 257", "not a quoted"}},
		{"bad escape", base + "300 '\\xg0' 2\n", []string{"line 257", "hex digits"}},
		{"length mismatch", base + "300 'ab' 3\n", []string{"line 257", "2 bytes", "says 3"}},
		{"str \\x is two bytes", base + "300 '\\x80' 1\n", []string{"line 257", "2 bytes", "says 1"}},
		{"empty token", base + "300 '' 0\n", []string{"line 257", "empty token"}},
		{"duplicate id", base + "300 'ab' 2\n300 'cd' 2\n", []string{"line 258", "duplicate id 300", "line 257"}},
		{"duplicate id of a byte", base + "5 'ab' 2\n", []string{"line 257", "duplicate id 5", "line 5"}},
		{"duplicate bytes", base + "300 'ab' 2\n301 b'ab' 2\n", []string{"line 258", "same bytes", "line 257"}},
		{"missing byte", strings.Replace(base, "66 'A' 1\n", "", 1), []string{"0x41"}},
		{"empty", "", []string{"empty"}},
		{"only blank lines", "\n\n\r\n", []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.input))
			if err == nil {
				t.Fatalf("Parse succeeded, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Parse(failing reader) error = %v, want the read error", err)
	}
}

// TestParseWorldFile checks Parse on the real file gives the same tokenizer
// as World (except VocabSize, which World rounds up to 65536).
func TestParseWorldFile(t *testing.T) {
	tk, err := Parse(bytes.NewReader(assets.WorldVocab()))
	if err != nil {
		t.Fatal(err)
	}
	if got := tk.VocabSize(); got != 65530 {
		t.Errorf("VocabSize() = %d, want 65530", got)
	}
	w := mustWorld(t)
	for id := int32(0); id < 65536; id++ {
		if !bytes.Equal(tk.Token(id), w.Token(id)) {
			t.Fatalf("Token(%d): Parse %q, World %q", id, tk.Token(id), w.Token(id))
		}
	}
}
