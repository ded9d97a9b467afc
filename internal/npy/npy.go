// Package npy reads and writes NumPy .npy array files.
//
// Read accepts format versions 1.0, 2.0 and 3.0 with C-order data of the
// numeric dtypes bool, int8..int64, uint8..uint64, float16, float32 and
// float64 in either byte order, and converts every element to float32.
// Write produces version 1.0 files holding little-endian float32 ('<f4') with
// the same header bytes NumPy itself writes, so numpy.load reads them back.
//
// The format is described in NumPy's NEP 1 ("A simple file format for NumPy
// arrays") and in numpy/lib/format.py.
package npy

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/goose-rwkv/goose/internal/half"
)

// Array is an n-dimensional array in C (row-major) order, converted to float32.
type Array struct {
	// Shape holds the size of each dimension; an empty Shape is a scalar
	// holding one element.
	Shape []int
	// Data holds the elements in C order; len(Data) is the product of Shape.
	Data []float32
}

// magic is the six-byte prefix of every .npy file.
const magic = "\x93NUMPY"

// Limits that keep a corrupt or hostile header from causing huge work.
const (
	// MaxHeaderLen is the largest header Read accepts, in bytes. NumPy's own
	// default limit (max_header_size) is 10000.
	MaxHeaderLen = 1 << 16
	// MaxDims is the largest number of dimensions Read or Write accepts
	// (NumPy's limit is 64).
	MaxDims = 64
	// MaxElements is the largest element count Read or Write accepts.
	MaxElements = 1 << 34
)

// growthDigits mirrors NumPy's GROWTH_AXIS_MAX_DIGITS: NumPy pads the header
// so the first axis can later grow to this many digits in place.
const growthDigits = 21

// headerAlign is the multiple NumPy pads the whole preamble plus header to.
const headerAlign = 64

// dtype describes one supported element type.
type dtype struct {
	size   int
	big    bool // big-endian
	decode func(dst []float32, src []byte, order binary.ByteOrder)
}

// parseDescr maps a NumPy descr string such as "<f4" to a dtype.
func parseDescr(descr string) (dtype, error) {
	if len(descr) < 3 {
		return dtype{}, fmt.Errorf("unsupported dtype %q", descr)
	}
	var big bool
	switch descr[0] {
	case '<', '=':
		// '=' (native order; NumPy itself never writes it) is taken as
		// little-endian, the order of every platform this project targets.
	case '>':
		big = true
	case '|':
	default:
		return dtype{}, fmt.Errorf("unsupported dtype %q: unknown byte order %q", descr, descr[0])
	}
	// Each element type: its size and the conversion of one element.
	conv := map[string]struct {
		size int
		elem func(b []byte, o binary.ByteOrder) float32
	}{
		"b1": {1, func(b []byte, _ binary.ByteOrder) float32 {
			if b[0] != 0 {
				return 1
			}
			return 0
		}},
		"u1": {1, func(b []byte, _ binary.ByteOrder) float32 { return float32(b[0]) }},
		"i1": {1, func(b []byte, _ binary.ByteOrder) float32 { return float32(int8(b[0])) }},
		"u2": {2, func(b []byte, o binary.ByteOrder) float32 { return float32(o.Uint16(b)) }},
		"i2": {2, func(b []byte, o binary.ByteOrder) float32 { return float32(int16(o.Uint16(b))) }},
		"f2": {2, func(b []byte, o binary.ByteOrder) float32 { return half.F16ToF32(o.Uint16(b)) }},
		"u4": {4, func(b []byte, o binary.ByteOrder) float32 { return float32(o.Uint32(b)) }},
		"i4": {4, func(b []byte, o binary.ByteOrder) float32 { return float32(int32(o.Uint32(b))) }},
		"f4": {4, func(b []byte, o binary.ByteOrder) float32 { return math.Float32frombits(o.Uint32(b)) }},
		"u8": {8, func(b []byte, o binary.ByteOrder) float32 { return float32(o.Uint64(b)) }},
		"i8": {8, func(b []byte, o binary.ByteOrder) float32 { return float32(int64(o.Uint64(b))) }},
		"f8": {8, func(b []byte, o binary.ByteOrder) float32 { return float32(math.Float64frombits(o.Uint64(b))) }},
	}[descr[1:]]
	if conv.elem == nil {
		return dtype{}, fmt.Errorf("unsupported dtype %q", descr)
	}
	size, elem := conv.size, conv.elem
	dt := dtype{big: big, size: size, decode: func(dst []float32, src []byte, o binary.ByteOrder) {
		for i := range dst {
			dst[i] = elem(src[i*size:], o)
		}
	}}
	if descr[0] == '|' && dt.size != 1 {
		return dtype{}, fmt.Errorf("unsupported dtype %q: byte order '|' on a multi-byte type", descr)
	}
	return dt, nil
}

