package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/regfile"
	"github.com/goose-rwkv/goose/kernels"
)

// State is the recurrent state of a model: per layer, the previous token's
// time-mix input (ln1 output), its channel-mix input (ln2 output), and the
// float32 WKV matrices [heads][value row][key column]. Its size is fixed:
// it does not grow with the context.
//
// A State lives on its model's backend. It is not safe for concurrent use.
type State struct {
	m   *Model
	buf kernels.Tensor // [Layers·(2+HeadSize), C]
}

// rowsPerLayer: one att row, one ffn row, HeadSize rows of C for the WKV
// matrices (H·64·64 = 64·C elements).
func (m *Model) rowsPerLayer() int { return 2 + m.cfg.HeadSize }

// NewState returns a zero state, the default initial state.
func (m *Model) NewState() (*State, error) {
	t, err := m.be.Alloc(kernels.F32, m.cfg.Layers*m.rowsPerLayer(), m.cfg.Width)
	if err != nil {
		return nil, fmt.Errorf("allocate state: %w", err)
	}
	return &State{m: m, buf: t}, nil
}

func (s *State) att(l int) kernels.Tensor { return s.buf.Row(l * s.m.rowsPerLayer()) }
func (s *State) ffn(l int) kernels.Tensor { return s.buf.Row(l*s.m.rowsPerLayer() + 1) }
func (s *State) wkv(l int) kernels.Tensor {
	r := l * s.m.rowsPerLayer()
	t := s.buf.Slice(r+2, r+s.m.rowsPerLayer())
	return t.Reshape(t.Len()/64, 64)
}

// Model returns the model the state belongs to.
func (s *State) Model() *Model { return s.m }

// Clone returns an independent copy of s.
func (s *State) Clone() (*State, error) {
	c, err := s.m.NewState()
	if err != nil {
		return nil, err
	}
	if err := c.CopyFrom(s); err != nil {
		c.Free()
		return nil, err
	}
	return c, nil
}

// CopyFrom overwrites s with src, which must belong to the same model.
func (s *State) CopyFrom(src *State) error {
	if !s.buf.Valid() || !src.buf.Valid() {
		return ErrClosed
	}
	if src.m != s.m {
		return errors.New("state: copy between states of different models")
	}
	s.m.be.Copy(s.buf, src.buf)
	return s.m.be.Sync()
}

// Reset sets s to the zero state.
func (s *State) Reset() error {
	if !s.buf.Valid() {
		return ErrClosed
	}
	return s.m.be.Upload(s.buf, make([]byte, 4*s.buf.Len()))
}

// Free releases the state's memory. The state cannot be used afterwards.
func (s *State) Free() {
	if s.buf.Valid() {
		s.m.be.Free(s.buf)
		s.buf = kernels.Tensor{}
	}
}

// Bytes is the size of the state's data.
func (s *State) Bytes() int64 { return int64(s.buf.Len()) * 4 }

// Floats returns the state's data, layer by layer: ln1-shift [C], ln2-shift
// [C], then the WKV matrices [H][64][64].
func (s *State) Floats() ([]float32, error) {
	if !s.buf.Valid() {
		return nil, ErrClosed
	}
	f := make([]float32, s.buf.Len())
	if err := s.m.be.Download(half.Bytes(f), s.buf); err != nil {
		return nil, err
	}
	return f, nil
}

// Layer splits Floats' result into one layer's parts.
func (s *State) Layer(f []float32, l int) (att, ffn, wkv []float32) {
	C := s.m.cfg.Width
	base := l * s.m.rowsPerLayer() * C
	return f[base : base+C], f[base+C : base+2*C], f[base+2*C : base+s.m.rowsPerLayer()*C]
}

// The serialized state: magic, version, dims, float32 data, CRC-32 (IEEE)
// of everything before it. All integers little-endian.
const (
	stateMagic   = "GOOSESTA"
	stateVersion = 1
)

// ErrStateFormat is returned for data that is not a serialized state.
var ErrStateFormat = errors.New("state: not a Goose state file")

