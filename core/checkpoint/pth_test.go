package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// wantTensor is an expected tensor of a built archive: its description and
// the storage bytes it should read.
type wantTensor struct {
	name   string
	dtype  kernels.DType
	shape  []int
	key    string // storage key
	lo, hi int    // byte range within the storage
}

func TestBuiltPth(t *testing.T) {
	s0, s1, s2 := pattern(64, 1), pattern(16, 2), pattern(96, 3)
	stor := map[string][]byte{"0": s0, "1": s1}
	bf := func(name, key string, numel int64, shape ...int64) fakeTensor {
		return fakeTensor{name: name, storage: "BFloat16Storage", key: key, numel: numel, shape: shape}
	}
	tests := []struct {
		name    string
		archive func() []byte
		want    []wantTensor // for valid files
		err     error        // for invalid files
		msg     string       // substring of the error message
	}{
		{
			name: "bf16 state dict",
			archive: func() []byte {
				return pthArchive("archive/", statePickle([]fakeTensor{bf("a", "0", 32, 4, 8), bf("b", "1", 8, 8)}, false), stor, false)
			},
			want: []wantTensor{{"a", kernels.BF16, []int{4, 8}, "0", 0, 64}, {"b", kernels.BF16, []int{8}, "1", 0, 16}},
		},
		{
			name: "f16 and f32, 7 args, parameter, OrderedDict with _metadata",
			archive: func() []byte {
				ts := []fakeTensor{
					{name: "h", storage: "HalfStorage", key: "0", numel: 32, shape: []int64{32}, args7: true},
					{name: "f", storage: "FloatStorage", key: "1", numel: 4, shape: []int64{2, 2}, param: true},
				}
				return pthArchive("model_v2/", statePickle(ts, true), stor, false)
			},
			want: []wantTensor{{"f", kernels.F32, []int{2, 2}, "1", 0, 16}, {"h", kernels.F16, []int{32}, "0", 0, 64}},
		},
		{
			name: "shared storage with offsets",
			archive: func() []byte {
				ts := []fakeTensor{bf("x", "2", 48, 16), {name: "y", storage: "BFloat16Storage", key: "2", numel: 48, offset: 16, shape: []int64{4, 8}}}
				return pthArchive("a/", statePickle(ts, false), map[string][]byte{"2": s2}, false)
			},
			want: []wantTensor{{"x", kernels.BF16, []int{16}, "2", 0, 32}, {"y", kernels.BF16, []int{4, 8}, "2", 32, 96}},
		},
		{
			name: "size-1 dimensions with arbitrary strides",
			archive: func() []byte {
				ts := []fakeTensor{
					{name: "p", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{1, 1, 32}, stride: []int64{99, 7, 1}},
					{name: "q", storage: "BFloat16Storage", key: "1", numel: 8, shape: []int64{8, 1}, stride: []int64{1, 5}},
				}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			want: []wantTensor{{"p", kernels.BF16, []int{1, 1, 32}, "0", 0, 64}, {"q", kernels.BF16, []int{8, 1}, "1", 0, 16}},
		},
		{
			name: "scalar and empty tensors, archive without prefix",
			archive: func() []byte {
				ts := []fakeTensor{bf("s", "1", 8), bf("e", "9", 0, 0, 4)}
				return pthArchive("", statePickle(ts, false), map[string][]byte{"1": s1, "9": {}}, false)
			},
			want: []wantTensor{{"e", kernels.BF16, []int{0, 4}, "9", 0, 0}, {"s", kernels.BF16, []int{}, "1", 0, 2}},
		},
		{
			name: "zip64 records",
			archive: func() []byte {
				return pthArchive("big/", statePickle([]fakeTensor{bf("a", "0", 32, 4, 8), bf("b", "1", 8, 8)}, true), stor, true)
			},
			want: []wantTensor{{"a", kernels.BF16, []int{4, 8}, "0", 0, 64}, {"b", kernels.BF16, []int{8}, "1", 0, 16}},
		},

		{
			name: "not contiguous",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{4, 8}, stride: []int64{1, 4}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrShape, msg: `tensor "t": bad shape (shape [4 8] with stride [1 4] is not contiguous)`,
		},
		{
			name: "storage smaller than declared",
			archive: func() []byte {
				return pthArchive("a/", statePickle([]fakeTensor{bf("t", "1", 100, 100)}, false), stor, false)
			},
			err: ErrTruncated, msg: `tensor "t": truncated (need 200 bytes, have 16)`,
		},
		{
			name: "offset past the storage",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "BFloat16Storage", key: "0", numel: 32, offset: 30, shape: []int64{4}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrTruncated, msg: "storage offset 30 + 4 elements exceed the storage's 32 elements",
		},
		{
			name: "missing storage entry",
			archive: func() []byte {
				return pthArchive("a/", statePickle([]fakeTensor{bf("t", "7", 8, 8)}, false), stor, false)
			},
			err: ErrFormat, msg: `storage entry "a/data/7" is missing`,
		},
		{
			name: "os.system",
			archive: func() []byte {
				p := (&pickler{}).op(opProto, 2).global("posix", "system").str("echo pwned").op(opTuple1, opReduce, opStop)
				return pthArchive("a/", p.b, nil, false)
			},
			err: ErrGlobal, msg: `unsupported global "posix.system"`,
		},
		{
			name: "builtins.eval through STACK_GLOBAL",
			archive: func() []byte {
				p := (&pickler{}).op(opProto, 4).str("builtins").str("eval").op(opStackGlobal, opStop)
				return pthArchive("a/", p.b, nil, false)
			},
			err: ErrGlobal, msg: `"builtins.eval"`,
		},
		{
			name: "unsupported storage class",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "DoubleStorage", key: "0", numel: 8, shape: []int64{8}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrGlobal, msg: `"torch.DoubleStorage"`,
		},
		{
			name: "TorchScript",
			archive: func() []byte {
				return buildZip([]zipEntry{
					{name: "m/data.pkl", data: statePickle(nil, false)},
					{name: "m/constants.pkl", data: statePickle(nil, false)},
				}, false).bytes()
			},
			err: ErrTorchScript,
		},
		{
			name: "no data.pkl",
			archive: func() []byte {
				return buildZip([]zipEntry{{name: "m/data/0", data: s0}, {name: "m/version", data: []byte("3\n")}}, false).bytes()
			},
			err: ErrNoPickle,
		},
		{
			name: "two data.pkl",
			archive: func() []byte {
				return buildZip([]zipEntry{{name: "m/data.pkl", data: statePickle(nil, false)}, {name: "n/data.pkl", data: statePickle(nil, false)}}, false).bytes()
			},
			err: ErrFormat, msg: "2 data.pkl entries",
		},
		{
			name: "compressed storage",
			archive: func() []byte {
				return buildZip([]zipEntry{
					{name: "m/data.pkl", data: statePickle([]fakeTensor{bf("t", "0", 32, 32)}, false)},
					{name: "m/data/0", data: s0, method: zip.Deflate},
				}, false).bytes()
			},
			err: ErrFormat, msg: "compressed with method 8",
		},
		{
			name: "big-endian",
			archive: func() []byte {
				return buildZip([]zipEntry{
					{name: "m/data.pkl", data: statePickle(nil, false)},
					{name: "m/byteorder", data: []byte("big")},
				}, false).bytes()
			},
			err: ErrFormat, msg: `byte order "big"`,
		},
		{
			name: "value is not a tensor",
			archive: func() []byte {
				p := (&pickler{}).op(opProto, 2, opEmptyDict).str("epoch").int(3).op(opSetItem, opStop)
				return pthArchive("a/", p.b, nil, false)
			},
			err: ErrFormat, msg: `tensor "epoch": not a checkpoint file (value is of type int, not a tensor)`,
		},
		{
			name: "pickle is not a dict",
			archive: func() []byte {
				return pthArchive("a/", (&pickler{}).op(opProto, 2, opEmptyList, opStop).b, nil, false)
			},
			err: ErrFormat, msg: "holds a list",
		},
		{
			name: "_rebuild_tensor_v2 with 5 arguments",
			archive: func() []byte {
				p := (&pickler{}).op(opProto, 2, opEmptyDict).str("t").global("torch._utils", "_rebuild_tensor_v2").op(opMark)
				p.op(opMark).str("storage").global("torch", "BFloat16Storage").str("0").str("cpu").int(32).op(opTuple, opBinPersID)
				p.int(0).ints([]int64{32}).ints([]int64{1}).op(opNewFalse, opTuple, opReduce, opSetItem, opStop)
				return pthArchive("a/", p.b, stor, false)
			},
			err: errPickle, msg: "called with 5 arguments, want 6 or 7",
		},
		{
			name: "mismatched size and stride",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{4, 8}, stride: []int64{1}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrShape, msg: "2 sizes but 1 strides",
		},
		{
			name: "negative dimension",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{-4, -8}, stride: []int64{8, 1}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrShape,
		},
		{
			name: "overflowing shape",
			archive: func() []byte {
				ts := []fakeTensor{{name: "t", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{1 << 40, 1 << 40}, stride: []int64{1 << 40, 1}}}
				return pthArchive("a/", statePickle(ts, false), stor, false)
			},
			err: ErrShape, msg: "too large",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.archive()
			f, err := NewReader(bytes.NewReader(data), int64(len(data)), "test.pth")
			if tt.err != nil {
				if err == nil {
					f.Close()
					t.Fatalf("opened without error, want %v", tt.err)
				}
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %q, want %v containing %q", err, tt.err, tt.msg)
				}
				if !strings.HasPrefix(err.Error(), "checkpoint test.pth: ") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Format() != "pth" {
				t.Errorf("Format() = %q", f.Format())
			}
			checkBuilt(t, f, tt.want, storagesOf(t, data))

			// The same bytes through Open (memory-mapped).
			p := filepath.Join(t.TempDir(), "m.pth")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			checkBuilt(t, m, tt.want, storagesOf(t, data))
		})
	}
}

