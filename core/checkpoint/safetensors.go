package checkpoint

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"unicode/utf8"

	"github.com/goose-rwkv/goose/kernels"
)

// maxSafetensorsHeader caps the JSON header, as the reference
// implementation does (100 MB).
const maxSafetensorsHeader = 100 << 20

// stHeader is one tensor's entry in a safetensors header.
type stHeader struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets []uint64 `json:"data_offsets"`
}

// safetensorsDType maps a safetensors dtype string to an element type.
func safetensorsDType(s string) (kernels.DType, bool) {
	switch s {
	case "BF16":
		return kernels.BF16, true
	case "F16":
		return kernels.F16, true
	case "F32":
		return kernels.F32, true
	}
	return 0, false
}

// readSafetensors reads the header of a safetensors file: a u64
// little-endian length N, N bytes of JSON, then the tensor data.
func readSafetensors(r io.ReaderAt, size int64, path string) ([]tensor, error) {
	fail := func(tensor string, err error) error { return &Error{Path: path, Tensor: tensor, Err: err} }

	var lenBuf [8]byte
	if size < 8 {
		return nil, fail("", fmt.Errorf("%w (safetensors file of %d bytes is shorter than its header length)", ErrFormat, size))
	}
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fail("", fmt.Errorf("read header length: %w", err))
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n < 2 || n > maxSafetensorsHeader {
		return nil, fail("", fmt.Errorf("%w (safetensors header length %d is out of range)", ErrFormat, n))
	}
	if n > uint64(size-8) {
		return nil, fail("", fmt.Errorf("%w (safetensors header of %d bytes runs past the end of the %d-byte file)", ErrTruncated, n, size))
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fail("", fmt.Errorf("read header: %w", err))
	}
	if hdr[0] != '{' || !utf8.Valid(hdr) {
		return nil, fail("", fmt.Errorf("%w (safetensors header is not a UTF-8 JSON object)", ErrFormat))
	}
	base := 8 + int64(n)
	bufLen := size - base

	dec := json.NewDecoder(bytes.NewReader(hdr))
	if _, err := dec.Token(); err != nil { // the '{' checked above
		return nil, fail("", fmt.Errorf("%w (safetensors header: %v)", ErrFormat, err))
	}
	seen := make(map[string]bool)
	var out []tensor
	var ranges []span // data offsets relative to base, one per tensor
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fail("", fmt.Errorf("%w (safetensors header: %v)", ErrFormat, err))
		}
		name, ok := tok.(string)
		if !ok {
			return nil, fail("", fmt.Errorf("%w (safetensors header: key is not a string)", ErrFormat))
		}
		if seen[name] {
			return nil, fail(name, fmt.Errorf("%w (duplicate key in safetensors header)", ErrFormat))
		}
		seen[name] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, fail(name, fmt.Errorf("%w (safetensors header: %v)", ErrFormat, err))
		}
		if name == "__metadata__" {
			var meta map[string]string
			if err := json.Unmarshal(raw, &meta); err != nil {
				return nil, fail("", fmt.Errorf("%w (__metadata__ is not a map of strings: %v)", ErrFormat, err))
			}
			continue
		}
		t, rg, err := stTensor(name, raw, bufLen)
		if err != nil {
			return nil, fail(name, err)
		}
		t.off += base
		out = append(out, t)
		ranges = append(ranges, rg)
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, fail("", fmt.Errorf("%w (safetensors header: %v)", ErrFormat, err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail("", fmt.Errorf("%w (safetensors header: data after the JSON object)", ErrFormat))
	}

	// As in the reference implementation, the tensors must tile the data
	// buffer exactly: no gaps, no overlaps, nothing after the last one.
	order := make([]int, len(ranges))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := cmp.Compare(ranges[a].off, ranges[b].off); c != 0 {
			return c
		}
		return cmp.Compare(ranges[a].n, ranges[b].n)
	})
	var end int64
	for _, i := range order {
		if ranges[i].off != end {
			return nil, fail(out[i].info.Name, fmt.Errorf("%w (data_offsets start at %d, want %d: tensors must be packed without gaps or overlaps)",
				ErrFormat, ranges[i].off, end))
		}
		end += ranges[i].n
	}
	if end != bufLen {
		return nil, fail("", fmt.Errorf("%w (tensor data ends at %d but the data buffer holds %d bytes)", ErrFormat, end, bufLen))
	}
	return out, nil
}

// stTensor validates one header entry. It returns the tensor with its offset
// relative to the data buffer, and the byte range it covers.
func stTensor(name string, raw json.RawMessage, bufLen int64) (tensor, span, error) {
	var h stHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return tensor{}, span{}, fmt.Errorf("%w (safetensors header entry is a JSON %s, not an object)", ErrFormat, te.Value)
			}
			return tensor{}, span{}, fmt.Errorf("%w (safetensors header entry: %q is a JSON %s)", ErrFormat, te.Field, te.Value)
		}
		return tensor{}, span{}, fmt.Errorf("%w (safetensors header entry: %v)", ErrFormat, err)
	}
	if h.DType == nil || h.Shape == nil || h.DataOffsets == nil {
		return tensor{}, span{}, fmt.Errorf("%w (safetensors header entry needs dtype, shape and data_offsets)", ErrFormat)
	}
	dt, ok := safetensorsDType(*h.DType)
	if !ok {
		return tensor{}, span{}, fmt.Errorf("%w %q (supported: BF16, F16, F32)", ErrDType, *h.DType)
	}
	esize := int64(dt.Size())
	n, ok := numel(*h.Shape, int64(math.MaxInt)/esize)
	if !ok {
		return tensor{}, span{}, fmt.Errorf("%w (shape %v)", ErrShape, *h.Shape)
	}
	if len(h.DataOffsets) != 2 {
		return tensor{}, span{}, fmt.Errorf("%w (data_offsets has %d values, want 2)", ErrFormat, len(h.DataOffsets))
	}
	begin, end := h.DataOffsets[0], h.DataOffsets[1]
	if begin > end || end > uint64(bufLen) {
		return tensor{}, span{}, fmt.Errorf("%w (data_offsets [%d, %d] outside the %d-byte data buffer)", ErrTruncated, begin, end, bufLen)
	}
	if want := uint64(n * esize); end-begin != want {
		return tensor{}, span{}, fmt.Errorf("%w (data_offsets [%d, %d] hold %d bytes, shape %v needs %d)",
			ErrShape, begin, end, end-begin, *h.Shape, want)
	}
	shape := make([]int, len(*h.Shape))
	for i, d := range *h.Shape {
		shape[i] = int(d)
	}
	t := tensor{info: Info{Name: name, DType: dt, Shape: shape}, off: int64(begin)}
	return t, span{off: int64(begin), n: int64(end - begin)}, nil
}
