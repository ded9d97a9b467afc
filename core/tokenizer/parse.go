package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// maxID bounds the ids Parse accepts, so that a corrupt file cannot make it
// allocate an enormous id table. Real vocabularies are far smaller.
const maxID = 1<<20 - 1

// Parse reads a vocabulary in the RWKV World text format and builds a
// Tokenizer from it.
//
// Each non-empty line is "<id> <literal> <length>": the id is split off at the
// first space and the byte length at the last one, and the literal is
// everything in between (it may contain spaces). The literal is a Python str
// ('…' or "…", UTF-8 encoded) or bytes (b'…') literal; length is the number of
// bytes it stands for. Ids must be in 1..1048575 (id 0 is EndOfText), and no
// id or byte string may appear twice. Every single byte 0x00..0xFF must have
// a token, so that any input can be encoded.
//
// Errors name the line and the problem.
func Parse(r io.Reader) (*Tokenizer, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read vocabulary: %w", err)
	}
	return parse(data)
}

// entry is one parsed vocabulary line; its bytes are buf[off:off+n] of the
// buffer parse fills.
type entry struct {
	id   int32
	line int32
	off  uint32
	n    uint32
}

func parse(data []byte) (*Tokenizer, error) {
	if len(data) >= 1<<31 {
		return nil, errors.New("tokenizer: vocabulary file is larger than 2 GiB")
	}
	nl := bytes.Count(data, []byte{'\n'})
	entries := make([]entry, 0, nl+1)
	buf := make([]byte, 0, len(data)/2) // decoded bytes of all tokens, back to back
	lineNo := 0
	for len(data) > 0 {
		lineNo++
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		id, lit, length, err := splitLine(line)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: line %d: %w", lineNo, err)
		}
		start := len(buf)
		buf, err = appendLiteral(buf, lit)
		if err != nil {
			return nil, fmt.Errorf("tokenizer: line %d: literal %s: %w", lineNo, clip(lit), err)
		}
		n := len(buf) - start
		if n != length {
			return nil, fmt.Errorf("tokenizer: line %d: literal %s is %d bytes, but the line says %d", lineNo, clip(lit), n, length)
		}
		if n == 0 {
			return nil, fmt.Errorf("tokenizer: line %d: empty token", lineNo)
		}
		entries = append(entries, entry{id: id, line: int32(lineNo), off: uint32(start), n: uint32(n)})
	}
	if len(entries) == 0 {
		return nil, errors.New("tokenizer: vocabulary is empty")
	}
	return build(entries, buf)
}

// splitLine splits "<id> <literal> <length>" at the first and last space.
func splitLine(line []byte) (id int32, lit []byte, length int, err error) {
	first := bytes.IndexByte(line, ' ')
	last := bytes.LastIndexByte(line, ' ')
	if first < 0 || last == first {
		return 0, nil, 0, fmt.Errorf("want \"<id> <literal> <length>\", got %s", clip(line))
	}
	idField, lit, lenField := line[:first], line[first+1:last], line[last+1:]
	v, err := parseDecimal(idField)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("bad id %q: %w", clip(idField), err)
	}
	if v == 0 {
		return 0, nil, 0, errors.New("id 0 is reserved for end of text")
	}
	if v > maxID {
		return 0, nil, 0, fmt.Errorf("id %d is larger than %d", v, maxID)
	}
	n, err := parseDecimal(lenField)
	if err != nil {
		return 0, nil, 0, fmt.Errorf("bad length %q: %w", clip(lenField), err)
	}
	return int32(v), lit, n, nil
}