// storagesOf reads an archive's data/<key> entries with archive/zip.
func storagesOf(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, zf := range zr.File {
		i := strings.LastIndex(zf.Name, "data/")
		if i < 0 {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		out[zf.Name[i+len("data/"):]] = buf.Bytes()
	}
	return out
}

func checkBuilt(t *testing.T, f *File, want []wantTensor, storages map[string][]byte) {
	t.Helper()
	infos := f.Tensors()
	if len(infos) != len(want) {
		t.Fatalf("%d tensors, want %d", len(infos), len(want))
	}
	for i, w := range want {
		got := infos[i]
		if got.Name != w.name || got.DType != w.dtype || !slices.Equal(got.Shape, w.shape) {
			t.Errorf("tensor %d = %v %v %v, want %v %v %v", i, got.Name, got.DType, got.Shape, w.name, w.dtype, w.shape)
		}
		b, err := f.Bytes(w.name)
		if err != nil {
			t.Fatal(err)
		}
		if exp := storages[w.key][w.lo:w.hi]; !bytes.Equal(b, exp) {
			t.Errorf("%s: Bytes = %x, want %x", w.name, b, exp)
		}
		v, err := f.Float32(w.name)
		if err != nil || len(v) != got.Len() {
			t.Errorf("%s: Float32 gave %d values, %v", w.name, len(v), err)
		}
	}
}

// TestErrorMessage pins the error format other packages show to users.
func TestErrorMessage(t *testing.T) {
	ts := []fakeTensor{{name: "blocks.0.att.key.weight", storage: "BFloat16Storage", key: "0", numel: 16384, shape: []int64{128, 128}}}
	data := pthArchive("tiny/", statePickle(ts, false), map[string][]byte{"0": make([]byte, 100)}, false)
	_, err := NewReader(bytes.NewReader(data), int64(len(data)), "tiny.pth")
	const want = `checkpoint tiny.pth: tensor "blocks.0.att.key.weight": truncated (need 32768 bytes, have 100)`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v\nwant    %s", err, want)
	}
	var ce *Error
	if !errors.As(err, &ce) || ce.Path != "tiny.pth" || ce.Tensor != "blocks.0.att.key.weight" || !errors.Is(err, ErrTruncated) {
		t.Errorf("error fields = %+v", ce)
	}
}

