package tokenizer

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzEncodeDecode(f *testing.F) {
	for _, c := range loadWorldCases(f) {
		f.Add([]byte(c.Text))
	}
	for _, c := range referenceVectors {
		f.Add([]byte(c.Text))
	}
	f.Add([]byte("01 \n\r\t,.;!?:'\"-=你好"))
	f.Add(bytes.Repeat([]byte{' '}, 300))
	f.Add([]byte("\xff\xfe\xf0\x9f\x99\xe4\xb8"))
	f.Add([]byte("\xed\xa0\x80\xc0\xaf"))
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	f.Add(all)
	tk := mustWorld(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		ids := tk.EncodeBytes(in)
		if got := tk.Decode(ids); !bytes.Equal(got, in) {
			t.Fatalf("Decode(EncodeBytes(%q)) = %q", in, got)
		}
		if !slices.Equal(tk.Encode(string(in)), ids) {
			t.Fatalf("Encode and EncodeBytes differ on %q", in)
		}
		for _, id := range ids {
			if id <= 0 || int(id) >= tk.VocabSize() || len(tk.token(id)) == 0 {
				t.Fatalf("EncodeBytes(%q) produced id %d without bytes", in, id)
			}
		}
		got := streamDecode(tk, ids)
		if want := strings.ToValidUTF8(string(in), "\uFFFD"); got != want {
			t.Fatalf("Decoder over EncodeBytes(%q) = %q, want %q", in, got, want)
		}
		if utf8.Valid(in) && got != string(in) {
			t.Fatalf("Decoder changed valid UTF-8 %q into %q", in, got)
		}
	})
}

func FuzzParse(f *testing.F) {
	vocab := byteVocab()
	f.Add(vocab + "257 'ab' 2\n258 b'\\xe4\\xbd' 2\n259 '\\u3000' 3\n260 \"it's\" 4\n")
	f.Add(vocab + "300 '\\x80' 1\n")
	f.Add(vocab + "300 'ab' 2\n300 'cd' 2\n")
	f.Add("1 '\\x00' 1\n2 b'\\xff' 1\n")
	f.Add("1 'a b c' 5\r\n\n3 '\\U0001F642' 4\n")
	f.Add("12 'abc\\' 4\n")
	f.Add("")
	// Lines as the World file writes them, including a str \x80 (two bytes).
	f.Add("33 ' ' 1\n129 b'\\x80' 1\n2423 '\\x80' 2\n261 '\\n\\n' 2\n")
	f.Fuzz(func(t *testing.T, in string) {
		tk, err := Parse(strings.NewReader(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "tokenizer: ") {
				t.Fatalf("error without package prefix: %v", err)
			}
			return
		}
		// A vocabulary that parses covers every byte, so any text round-trips.
		for _, s := range []string{in, "abc 你好 \xff\x00", ""} {
			if got := tk.Decode(tk.Encode(s)); string(got) != s {
				t.Fatalf("Decode(Encode(%q)) = %q", s, got)
			}
		}
		if tk.VocabSize() < 257 {
			t.Fatalf("VocabSize() = %d with all 256 bytes present", tk.VocabSize())
		}
	})
}
