package core

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzState feeds hostile state files to the readers (UnmarshalBinary,
// and ReadFile through a file): they must never panic, must agree, and
// whatever they accept must serialize back to the same bytes.
//
// The state of the smallest model is 17 KB, and the fuzzer minimizes every
// new input byte by byte, so the fuzz input is a small edit of a valid
// file instead (see stateEdit); an input starting with 'R' is used raw.
func FuzzState(f *testing.F) {
	cfg := Config{Layers: 1, Width: 64, Vocab: 256, DecayLoRA: 16, AlphaLoRA: 16, GateLoRA: 16}
	src, err := RandomSource(cfg, 1)
	if err != nil {
		f.Fatal(err)
	}
	m, err := Load(src, LoadOptions{Backend: newCPU(f)})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	st, _ := m.NewState()
	defer st.Free()
	valid, err := st.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("R"))
	f.Add(append([]byte("R"), valid[:stateHeader]...))
	f.Add([]byte{0})                             // the valid file
	f.Add([]byte{1, 0, 0, 0, 0})                 // one byte poked, CRC fixed
	f.Add([]byte{1, 8, 0, 0x7f, 0xc0})           // a NaN, CRC fixed
	f.Add([]byte{2, 0x10, 0, 0})                 // cut short
	f.Add([]byte{3, 12, 0, 1})                   // another layer count, CRC fixed
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 99}) // header bytes changed
	path := filepath.Join(f.TempDir(), "state")
	f.Fuzz(func(t *testing.T, edit []byte) {
		data := stateEdit(valid, edit)
		s, err := m.NewState()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Free()
		if err := s.UnmarshalBinary(data); err == nil {
			back, err := s.MarshalBinary()
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("accepted %d bytes that do not round-trip", len(data))
			}
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		errFile := s.ReadFile(path)
		errMem := s.UnmarshalBinary(data)
		if (errFile == nil) != (errMem == nil) {
			t.Fatalf("ReadFile says %v, UnmarshalBinary %v", errFile, errMem)
		}
	})
}

// stateEdit builds a state file from a valid one and a fuzz input: 'R'
// and the rest is used as is; otherwise op = edit[0] selects what the
// following (offset uint16, value) triples do: op&3 == 1 pokes bytes, 2
// also truncates at the first offset, 3 pokes only the header; op&4 keeps
// the checksum stale (otherwise it is fixed, so that the checks behind
// it are reached).
func stateEdit(valid, edit []byte) []byte {
	if len(edit) > 0 && edit[0] == 'R' {
		return edit[1:]
	}
	b := bytes.Clone(valid)
	if len(edit) == 0 {
		return b
	}
	op := edit[0]
	for i := 1; i+3 <= len(edit); i += 3 {
		off := int(binary.LittleEndian.Uint16(edit[i:]))
		if op&3 == 3 {
			off %= stateHeader
		}
		off %= len(b)
		if op&3 == 2 && i == 1 {
			b = b[:off]
			break
		}
		b[off] = edit[i+2]
	}
	if op&4 == 0 && len(b) >= 4 {
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	}
	return b
}
