package npy

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fixtures = "../../testdata/rwkv7"

func TestReadFixtures(t *testing.T) {
	tests := []struct {
		file  string
		shape []int
	}{
		{"tiny.logits.npy", []int{64, 512}},
		{"tiny.state_wkv.npy", []int{2, 2, 64, 64}},
		{"tiny.state_shift.npy", []int{2, 2, 128}},
		{"small.logits.npy", []int{48, 2048}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(fixtures, tc.file)
			a, err := ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a.Shape, tc.shape) {
				t.Fatalf("shape %v, want %v", a.Shape, tc.shape)
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// The fixtures are '<f4' with a 128-byte v1 preamble+header;
			// decode the payload independently and compare.
			hlen := int(binary.LittleEndian.Uint16(raw[8:10]))
			payload := raw[10+hlen:]
			if len(payload) != 4*len(a.Data) {
				t.Fatalf("payload %d bytes, data %d elements", len(payload), len(a.Data))
			}
			var nonzero int
			for i, v := range a.Data {
				want := math.Float32frombits(binary.LittleEndian.Uint32(payload[4*i:]))
				if math.Float32bits(v) != math.Float32bits(want) {
					t.Fatalf("element %d = %v, want %v", i, v, want)
				}
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("element %d is not finite: %v", i, v)
				}
				if v != 0 {
					nonzero++
				}
			}
			if nonzero < len(a.Data)/2 {
				t.Errorf("only %d of %d elements are nonzero", nonzero, len(a.Data))
			}
			// Read from a plain reader (no size hint) must agree.
			b, err := Read(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.Shape, a.Shape) || !slices.Equal(b.Data, a.Data) {
				t.Fatal("Read and ReadFile disagree")
			}
		})
	}
}

// TestHeaderMatchesNumPy checks that Write emits byte-for-byte the header
// numpy.save wrote for the fixtures (the fixtures were written by NumPy).
func TestHeaderMatchesNumPy(t *testing.T) {
	tests := []struct {
		file  string
		shape []int
	}{
		{"tiny.logits.npy", []int{64, 512}},
		{"tiny.state_wkv.npy", []int{2, 2, 64, 64}},
		{"tiny.state_shift.npy", []int{2, 2, 128}},
		{"small.logits.npy", []int{48, 2048}},
		{"long.logits.npy", []int{17, 512}},
		{"small.state_wkv.npy", []int{3, 4, 64, 64}},
	}
	for _, tc := range tests {
		raw, err := os.ReadFile(filepath.Join(fixtures, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Header(tc.shape)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) < len(got) || !bytes.Equal(raw[:len(got)], got) {
			t.Errorf("%s: header\n got %q\nwant %q", tc.file, got, raw[:min(len(raw), len(got)+8)])
		}
	}
}

// TestHeaderSpec checks headers built by hand from numpy/lib/format.py's
// rules: dict repr with a trailing ", }", 21 - len(str(shape[0])) growth
// spaces, then spaces to make 10+len+1 a multiple of 64 (a full 64 when it
// already is), then '\n'.
func TestHeaderSpec(t *testing.T) {
	build := func(dict string) string {
		total := 10 + len(dict) + 1
		pad := 64 - total%64
		hlen := len(dict) + pad + 1
		return "\x93NUMPY\x01\x00" + string([]byte{byte(hlen), byte(hlen >> 8)}) +
			dict + strings.Repeat(" ", pad) + "\n"
	}
	d := "{'descr': '<f4', 'fortran_order': False, 'shape': "
	tests := []struct {
		shape []int
		want  string
	}{
		{[]int{}, build(d + "(), }")},
		{[]int{3}, build(d + "(3,), }" + strings.Repeat(" ", 20))},
		{[]int{0, 7}, build(d + "(0, 7), }" + strings.Repeat(" ", 20))},
		{[]int{1234567, 1}, build(d + "(1234567, 1), }" + strings.Repeat(" ", 14))},
	}
	for _, tc := range tests {
		got, err := Header(tc.shape)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("shape %v:\n got %q\nwant %q", tc.shape, got, tc.want)
		}
		if len(got)%64 != 0 || got[len(got)-1] != '\n' {
			t.Errorf("shape %v: header length %d not 64-aligned or not ending in newline", tc.shape, len(got))
		}
	}
	// The scalar dict is 60 bytes: 10+60+1 = 71, padded to 128 (exactly the
	// hand computation, as a check on the builder above).
	if h, _ := Header(nil); len(h) != 128 {
		t.Errorf("scalar header length %d, want 128", len(h))
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		shape []int
		data  []float32
	}{
		{[]int{}, []float32{3.5}},
		{[]int{0}, []float32{}},
		{[]int{2, 0, 3}, []float32{}},
		{[]int{4}, []float32{1, -2, float32(math.Inf(1)), float32(math.NaN())}},
		{[]int{2, 3}, []float32{0, 1, 2, 3, 4, 5}},
		{[]int{3, 40000}, ramp(120000)}, // spans several write/read chunks
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		if err := Write(&buf, tc.shape, tc.data); err != nil {
			t.Fatalf("shape %v: %v", tc.shape, err)
		}
		if buf.Len()%64 != 0 && len(tc.data) == 0 {
			t.Errorf("shape %v: empty array file is %d bytes, want header only (64-aligned)", tc.shape, buf.Len())
		}
		a, err := Read(&buf)
		if err != nil {
			t.Fatalf("shape %v: %v", tc.shape, err)
		}
		if !slices.Equal(a.Shape, tc.shape) {
			t.Errorf("shape %v came back as %v", tc.shape, a.Shape)
		}
		if len(a.Data) != len(tc.data) {
			t.Fatalf("shape %v: %d elements came back, want %d", tc.shape, len(a.Data), len(tc.data))
		}
		for i := range tc.data {
			if math.Float32bits(a.Data[i]) != math.Float32bits(tc.data[i]) {
				t.Fatalf("shape %v: element %d = %v, want %v", tc.shape, i, a.Data[i], tc.data[i])
			}
		}
	}
}

