package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"testing"
)

// seedArchives are small valid and nearly valid checkpoints for the fuzzers.
func seedArchives() [][]byte {
	stor := map[string][]byte{"0": pattern(64, 1), "1": pattern(16, 2)}
	ts := []fakeTensor{
		{name: "a", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{4, 8}},
		{name: "b", storage: "FloatStorage", key: "1", numel: 4, shape: []int64{2, 2}, param: true},
		{name: "c", storage: "HalfStorage", key: "0", numel: 32, offset: 8, shape: []int64{1, 3, 8}, args7: true},
	}
	return [][]byte{
		pthArchive("archive/", statePickle(ts, false), stor, false),
		pthArchive("x/", statePickle(ts, true), stor, true),
	}
}

func readTinyPickle(f *testing.F) []byte {
	zr, err := zip.OpenReader(tinyPth)
	if err != nil {
		f.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open("tiny/data.pkl")
	if err != nil {
		f.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzPickle runs the pickle machine alone on arbitrary bytes.
func FuzzPickle(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes every new input it keeps, and
	// that is slow for a multi-kilobyte pickle. The head of tiny.pth's
	// data.pkl is the real torch stream (memo, BINGET reuse of globals).
	f.Add(readTinyPickle(f)[:1024])
	f.Add(statePickle([]fakeTensor{{name: "a", storage: "BFloat16Storage", key: "0", numel: 32, shape: []int64{4, 8}, param: true}}, true))
	f.Add(mustHex("80049581000000000000007d94288c0161945d94284b014b024b034740120000000000008694658c0162944e8c016394888c0164948a060000000000ff8c0165948c02c3a9948c016694298c01679443027879948c0168947d944b018c017894738c0169944d2c018c016a944a701101008c016b94898c016c944b0185948c016d944b014b024b038794752e"))
	f.Add(mustHex("800263706f7369780a73797374656d0a71002e"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := unpickle(data)
		if err == nil {
			_ = typeName(v)
		}
	})
}

// fuzzOpen opens arbitrary bytes with NewReader and, when that succeeds,
// reads every tensor: lengths must match the description.
func fuzzOpen(t *testing.T, data []byte) {
	f, err := NewReader(bytes.NewReader(data), int64(len(data)), "fuzz")
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error message")
		}
		return
	}
	defer f.Close()
	for _, info := range f.Tensors() {
		b, err := f.Bytes(info.Name)
		if err != nil {
			t.Fatalf("Bytes(%q) after a successful open: %v", info.Name, err)
		}
		if len(b) != info.Len()*info.DType.Size() {
			t.Fatalf("Bytes(%q): %d bytes for %v %v", info.Name, len(b), info.DType, info.Shape)
		}
		if info.Len() <= 1<<16 {
			if v, err := f.Float32(info.Name); err != nil || len(v) != info.Len() {
				t.Fatalf("Float32(%q): %d values, %v", info.Name, len(v), err)
			}
		}
	}
}

// FuzzPth opens arbitrary bytes as a checkpoint, seeded with zip archives.
// The tiny.pth seed is 1.1 MB, and the fuzzer minimizes each new input it
// keeps by trying to drop bytes one at a time, which for an input that
// size takes far longer than a short run; run it with a short
// -fuzzminimizetime (e.g. 3s) so the time goes into fuzzing.
func FuzzPth(f *testing.F) {
	tiny, err := os.ReadFile(tinyPth)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tiny)
	for _, s := range seedArchives() {
		f.Add(s)
	}
	f.Fuzz(fuzzOpen)
}

// FuzzSafetensors opens arbitrary bytes as a checkpoint, seeded with
// safetensors files.
func FuzzSafetensors(f *testing.F) {
	data := pattern(64, 5)
	f.Add(buildSafetensors([]stEntry{
		{"w", "BF16", []int64{4, 4}, [2]int64{0, 32}},
		{"b", "F32", []int64{4}, [2]int64{32, 48}},
		{"h", "F16", []int64{2, 2, 2}, [2]int64{48, 64}},
	}, map[string]string{"format": "pt"}, data))
	f.Add(buildSafetensors([]stEntry{{"s", "F32", nil, [2]int64{0, 4}}}, nil, data[:4]))
	// The real header of small.safetensors, with its data cut short.
	small, err := os.ReadFile(smallST)
	if err != nil {
		f.Fatal(err)
	}
	n := 8 + int(min(binary.LittleEndian.Uint64(small), 1<<20))
	f.Add(small[:min(len(small), n+64)])
	f.Fuzz(fuzzOpen)
}

func BenchmarkOpenSmallPth(b *testing.B) {
	for b.Loop() {
		f, err := Open(smallPth)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

func BenchmarkOpenSmallSafetensors(b *testing.B) {
	for b.Loop() {
		f, err := Open(smallST)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
