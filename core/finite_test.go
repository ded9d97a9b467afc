package core

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// poisoned sets one element of one tensor to a non-finite value.
type poisoned struct {
	Source
	name string
	elem int
	val  float32
}

func (p poisoned) Bytes(name string) ([]byte, error) {
	b, err := p.Source.Bytes(name)
	if err != nil || name != p.name {
		return b, err
	}
	info, _ := p.Lookup(name)
	b = bytes.Clone(b)
	copy(b[p.elem*info.DType.Size():], encodeOne(p.val, info.DType))
	return b, nil
}

// TestNonFiniteWeights: NaN/Inf weights used to load silently (logits
// wrote NaN and exited 0). Vectors are checked whole at load, matrices by
// a sample of rows at load and whole by Verify; errors name the tensor.
func TestNonFiniteWeights(t *testing.T) {
	cfg := Config{Layers: 2, Width: 64, Vocab: 65536, DecayLoRA: 16, AlphaLoRA: 16, ValueLoRA: 8, GateLoRA: 16}
	src, err := RandomSource(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name     string
		src      poisoned
		loadErr  string // "" : loads
		checkErr string // Verify's error
	}{
		{"vector", poisoned{src, "blocks.1.att.w0", 5, nan}, "tensor blocks.1.att.w0: element 5 is NaN", ""},
		{"ln vector", poisoned{src, "ln_out.weight", 63, inf}, "tensor ln_out.weight: element 63 is +Inf", ""},
		{"sampled row", poisoned{src, "head.weight", 64*65535 + 7, -inf}, "tensor head.weight: row 65535, column 7 is -Inf", ""},
		{"unsampled row", poisoned{src, "emb.weight", 64*3 + 1, nan}, "", "tensor emb.weight: row 3, column 1 is NaN"},
		{"unsampled lora row", poisoned{src, "blocks.0.att.w1", 16 * 5, inf}, "", "tensor blocks.0.att.w1: row 5, column 0 is +Inf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := WriteSafetensors(path, tc.src); err != nil {
				t.Fatal(err)
			}
			m, err := LoadFile(path, LoadOptions{Backend: newCPU(t)})
			if tc.loadErr != "" {
				if err == nil {
					m.Close()
					t.Fatal("loaded")
				}
				if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), tc.loadErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("load: %v, want %q naming the file", err, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			var last float64
			err = m.Verify(context.Background(), func(f float64) { last = f })
			if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), tc.checkErr) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Verify: %v, want %q naming the file", err, tc.checkErr)
			}
			t.Log(err, last)
		})
	}
	m, err := Load(src, LoadOptions{Backend: newCPU(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Verify(context.Background(), nil); err != nil {
		t.Errorf("Verify of good weights: %v", err)
	}
	m.Close()
	if err := m.Verify(context.Background(), nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Verify after Close: %v", err)
	}
}

// TestNonFiniteState: a restored state holding NaN (with a valid checksum)
// is refused, naming where; a NaN state that reaches generation anyway
// says so instead of "no token can be sampled".
func TestNonFiniteState(t *testing.T) {
	m := randomModel(t)
	st, _ := m.NewState()
	defer st.Free()
	data, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	C := m.cfg.Width
	per := m.rowsPerLayer() * C
	for _, tc := range []struct {
		elem int
		want string
	}{
		{3, "layer 0 time-mix shift, element 3 is NaN"},
		{per + C + 2, "layer 1 channel-mix shift, element 2 is NaN"},
		{per + 2*C + 64*2 + 5, "layer 1 WKV matrix, head 0, row 2, column 5 is NaN"},
	} {
		bad := bytes.Clone(data)
		binary.LittleEndian.PutUint32(bad[stateHeader+4*tc.elem:], 0x7fc00000)
		binary.LittleEndian.PutUint32(bad[len(bad)-4:], crc32.ChecksumIEEE(bad[:len(bad)-4]))
		err := st.UnmarshalBinary(bad)
		if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("element %d: %v, want %q", tc.elem, err, tc.want)
		}
	}

	s := newSession(t, m)
	f := make([]float32, st.buf.Len())
	for i := range f {
		f[i] = float32(math.NaN())
	}
	if err := m.be.Upload(st.buf, half.Bytes(f)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(st); err != nil {
		t.Fatal(err)
	}
	_, err = s.Generate(context.Background(), "Hi", GenerateOptions{MaxTokens: 3}, func(Piece) bool { return true })
	if !errors.Is(err, ErrNotFinite) || !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("generate from a NaN state: %v", err)
	}
}

// encodeOne encodes v in dtype dt.
func encodeOne(v float32, dt kernels.DType) []byte {
	switch dt {
	case kernels.BF16:
		return binary.LittleEndian.AppendUint16(nil, half.F32ToBF16(v))
	case kernels.F16:
		return binary.LittleEndian.AppendUint16(nil, half.F32ToF16(v))
	}
	return binary.LittleEndian.AppendUint32(nil, math.Float32bits(v))
}