func ramp(n int) []float32 {
	d := make([]float32, n)
	for i := range d {
		d[i] = float32(i)*0.25 - 7
	}
	return d
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.npy")
	if err := os.WriteFile(path, []byte("old contents"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := ramp(10)
	if err := WriteFile(path, []int{2, 5}, data); err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Shape, []int{2, 5}) || !slices.Equal(a.Data, data) {
		t.Fatalf("got %v %v", a.Shape, a.Data)
	}
	// A failed write leaves the old file and no temporary behind.
	if err := WriteFile(path, []int{3}, data); err == nil {
		t.Fatal("size mismatch was accepted")
	}
	if b, err := ReadFile(path); err != nil || !slices.Equal(b.Data, data) {
		t.Fatalf("failed write disturbed the existing file: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after writes, want 1", len(ents))
	}
	if err := WriteFile(filepath.Join(dir, "missing", "y.npy"), []int{1}, []float32{1}); err == nil {
		t.Error("write into a missing directory succeeded")
	}
}

func TestWriteErrors(t *testing.T) {
	tests := []struct {
		name  string
		shape []int
		data  []float32
		want  string
	}{
		{"mismatch", []int{2, 3}, make([]float32, 5), "holds 6 elements but data has 5"},
		{"negative", []int{-1}, nil, "negative dimension"},
		{"overflow", []int{1 << 40, 1 << 40}, nil, "exceeds limit"},
	}
	for _, tc := range tests {
		err := Write(&bytes.Buffer{}, tc.shape, tc.data)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// file builds a v1.0 .npy file with the given header dict and payload.
func file(dict string, payload []byte) []byte {
	return fileV(1, dict, payload)
}

func fileV(major byte, dict string, payload []byte) []byte {
	h := dict + "\n"
	var b bytes.Buffer
	b.WriteString(magic)
	b.WriteByte(major)
	b.WriteByte(0)
	if major == 1 {
		b.Write(binary.LittleEndian.AppendUint16(nil, uint16(len(h))))
	} else {
		b.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(h))))
	}
	b.WriteString(h)
	b.Write(payload)
	return b.Bytes()
}

func hdr(descr, shape string) string {
	return "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }"
}