// TestZip64Offsets lays out an archive whose second storage starts past
// 4 GiB, behind a 4.5 GB storage, in a sparse image (nothing that large is
// allocated), and checks sizes and offsets come through ZIP64 intact.
func TestZip64Offsets(t *testing.T) {
	const bigBytes = 4_500_000_000 // > 4 GiB: needs ZIP64 sizes and offsets
	payload := pattern(32, 9)
	ts := []fakeTensor{
		{name: "big", storage: "BFloat16Storage", key: "0", numel: bigBytes / 2, shape: []int64{bigBytes / 2 / 1500, 1500}},
		{name: "small", storage: "FloatStorage", key: "1", numel: 8, shape: []int64{8}},
	}
	img := buildZip([]zipEntry{
		{name: "huge/data.pkl", data: statePickle(ts, false)},
		{name: "huge/data/0", zeros: bigBytes},
		{name: "huge/data/1", data: payload},
		{name: "huge/version", data: []byte("3\n")},
	}, true)

	zr, err := zip.NewReader(img, img.size)
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range zr.File {
		sp, err := entrySpan(zf, img.size)
		if err != nil {
			t.Fatal(err)
		}
		switch zf.Name {
		case "huge/data/0":
			if sp.n != bigBytes {
				t.Errorf("big storage has %d bytes, want %d", sp.n, bigBytes)
			}
		case "huge/data/1":
			if sp.off <= 1<<32 || sp.n != 32 || sp.off%64 != 0 {
				t.Errorf("small storage at %d (+%d), want a 64-aligned offset past 4 GiB", sp.off, sp.n)
			}
			// The span must fail for a file that ends inside it.
			if _, err := entrySpan(zf, sp.off+sp.n-1); !errors.Is(err, ErrTruncated) {
				t.Errorf("span past the end: %v, want ErrTruncated", err)
			}
			if _, err := entrySpan(zf, sp.off-1); !errors.Is(err, ErrTruncated) {
				t.Errorf("span starting past the end: %v, want ErrTruncated", err)
			}
		}
	}

	f, err := NewReader(img, img.size, "huge.pth")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Lookup("big")
	if info.Len() != bigBytes/2 || int64(info.Len())*2 <= 1<<32 {
		t.Errorf("big tensor has %d elements", info.Len())
	}
	b, err := f.Bytes("small")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, payload) {
		t.Errorf("small tensor past 4 GiB = %x, want %x", b, payload)
	}

	// The same archive truncated inside the big storage is rejected.
	short := &sparse{segs: img.segs, size: 3_000_000_000}
	if _, err := NewReader(short, short.size, "short.pth"); err == nil {
		t.Error("archive cut inside the big storage opened")
	}
}
