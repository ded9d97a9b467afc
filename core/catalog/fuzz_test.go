package catalog

import "testing"

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/100", "bytes 50-99/*", "bytes */100", "bytes -1-2/3", "bytes 9223372036854775807-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || total < 0) {
			t.Fatalf("parseContentRange(%q) = %d, %d, ok", s, start, total)
		}
	})
}
