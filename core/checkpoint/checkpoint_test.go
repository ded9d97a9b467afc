package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/internal/regfile"
	"github.com/goose-rwkv/goose/kernels"
)

const (
	tinyPth     = "../../testdata/rwkv7/tiny.pth"
	smallPth    = "../../testdata/rwkv7/small.pth"
	smallST     = "../../testdata/rwkv7/small.safetensors"
	arwkvPth    = "../../testdata/arwkv/mm.arwkv.pth"
	visualPth   = "../../testdata/visualrwkv/mm.visualrwkv.pth"
	tinyTensors = 6 + 33*2 - 3 // §2.1: 6 + 33·L, minus layer-0 v0/v1/v2
)

func mustOpen(t testing.TB, path string) *File {
	t.Helper()
	f, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

// checkAllBytes reads every tensor and checks the data length.
func checkAllBytes(t *testing.T, f *File) {
	t.Helper()
	for _, info := range f.Tensors() {
		b, err := f.Bytes(info.Name)
		if err != nil {
			t.Errorf("Bytes(%q): %v", info.Name, err)
			continue
		}
		if want := info.Len() * info.DType.Size(); len(b) != want {
			t.Errorf("Bytes(%q) has %d bytes, want %d", info.Name, len(b), want)
		}
	}
}

func TestOpenFixtures(t *testing.T) {
	type want struct {
		name  string
		dtype kernels.DType
		shape []int
	}
	tests := []struct {
		path    string
		format  string
		count   int
		tensors []want
		absent  []string
	}{
		{
			path: tinyPth, format: "pth", count: tinyTensors,
			tensors: []want{
				{"emb.weight", kernels.BF16, []int{512, 128}},
				{"head.weight", kernels.BF16, []int{512, 128}},
				{"blocks.0.att.r_k", kernels.BF16, []int{2, 64}},
				{"blocks.0.att.x_r", kernels.BF16, []int{1, 1, 128}},
				{"blocks.1.att.v0", kernels.BF16, []int{1, 1, 128}},
				{"blocks.1.ffn.key.weight", kernels.BF16, []int{512, 128}},
				{"blocks.1.ffn.value.weight", kernels.BF16, []int{128, 512}},
				{"ln_out.bias", kernels.BF16, []int{128}},
			},
			absent: []string{"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2", "blocks.2.ln1.weight"},
		},
		{
			path: smallPth, format: "pth", count: 6 + 33*3 - 3,
			tensors: []want{
				{"emb.weight", kernels.BF16, []int{2048, 256}},
				{"blocks.0.att.r_k", kernels.BF16, []int{4, 64}},
				{"blocks.2.att.key.weight", kernels.BF16, []int{256, 256}},
			},
			absent: []string{"blocks.0.att.v0"},
		},
		{
			path: smallST, format: "safetensors", count: 6 + 33*3 - 3,
			tensors: []want{
				{"emb.weight", kernels.BF16, []int{2048, 256}},
				{"blocks.0.att.r_k", kernels.BF16, []int{4, 64}},
				{"blocks.2.att.key.weight", kernels.BF16, []int{256, 256}},
			},
			absent: []string{"blocks.0.att.v0", "__metadata__"},
		},
		{
			path: arwkvPth, format: "pth", count: 82,
			tensors: []want{
				{"pos_embed", kernels.BF16, []int{1, 32, 128}},
				{"emb.weight", kernels.BF16, []int{128, 1, 16, 16}},
				{"blocks.0.att.a0", kernels.BF16, []int{1, 1, 128}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			f := mustOpen(t, tt.path)
			if f.Format() != tt.format {
				t.Errorf("Format() = %q, want %q", f.Format(), tt.format)
			}
			if f.Path() != tt.path {
				t.Errorf("Path() = %q, want %q", f.Path(), tt.path)
			}
			st, err := os.Stat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Size() != st.Size() {
				t.Errorf("Size() = %d, want %d", f.Size(), st.Size())
			}
			infos := f.Tensors()
			if len(infos) != tt.count {
				t.Errorf("%d tensors, want %d", len(infos), tt.count)
			}
			if !slices.IsSortedFunc(infos, func(a, b Info) int { return strings.Compare(a.Name, b.Name) }) {
				t.Error("Tensors() is not sorted by name")
			}
			for _, w := range tt.tensors {
				info, ok := f.Lookup(w.name)
				if !ok {
					t.Errorf("Lookup(%q) not found", w.name)
					continue
				}
				if info.Name != w.name || info.DType != w.dtype || !slices.Equal(info.Shape, w.shape) {
					t.Errorf("Lookup(%q) = %v %v %v, want %v %v", w.name, info.Name, info.DType, info.Shape, w.dtype, w.shape)
				}
			}
			for _, name := range tt.absent {
				if _, ok := f.Lookup(name); ok {
					t.Errorf("Lookup(%q) found a tensor that the file does not have", name)
				}
				if _, err := f.Bytes(name); !errors.Is(err, ErrNotFound) {
					t.Errorf("Bytes(%q) error = %v, want ErrNotFound", name, err)
				}
			}
			checkAllBytes(t, f)
		})
	}
}

func TestVisualRWKVFixture(t *testing.T) {
	if _, err := os.Stat(visualPth); err != nil {
		t.Skipf("%s not present (20 MB fixture, copied only on demand from the golden set): %v", visualPth, err)
	}
	f := mustOpen(t, visualPth)
	if n := len(f.Tensors()); n != 267 {
		t.Errorf("%d tensors, want 267", n)
	}
	info, ok := f.Lookup("rwkv.emb.weight")
	if !ok || info.DType != kernels.BF16 || !slices.Equal(info.Shape, []int{65536, 64}) {
		t.Errorf("rwkv.emb.weight = %v %v", info, ok)
	}
	checkAllBytes(t, f)
}

// TestPthMatchesSafetensors checks that the two containers of the same
// weights give identical tensors.
func TestPthMatchesSafetensors(t *testing.T) {
	p, s := mustOpen(t, smallPth), mustOpen(t, smallST)
	pi, si := p.Tensors(), s.Tensors()
	if len(pi) != len(si) {
		t.Fatalf("pth has %d tensors, safetensors %d", len(pi), len(si))
	}
	for i := range pi {
		a, b := pi[i], si[i]
		if a.Name != b.Name || a.DType != b.DType || !slices.Equal(a.Shape, b.Shape) {
			t.Errorf("tensor %d: pth %v, safetensors %v", i, a, b)
			continue
		}
		ab, err := p.Bytes(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		bb, err := s.Bytes(b.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ab, bb) {
			t.Errorf("%s: data differs", a.Name)
		}
		af, err := p.Float32(a.Name)
		if err != nil {
			t.Fatal(err)
		}
		bf, err := s.Float32(b.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(af) != a.Len() || !slices.Equal(af, bf) {
			t.Errorf("%s: Float32 differs or has the wrong length %d", a.Name, len(af))
		}
	}
}

// TestBytesMatchZipEntry compares Bytes with the storage entry read through
// archive/zip. The keys were read from the pickle with Python's pickletools.
func TestBytesMatchZipEntry(t *testing.T) {
	zr, err := zip.OpenReader(tinyPth)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f := mustOpen(t, tinyPth)
	for _, tt := range []struct{ tensor, key string }{
		{"emb.weight", "0"},
		{"blocks.0.att.r_k", "23"},
		{"blocks.1.att.key.weight", "58"},
		{"head.weight", "68"},
	} {
		rc, err := zr.Open("tiny/data/" + tt.key)
		if err != nil {
			t.Fatal(err)
		}
		want, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Bytes(tt.tensor)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: Bytes differs from zip entry data/%s", tt.tensor, tt.key)
		}
	}
	// Float32 decodes bf16 as the top half of an f32.
	b, _ := f.Bytes("blocks.0.ln0.weight")
	v, err := f.Float32("blocks.0.ln0.weight")
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		if got, want := v[i], bf16(b[2*i:]); got != want {
			t.Fatalf("Float32[%d] = %v, want %v", i, got, want)
		}
	}
}

func TestNewReaderMatchesOpen(t *testing.T) {
	for _, path := range []string{tinyPth, smallST} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			m := mustOpen(t, path)
			fh, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			r, err := NewReader(fh, m.Size(), "reader:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Path() != "reader:"+path || r.Format() != m.Format() {
				t.Errorf("Path/Format = %q/%q", r.Path(), r.Format())
			}
			for _, info := range m.Tensors() {
				a, err1 := m.Bytes(info.Name)
				b, err2 := r.Bytes(info.Name)
				if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
					t.Errorf("%s: Open and NewReader differ (%v, %v)", info.Name, err1, err2)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	f, err := Open(tinyPth)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Bytes("emb.weight"); !errors.Is(err, ErrClosed) {
		t.Errorf("Bytes after Close: %v, want ErrClosed", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pth")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello, this is not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want error
	}{
		{filepath.Join(dir, "missing.pth"), os.ErrNotExist},
		{dir, regfile.ErrNotRegular},
		{"/dev/zero", regfile.ErrNotRegular},
		{empty, ErrFormat},
		{text, ErrFormat},
	}
	for _, tt := range tests {
		f, err := Open(tt.path)
		if err == nil {
			f.Close()
			t.Errorf("Open(%s) succeeded", tt.path)
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("Open(%s) = %v, want %v", tt.path, err, tt.want)
		}
		var ce *Error
		if !errors.As(err, &ce) || ce.Path != tt.path || !strings.HasPrefix(err.Error(), "checkpoint "+tt.path+": ") {
			t.Errorf("Open(%s) error %q does not name the file", tt.path, err)
		}
	}
}

// TestTruncated cuts real files at many lengths: every prefix must fail
// cleanly (a zip needs its central directory at the end; a safetensors file
// must hold all the data its header describes).
func TestTruncated(t *testing.T) {
	for _, path := range []string{tinyPth, smallST} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n := len(data)
		for _, cut := range []int{0, 1, 3, 4, 8, 9, 30, 100, 1000, n / 3, n / 2, n - 4096, n - 200, n - 23, n - 22, n - 1} {
			f, err := NewReader(bytes.NewReader(data[:cut]), int64(cut), "cut.pth")
			if err == nil {
				f.Close()
				t.Errorf("%s cut to %d bytes: opened without error", path, cut)
				continue
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.Path != "cut.pth" {
				t.Errorf("%s cut to %d: error %v is not an *Error naming the file", path, cut, err)
			}
		}
	}
	// A truncated file on disk goes through the memory-mapped path.
	data, _ := os.ReadFile(tinyPth)
	p := filepath.Join(t.TempDir(), "tiny.pth")
	if err := os.WriteFile(p, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if f, err := Open(p); err == nil {
		f.Close()
		t.Error("Open of a half file succeeded")
	}
}

// TestFlippedBytes corrupts bytes in the metadata of tiny.pth (pickle,
// local headers, central directory) and requires an error or a consistent
// result, never a panic.
func TestFlippedBytes(t *testing.T) {
	orig, err := os.ReadFile(tinyPth)
	if err != nil {
		t.Fatal(err)
	}
	var positions []int
	for i := 0; i < 6700; i += 13 { // local header and data.pkl
		positions = append(positions, i)
	}
	for i := len(orig) - 6000; i < len(orig); i += 11 { // central directory
		positions = append(positions, i)
	}
	data := slices.Clone(orig)
	failed, tried := 0, 0
	for _, pos := range positions {
		for _, x := range []byte{0xff, 0x01} {
			data[pos] ^= x
			tried++
			f, err := NewReader(bytes.NewReader(data), int64(len(data)), "flip.pth")
			if err != nil {
				failed++
			} else {
				checkAllBytes(t, f)
			}
			data[pos] ^= x
		}
	}
	if failed == 0 {
		t.Error("no corruption was detected at all")
	}
	t.Logf("%d of %d corruptions rejected", failed, tried)
}

func bf16(b []byte) float32 {
	u := uint32(b[0])<<16 | uint32(b[1])<<24
	return math.Float32frombits(u)
}
