package core

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// FuzzState feeds arbitrary bytes to the state file readers
// (UnmarshalBinary, and ReadFile through a file): they must never panic,
// and whatever they accept must serialize back to the same bytes.
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
	withCRC := func(b []byte) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
		return b
	}
	nan := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(nan[stateHeader+8:], 0x7fc00000)
	dims := bytes.Clone(valid)
	binary.LittleEndian.PutUint32(dims[12:], 1<<30)
	f.Add(valid)
	f.Add(withCRC(nan))
	f.Add(withCRC(dims))
	f.Add(valid[:stateHeader])
	f.Add(valid[:len(valid)-1])
	f.Add([]byte(stateMagic))
	f.Add([]byte{})
	path := filepath.Join(f.TempDir(), "state")
	f.Fuzz(func(t *testing.T, data []byte) {
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