// parseDecimal parses a non-negative decimal integer of at most 9 digits.
func parseDecimal(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	if len(b) > 9 {
		return 0, errors.New("number too long")
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number")
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// clip quotes b for an error message, shortened if it is long.
func clip(b []byte) string {
	const max = 40
	s, more := string(b), ""
	if len(s) > max {
		s, more = s[:max], "…"
	}
	if strconv.CanBackquote(s) {
		return "`" + s + "`" + more
	}
	return strconv.Quote(s) + more
}

// appendLiteral decodes a Python str or bytes literal and appends its bytes
// to dst. A str literal is encoded as UTF-8: there, \xHH is the code point
// U+00HH (two bytes for HH ≥ 0x80), while in a bytes literal it is the raw
// byte HH.
func appendLiteral(dst, lit []byte) ([]byte, error) {
	isBytes := false
	body := lit
	if len(body) > 0 {
		switch body[0] {
		case 'b', 'B':
			isBytes = true
			body = body[1:]
		case 'u', 'U':
			body = body[1:]
		}
	}
	if len(body) < 2 || (body[0] != '\'' && body[0] != '"') || body[len(body)-1] != body[0] {
		return dst, errors.New("not a quoted Python literal")
	}
	quote := body[0]
	if len(body) >= 6 && body[1] == quote && body[2] == quote {
		return dst, errors.New("triple-quoted literals are not supported")
	}
	s := body[1 : len(body)-1]
	for j := 0; j < len(s); {
		c := s[j]
		if c == quote {
			return dst, fmt.Errorf("unescaped %c inside the literal", quote)
		}
		if c != '\\' {
			if c < utf8.RuneSelf {
				dst = append(dst, c)
				j++
				continue
			}
			if isBytes {
				return dst, fmt.Errorf("non-ASCII byte 0x%02x in a bytes literal", c)
			}
			r, size := utf8.DecodeRune(s[j:])
			if r == utf8.RuneError && size == 1 {
				return dst, fmt.Errorf("invalid UTF-8 byte 0x%02x", c)
			}
			dst = append(dst, s[j:j+size]...)
			j += size
			continue
		}
		// Escape sequence.
		if j+1 >= len(s) {
			return dst, errors.New("unterminated literal (backslash before the closing quote)")
		}
		e := s[j+1]
		j += 2
		switch e {
		case '\\', '\'', '"':
			dst = append(dst, e)
		case 'a':
			dst = append(dst, '\a')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'v':
			dst = append(dst, '\v')
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(e - '0')
			for k := 0; k < 2 && j < len(s) && s[j] >= '0' && s[j] <= '7'; k++ {
				v = v*8 + int(s[j]-'0')
				j++
			}
			if isBytes {
				if v > 0xFF {
					return dst, fmt.Errorf("octal escape \\%o is larger than a byte", v)
				}
				dst = append(dst, byte(v))
			} else {
				dst = utf8.AppendRune(dst, rune(v))
			}
		case 'x':
			v, err := hexValue(s, j, 2)
			if err != nil {
				return dst, fmt.Errorf("\\x escape: %w", err)
			}
			j += 2
			if isBytes {
				dst = append(dst, byte(v))
			} else {
				dst = utf8.AppendRune(dst, rune(v))
			}
		case 'u', 'U':
			if isBytes {
				// Not an escape in a bytes literal: Python keeps it as is.
				dst = append(dst, '\\', e)
				break
			}
			n := 4
			if e == 'U' {
				n = 8
			}
			v, err := hexValue(s, j, n)
			if err != nil {
				return dst, fmt.Errorf("\\%c escape: %w", e, err)
			}
			j += n
			if v > utf8.MaxRune {
				return dst, fmt.Errorf("\\%c escape: code point %#x is out of range", e, v)
			}
			if v >= 0xD800 && v <= 0xDFFF {
				return dst, fmt.Errorf("\\%c escape: surrogate U+%04X cannot be encoded as UTF-8", e, v)
			}
			dst = utf8.AppendRune(dst, rune(v))
		case 'N':
			return dst, errors.New("\\N{...} escapes are not supported")
		default:
			// Python keeps an unknown escape, backslash included.
			dst = append(dst, '\\')
			j-- // reprocess e as an ordinary character
		}
	}
	return dst, nil
}

// hexValue reads exactly n hex digits of s starting at j.
func hexValue(s []byte, j, n int) (int, error) {
	if j+n > len(s) {
		return 0, fmt.Errorf("want %d hex digits", n)
	}
	v := 0
	for _, c := range s[j : j+n] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fmt.Errorf("want %d hex digits, got %q", n, s[j:j+n])
		}
		v = v*16 + int(d)
	}
	return v, nil
}