// header is the parsed header dictionary.
type header struct {
	descr        string
	fortranOrder bool
	shape        []int
}

// Read decodes one .npy array from r, converting its elements to float32.
// It reads exactly the header and the data; bytes after the data are left
// unread. Errors name the problem: bad magic, an unsupported version or
// dtype, Fortran order, a malformed header or truncated data.
func Read(r io.Reader) (*Array, error) {
	return read(r, -1)
}

// ReadFile reads the .npy file at path. See Read.
func ReadFile(path string) (*Array, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	defer f.Close()
	size := int64(-1)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	a, err := read(bufio.NewReaderSize(f, 1<<16), size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return a, nil
}

// read decodes an array from r. size is the total number of bytes r holds,
// or -1 when unknown; when known, truncation is reported before any large
// allocation and the data slice is allocated once.
func read(r io.Reader, size int64) (*Array, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("npy: truncated preamble: %w", err)
	}
	if string(pre[:6]) != magic {
		return nil, fmt.Errorf("npy: bad magic %q (want %q)", pre[:6], magic)
	}
	major, minor := pre[6], pre[7]
	var hlen int64
	preLen := int64(10)
	switch major {
	case 1:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: truncated header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint16(b[:]))
	case 2, 3:
		var b [4]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("npy: truncated header length: %w", err)
		}
		hlen = int64(binary.LittleEndian.Uint32(b[:]))
		preLen = 12
	default:
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	if minor != 0 {
		return nil, fmt.Errorf("npy: unsupported format version %d.%d", major, minor)
	}
	if hlen > MaxHeaderLen {
		return nil, fmt.Errorf("npy: header length %d exceeds limit %d", hlen, MaxHeaderLen)
	}
	if size >= 0 && preLen+hlen > size {
		return nil, fmt.Errorf("npy: truncated header: file has %d bytes, header needs %d", size, preLen+hlen)
	}
	hbuf := make([]byte, hlen)
	if _, err := io.ReadFull(r, hbuf); err != nil {
		return nil, fmt.Errorf("npy: truncated header (%d bytes declared): %w", hlen, err)
	}
	h, err := parseHeader(string(hbuf))
	if err != nil {
		return nil, fmt.Errorf("npy: header %q: %w", clip(string(hbuf), 200), err)
	}
	dt, err := parseDescr(h.descr)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	n, err := numElements(h.shape)
	if err != nil {
		return nil, fmt.Errorf("npy: shape %v: %w", h.shape, err)
	}
	need := int64(n) * int64(dt.size)
	if size >= 0 && size-preLen-hlen < need {
		return nil, fmt.Errorf("npy: truncated data: shape %v of %s needs %d bytes, file has %d",
			h.shape, h.descr, need, size-preLen-hlen)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if dt.big {
		order = binary.BigEndian
	}
	data, err := readData(r, n, dt, order, size >= 0)
	if err != nil {
		return nil, fmt.Errorf("npy: shape %v of %s: %w", h.shape, h.descr, err)
	}
	if h.fortranOrder {
		data = fromFortran(data, h.shape)
	}
	return &Array{Shape: h.shape, Data: data}, nil
}