func TestReadDtypes(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	f64 := func(o binary.AppendByteOrder, v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = o.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	i64 := func(v ...int64) []byte {
		var b []byte
		for _, x := range v {
			b = le.AppendUint64(b, uint64(x))
		}
		return b
	}
	i32 := func(o binary.AppendByteOrder, v ...int32) []byte {
		var b []byte
		for _, x := range v {
			b = o.AppendUint32(b, uint32(x))
		}
		return b
	}
	u16 := func(v ...uint16) []byte {
		var b []byte
		for _, x := range v {
			b = le.AppendUint16(b, x)
		}
		return b
	}
	tests := []struct {
		descr   string
		payload []byte
		want    []float32
	}{
		{"<f8", f64(le, 1.5, -2.25, 1e300), []float32{1.5, -2.25, float32(math.Inf(1))}},
		{">f8", f64(be, 1.5, -2.25, 0), []float32{1.5, -2.25, 0}},
		{"|u1", []byte{0, 7, 255}, []float32{0, 7, 255}},
		{"|i1", []byte{0, 0x80, 0xff}, []float32{0, -128, -1}},
		{"|b1", []byte{0, 1, 2}, []float32{0, 1, 1}},
		{"<i4", i32(le, -5, 0, 1<<24), []float32{-5, 0, 1 << 24}},
		{">i4", i32(be, -5, 0, 9), []float32{-5, 0, 9}},
		{"<u4", i32(le, -1, 0, 3), []float32{4294967295, 0, 3}},
		{"<i8", i64(-3, 1<<40, 0), []float32{-3, 1 << 40, 0}},
		{"<u8", i64(-1, 2, 0), []float32{18446744073709551615, 2, 0}},
		{"<u2", u16(0, 65535, 12), []float32{0, 65535, 12}},
		{"<i2", u16(0xffff, 5, 0x8000), []float32{-1, 5, -32768}},
		{"<f2", u16(0x3c00, 0xc000, 0x3800), []float32{1, -2, 0.5}},
		{"<f4", i32(le, int32(math.Float32bits(0.1)), 0, int32(math.Float32bits(-3))), []float32{0.1, 0, -3}},
	}
	for _, tc := range tests {
		a, err := Read(bytes.NewReader(file(hdr(tc.descr, "(3,)"), tc.payload)))
		if err != nil {
			t.Errorf("%s: %v", tc.descr, err)
			continue
		}
		if !slices.Equal(a.Data, tc.want) || !slices.Equal(a.Shape, []int{3}) {
			t.Errorf("%s: got %v %v, want %v", tc.descr, a.Shape, a.Data, tc.want)
		}
	}
}

func TestReadVersions(t *testing.T) {
	payload := binary.LittleEndian.AppendUint32(nil, math.Float32bits(2.5))
	for _, v := range []byte{1, 2, 3} {
		a, err := Read(bytes.NewReader(fileV(v, hdr("<f4", "(1, 1)"), payload)))
		if err != nil {
			t.Errorf("version %d: %v", v, err)
			continue
		}
		if !slices.Equal(a.Shape, []int{1, 1}) || !slices.Equal(a.Data, []float32{2.5}) {
			t.Errorf("version %d: got %v %v", v, a.Shape, a.Data)
		}
	}
	// Double-quoted strings, Python 2 long suffixes, other key order and
	// no trailing comma are all valid Python literals NumPy can read.
	alt := `{"shape": (1L, 1L), "fortran_order": False, "descr": "<f4"}`
	if a, err := Read(bytes.NewReader(file(alt, payload))); err != nil || a.Data[0] != 2.5 {
		t.Errorf("alternate header syntax: %v", err)
	}
}

func TestReadErrors(t *testing.T) {
	f4 := make([]byte, 4*6)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated preamble"},
		{"bad magic", append([]byte("\x93NUMPZ\x01\x00"), 0, 0), "bad magic"},
		{"version", fileV(4, hdr("<f4", "(1,)"), f4), "unsupported format version 4.0"},
		{"minor", append([]byte(magic+"\x01\x01"), file(hdr("<f4", "(1,)"), f4)[8:]...), "unsupported format version 1.1"},
		{"truncated header", file(hdr("<f4", "(2, 3)"), nil)[:30], "truncated header"},
		{"truncated data", file(hdr("<f4", "(2, 3)"), f4[:20]), "truncated data: got 20 of 24 bytes"},
		{"huge truncated", file(hdr("<f4", "(4000000000, 4)"), f4), "truncated data"},
		{"too many elements", file(hdr("<f4", "(4000000000, 4000000000)"), f4), "exceeds limit"},
		{"dtype", file(hdr("<c8", "(2, 3)"), f4), `unsupported dtype "<c8"`},
		{"dtype order", file(hdr("|f4", "(2, 3)"), f4), `unsupported dtype "|f4"`},
		{"object dtype", file(hdr("|O", "(2, 3)"), f4), `unsupported dtype "|O"`},
		{"structured", file("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", f4), "structured"},
		{"missing key", file("{'descr': '<f4', 'shape': (2, 3), }", f4), `missing key "fortran_order"`},
		{"extra key", file("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", f4), `unexpected key "x"`},
		{"duplicate key", file("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", f4), "duplicate key"},
		{"negative dim", file(hdr("<f4", "(-1, 3)"), f4), "non-negative integer"},
		{"bad bool", file("{'descr': '<f4', 'fortran_order': 0, 'shape': (6,)}", f4), "True or False"},
		{"not a dict", file("['descr']", f4), "not a dict"},
		{"trailing", file(hdr("<f4", "(6,)")+" junk", f4), "trailing characters"},
		{"unterminated", file("{'descr", f4), "unterminated string"},
		{"missing colon", file("{'descr' '<f4'}", f4), "missing ':'"},
		{"no close", file("{'descr': '<f4' 'x'", f4), "expected ',' or '}'"},
		{"header too long", fileV(2, hdr("<f4", "(6,)")+strings.Repeat(" ", MaxHeaderLen), f4), "exceeds limit"},
	}
	for _, tc := range tests {
		_, err := Read(bytes.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestReadFileErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "short.npy")
	// Declares 4e9 floats but holds 24 bytes: ReadFile must report truncation
	// from the file size before allocating.
	if err := os.WriteFile(path, file(hdr("<f4", "(1000000000, 4)"), make([]byte, 24)), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if err == nil || !strings.Contains(err.Error(), "truncated data") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %v, want truncated data naming %s", err, path)
	}
	_, err = ReadFile(filepath.Join(dir, "absent.npy"))
	if err == nil || !os.IsNotExist(errorsUnwrapAll(err)) {
		t.Errorf("missing file: error %v", err)
	}
}

func errorsUnwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func FuzzRead(f *testing.F) {
	for _, name := range []string{"tiny.state_shift.npy", "long.state_shift.npy"} {
		raw, err := os.ReadFile(filepath.Join(fixtures, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	var buf bytes.Buffer
	if err := Write(&buf, []int{2, 3}, ramp(6)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(fileV(2, hdr("<f8", "(2,)"), make([]byte, 16)))
	f.Add(fileV(3, hdr("|u1", "(1, 2, 3)"), make([]byte, 6)))
	f.Add(file(hdr(">i8", "()"), make([]byte, 8)))
	f.Add(file(hdr("<f4", "(99999999999, 99999999)"), nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, err := Read(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := 1
		for _, d := range a.Shape {
			if d < 0 {
				t.Fatalf("negative dimension in %v", a.Shape)
			}
			n *= d
		}
		if n != len(a.Data) {
			t.Fatalf("shape %v but %d elements", a.Shape, len(a.Data))
		}
	})
}

// TestFortranOrder reads a column-major array: a (2, 3) array [[0 1 2]
// [3 4 5]] is stored as 0 3 1 4 2 5, and a (2, 2, 2) one likewise.
func TestFortranOrder(t *testing.T) {
	tests := []struct {
		shape string
		dims  []int
		data  []float32 // stored, column-major
		want  []float32 // row-major
	}{
		{"(2, 3)", []int{2, 3}, []float32{0, 3, 1, 4, 2, 5}, []float32{0, 1, 2, 3, 4, 5}},
		{"(2, 2, 2)", []int{2, 2, 2}, []float32{0, 4, 2, 6, 1, 5, 3, 7}, []float32{0, 1, 2, 3, 4, 5, 6, 7}},
		{"(4,)", []int{4}, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
	}
	for _, tc := range tests {
		dict := "{'descr': '<f4', 'fortran_order': True, 'shape': " + tc.shape + ", }"
		var payload []byte
		for _, v := range tc.data {
			payload = binary.LittleEndian.AppendUint32(payload, math.Float32bits(v))
		}
		raw := file(dict, payload)
		a, err := Read(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", tc.shape, err)
		}
		if !slices.Equal(a.Shape, tc.dims) || !slices.Equal(a.Data, tc.want) {
			t.Errorf("%s: got %v %v, want %v %v", tc.shape, a.Shape, a.Data, tc.dims, tc.want)
		}
	}
}
