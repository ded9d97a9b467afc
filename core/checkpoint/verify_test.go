package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "rwkv7", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// centralEntries returns the offsets, within b, of each central directory
// record, by entry name.
func centralEntries(t *testing.T, b []byte) map[string]int {
	t.Helper()
	eocd := bytes.LastIndex(b, []byte("PK\x05\x06"))
	if eocd < 0 {
		t.Fatal("no end record")
	}
	le := binary.LittleEndian
	off := int(le.Uint32(b[eocd+16:]))
	out := map[string]int{}
	for bytes.HasPrefix(b[off:], []byte("PK\x01\x02")) {
		n, x, c := int(le.Uint16(b[off+28:])), int(le.Uint16(b[off+30:])), int(le.Uint16(b[off+32:]))
		out[string(b[off+46:off+46+n])] = off
		off += 46 + n + x + c
	}
	return out
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"tiny.pth", "small.pth", "small.safetensors"} {
		f, err := Open(filepath.Join("..", "..", "testdata", "rwkv7", name))
		if err != nil {
			t.Fatal(err)
		}
		var last, total int64
		if err := f.Verify(ctx, func(d, n int64) { last, total = d, n }); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if last != total {
			t.Errorf("%s: progress ended at %d of %d", name, last, total)
		}
		f.Close()
	}

	// One flipped bit in a storage: the file loads (nothing else notices),
	// Verify names the damaged entry and a tensor in it.
	raw := readFixture(t, "tiny.pth")
	f, err := NewReader(bytes.NewReader(raw), int64(len(raw)), "tiny.pth")
	if err != nil {
		t.Fatal(err)
	}
	off := f.tensors[f.index["blocks.1.att.key.weight"]].off
	raw[off+5] ^= 0x10
	path := writeTemp(t, "damaged.pth", raw)
	for _, open := range []func() (*File, error){
		func() (*File, error) { return Open(path) },
		func() (*File, error) { return NewReader(bytes.NewReader(raw), int64(len(raw)), path) },
	} {
		f, err := open()
		if err != nil {
			t.Fatalf("damaged file does not open: %v", err)
		}
		err = f.Verify(ctx, nil)
		f.Close()
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), "blocks.1.att.key.weight") || !strings.Contains(err.Error(), path) {
			t.Errorf("Verify of a damaged file: %v", err)
		}
		t.Log(err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	f, _ = Open(filepath.Join("..", "..", "testdata", "rwkv7", "tiny.pth"))
	if err := f.Verify(cancelled, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Verify: %v", err)
	}
	f.Close()
}

// TestOverlappingEntries: two directory entries pointing at the same bytes
// (or one entry shifted into another) used to load, with two tensors
// reading each other's data.
func TestOverlappingEntries(t *testing.T) {
	raw := readFixture(t, "tiny.pth")
	cd := centralEntries(t, raw)
	le := binary.LittleEndian
	moved := cd["tiny/data/1"]
	for _, target := range []string{"tiny/data/0", "tiny/data/2"} {
		bad := bytes.Clone(raw)
		// data/1's local header offset becomes target's: two storages
		// read the same bytes.
		le.PutUint32(bad[moved+42:], le.Uint32(raw[cd[target]+42:]))
		_, err := NewReader(bytes.NewReader(bad), int64(len(bad)), "x.pth")
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "overlap") {
			t.Errorf("data/1 moved onto %s: %v", target, err)
		}
	}
}

// TestTruncatedPthSaysTruncated: a .pth cut short lacks the zip directory;
// the error says "truncated" (it said "not a valid zip file").
func TestTruncatedPthSaysTruncated(t *testing.T) {
	raw := readFixture(t, "tiny.pth")
	for _, n := range []int{100, len(raw) / 2, len(raw) - 30} {
		_, err := NewReader(bytes.NewReader(raw[:n]), int64(n), "cut.pth")
		if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), "truncated") || strings.Contains(err.Error(), "zip: zip:") {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
	_, err := NewReader(bytes.NewReader(raw[:len(raw)/2]), int64(len(raw)/2), "cut.pth")
	t.Log(err)
}