// fromFortran reorders column-major (Fortran-order) data into row-major
// (C) order.
func fromFortran(data []float32, shape []int) []float32 {
	if len(shape) < 2 || len(data) == 0 {
		return data
	}
	out := make([]float32, len(data))
	idx := make([]int, len(shape)) // C-order multi-index of out[i]
	for i := range out {
		off, stride := 0, 1
		for d := range shape { // Fortran strides grow from the first axis
			off += idx[d] * stride
			stride *= shape[d]
		}
		out[i] = data[off]
		for d := len(shape) - 1; d >= 0; d-- { // advance idx in C order
			if idx[d]++; idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// readData reads n elements of type dt. Unless sizeKnown (the caller has
// checked that the bytes exist), the output grows as data arrives, so a
// header declaring a huge array fails as truncated without a huge allocation.
func readData(r io.Reader, n int, dt dtype, order binary.ByteOrder, sizeKnown bool) ([]float32, error) {
	const chunk = 1 << 14 // elements per read
	var data []float32
	if sizeKnown {
		data = make([]float32, 0, n)
	} else {
		data = make([]float32, 0, min(n, chunk))
	}
	buf := make([]byte, min(n, chunk)*dt.size)
	for len(data) < n {
		k := min(n-len(data), chunk)
		b := buf[:k*dt.size]
		if got, err := io.ReadFull(r, b); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("truncated data: got %d of %d bytes",
					int64(len(data))*int64(dt.size)+int64(got), int64(n)*int64(dt.size))
			}
			return nil, err
		}
		start := len(data)
		data = append(data, make([]float32, k)...)
		dt.decode(data[start:], b, order)
	}
	return data, nil
}

// numElements returns the product of shape, rejecting negative dimensions
// and counts above MaxElements.
func numElements(shape []int) (int, error) {
	if len(shape) > MaxDims {
		return 0, fmt.Errorf("%d dimensions exceed limit %d", len(shape), MaxDims)
	}
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension %d", d)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > MaxElements/d {
			return 0, fmt.Errorf("element count exceeds limit %d", MaxElements)
		}
		n *= d
	}
	return n, nil
}