// MarshalBinary serializes s in a versioned format with a checksum.
func (s *State) MarshalBinary() ([]byte, error) {
	f, err := s.Floats()
	if err != nil {
		return nil, err
	}
	c := s.m.cfg
	var b bytes.Buffer
	b.WriteString(stateMagic)
	for _, v := range []uint32{stateVersion, uint32(c.Layers), uint32(c.Width), uint32(c.HeadSize)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.Write(half.Bytes(f))
	binary.Write(&b, binary.LittleEndian, crc32.ChecksumIEEE(b.Bytes()))
	return b.Bytes(), nil
}

// stateHeader is the size of the serialized state's header: magic,
// version, layers, width, head size.
const stateHeader = len(stateMagic) + 16

// checkHeader validates a serialized state's header against s's model.
func (s *State) checkHeader(h []byte) error {
	if len(h) < stateHeader || string(h[:len(stateMagic)]) != stateMagic {
		return ErrStateFormat
	}
	le := binary.LittleEndian
	if v := le.Uint32(h[8:]); v != stateVersion {
		return fmt.Errorf("state: version %d unsupported (this build reads version %d)", v, stateVersion)
	}
	c := s.m.cfg
	L, C, N := int64(le.Uint32(h[12:])), int64(le.Uint32(h[16:])), int64(le.Uint32(h[20:]))
	if L != int64(c.Layers) || C != int64(c.Width) || N != int64(c.HeadSize) {
		return fmt.Errorf("state: saved for a model with %d layers × width %d, this model has %d × %d", L, C, c.Layers, c.Width)
	}
	return nil
}

// serializedSize is the length of MarshalBinary's output for s.
func (s *State) serializedSize() int64 { return int64(stateHeader) + 4*int64(s.buf.Len()) + 4 }

// UnmarshalBinary restores s from MarshalBinary's output. The data must
// come from a model of the same dimensions, pass its checksum, and hold
// only finite numbers (a NaN would poison every later token).
func (s *State) UnmarshalBinary(data []byte) error {
	if !s.buf.Valid() {
		return ErrClosed
	}
	if len(data) < stateHeader+4 {
		return ErrStateFormat
	}
	if err := s.checkHeader(data[:stateHeader]); err != nil {
		return err
	}
	want := s.serializedSize()
	if int64(len(data)) != want {
		return fmt.Errorf("state: %d bytes, want %d: %w", len(data), want, io.ErrUnexpectedEOF)
	}
	le := binary.LittleEndian
	body := data[stateHeader : want-4]
	if sum := le.Uint32(data[want-4:]); sum != crc32.ChecksumIEEE(data[:want-4]) {
		return errors.New("state: checksum mismatch: the data is corrupt")
	}
	if i := weights.FirstNonFinite(kernels.F32, body); i >= 0 {
		return fmt.Errorf("state: %s is %s: %w (the state is corrupt)", s.describeIndex(i), weights.Describe(kernels.F32, body, i), ErrNotFinite)
	}
	return s.m.be.Upload(s.buf, body)
}

// describeIndex names element i of Floats' layout.
func (s *State) describeIndex(i int) string {
	C := s.m.cfg.Width
	per := s.m.rowsPerLayer() * C
	l, j := i/per, i%per
	switch {
	case j < C:
		return fmt.Sprintf("layer %d time-mix shift, element %d", l, j)
	case j < 2*C:
		return fmt.Sprintf("layer %d channel-mix shift, element %d", l, j-C)
	}
	j -= 2 * C
	hs := s.m.cfg.HeadSize
	return fmt.Sprintf("layer %d WKV matrix, head %d, row %d, column %d", l, j/(hs*hs), j/hs%hs, j%hs)
}

// ReadFile restores s from a file holding MarshalBinary's output (what
// `gooseapp chat` writes with /save). Only a regular file is opened (a
// FIFO or a device is refused at once), its header is checked against the
// model and its size against the state's before the data is read, so
// naming a large file of another kind costs nothing.
func (s *State) ReadFile(path string) error {
	if !s.buf.Valid() {
		return ErrClosed
	}
	f, size, err := regfile.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, stateHeader)
	if _, err := io.ReadFull(f, head); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%s: %w (%d bytes)", path, ErrStateFormat, size)
		}
		return err // an *fs.PathError: it names the file
	}
	if err := s.checkHeader(head); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if want := s.serializedSize(); size != want {
		return fmt.Errorf("%s: state: %d bytes, want %d for this model: %w", path, size, want, io.ErrUnexpectedEOF)
	}
	data := make([]byte, size)
	copy(data, head)
	if _, err := io.ReadFull(f, data[stateHeader:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) { // it shrank since the size check
			return fmt.Errorf("%s: state: %w", path, err)
		}
		return err
	}
	if err := s.UnmarshalBinary(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// WriteFile writes MarshalBinary's output to path atomically: a crash
// leaves the old file or the new one, never a mix.
func (s *State) WriteFile(path string) error {
	data, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, 0o644)
}