// clip shortens s for error messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// parseHeader parses the Python dict literal of a .npy header, e.g.
// "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 512), }" followed
// by spaces and a newline.
func parseHeader(s string) (header, error) {
	p := &parser{s: s}
	var h header
	seen := map[string]bool{}
	p.skipSpace()
	if !p.eat('{') {
		return h, errors.New("header is not a dict: missing '{'")
	}
	for {
		p.skipSpace()
		if p.eat('}') {
			break
		}
		key, err := p.str()
		if err != nil {
			return h, fmt.Errorf("dict key: %w", err)
		}
		if seen[key] {
			return h, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		p.skipSpace()
		if !p.eat(':') {
			return h, fmt.Errorf("missing ':' after key %q", key)
		}
		p.skipSpace()
		switch key {
		case "descr":
			if p.peek() == '[' || p.peek() == '(' {
				return h, errors.New("unsupported dtype: structured dtypes are not supported")
			}
			if h.descr, err = p.str(); err != nil {
				return h, fmt.Errorf("descr: %w", err)
			}
		case "fortran_order":
			if h.fortranOrder, err = p.boolean(); err != nil {
				return h, fmt.Errorf("fortran_order: %w", err)
			}
		case "shape":
			if h.shape, err = p.tuple(); err != nil {
				return h, fmt.Errorf("shape: %w", err)
			}
		default:
			return h, fmt.Errorf("unexpected key %q", key)
		}
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		if p.eat('}') {
			break
		}
		return h, fmt.Errorf("expected ',' or '}' at offset %d", p.i)
	}
	if rest := strings.TrimRight(p.s[p.i:], " \t\r\n\x00"); rest != "" {
		return h, fmt.Errorf("trailing characters after dict: %q", clip(rest, 40))
	}
	for _, k := range []string{"descr", "fortran_order", "shape"} {
		if !seen[k] {
			return h, fmt.Errorf("missing key %q", k)
		}
	}
	if h.shape == nil {
		h.shape = []int{}
	}
	return h, nil
}

// parser is a cursor over a header string.
type parser struct {
	s string
	i int
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) eat(c byte) bool {
	if p.peek() == c && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

func (p *parser) skipSpace() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

// str parses a quoted string without escapes.
func (p *parser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", fmt.Errorf("expected a quoted string at offset %d", p.i)
	}
	end := strings.IndexByte(p.s[p.i+1:], q)
	if end < 0 {
		return "", errors.New("unterminated string")
	}
	v := p.s[p.i+1 : p.i+1+end]
	if strings.IndexByte(v, '\\') >= 0 {
		return "", fmt.Errorf("escape sequences are not supported in %q", v)
	}
	p.i += end + 2
	return v, nil
}

// boolean parses True or False.
func (p *parser) boolean() (bool, error) {
	switch {
	case strings.HasPrefix(p.s[p.i:], "True"):
		p.i += 4
		return true, nil
	case strings.HasPrefix(p.s[p.i:], "False"):
		p.i += 5
		return false, nil
	}
	return false, fmt.Errorf("expected True or False at offset %d", p.i)
}

// tuple parses a tuple of non-negative integers such as (), (5,) or (2, 3).
// A trailing 'L' (Python 2 long) on an integer is accepted.
func (p *parser) tuple() ([]int, error) {
	if !p.eat('(') {
		return nil, fmt.Errorf("expected '(' at offset %d", p.i)
	}
	dims := []int{}
	for {
		p.skipSpace()
		if p.eat(')') {
			return dims, nil
		}
		start := p.i
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		if p.i == start {
			return nil, fmt.Errorf("expected a non-negative integer at offset %d", p.i)
		}
		d, err := strconv.Atoi(p.s[start:p.i])
		if err != nil || d > MaxElements {
			return nil, fmt.Errorf("dimension %q out of range", p.s[start:p.i])
		}
		if len(dims) == MaxDims {
			return nil, fmt.Errorf("more than %d dimensions", MaxDims)
		}
		dims = append(dims, d)
		p.eat('L')
		p.skipSpace()
		if p.eat(',') {
			continue
		}
		if p.eat(')') {
			return dims, nil
		}
		return nil, fmt.Errorf("expected ',' or ')' at offset %d", p.i)
	}
}

// Header returns the exact header bytes (magic, version, length and the
// padded dict) that Write emits for a float32 array of the given shape. It
// matches what numpy.save writes for a C-order float32 array.
func Header(shape []int) ([]byte, error) {
	if _, err := numElements(shape); err != nil {
		return nil, fmt.Errorf("npy: shape %v: %w", shape, err)
	}
	var sb strings.Builder
	sb.WriteString("{'descr': '<f4', 'fortran_order': False, 'shape': ")
	sb.WriteString(shapeRepr(shape))
	sb.WriteString(", }")
	if len(shape) > 0 {
		if pad := growthDigits - len(strconv.Itoa(shape[0])); pad > 0 {
			sb.WriteString(strings.Repeat(" ", pad))
		}
	}
	dict := sb.String()
	// NumPy pads so the preamble plus header is a multiple of 64 bytes, adding
	// a full 64 spaces when it already is. Version 1.0 stores the length in
	// two bytes; like NumPy, fall back to 2.0 (four bytes) when it overflows.
	major, preLen := byte(1), 10
	hlen := len(dict) + 1
	pad := headerAlign - (preLen+hlen)%headerAlign
	if hlen+pad > math.MaxUint16 {
		major, preLen = 2, 12
		pad = headerAlign - (preLen+hlen)%headerAlign
	}
	hlen += pad
	var buf bytes.Buffer
	buf.Grow(preLen + hlen)
	buf.WriteString(magic)
	buf.WriteByte(major)
	buf.WriteByte(0)
	if major == 1 {
		buf.Write(binary.LittleEndian.AppendUint16(nil, uint16(hlen)))
	} else {
		buf.Write(binary.LittleEndian.AppendUint32(nil, uint32(hlen)))
	}
	buf.WriteString(dict)
	buf.WriteString(strings.Repeat(" ", pad))
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// shapeRepr formats shape as Python's repr of a tuple.
func shapeRepr(shape []int) string {
	switch len(shape) {
	case 0:
		return "()"
	case 1:
		return "(" + strconv.Itoa(shape[0]) + ",)"
	}
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// Write writes data as a version 1.0 .npy array of little-endian float32 with
// the given shape. The product of shape must equal len(data).
func Write(w io.Writer, shape []int, data []float32) error {
	n, err := numElements(shape)
	if err != nil {
		return fmt.Errorf("npy: shape %v: %w", shape, err)
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d elements but data has %d", shape, n, len(data))
	}
	hdr, err := Header(shape)
	if err != nil {
		return err
	}
	if _, err := w.Write(hdr); err != nil {
		return fmt.Errorf("npy: write header: %w", err)
	}
	const chunk = 1 << 14
	buf := make([]byte, 0, 4*min(len(data), chunk))
	for i := 0; i < len(data); i += chunk {
		buf = buf[:0]
		for _, v := range data[i:min(i+chunk, len(data))] {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(v))
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("npy: write data: %w", err)
		}
	}
	return nil
}

// WriteFile writes an array to path atomically: it writes a temporary file in
// the same directory, syncs it and renames it over path, so readers never see
// a partial file. The file gets mode 0644.
func WriteFile(path string, shape []int, data []float32) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error { return Write(w, shape, data) })
}
