package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

func TestSafetensors(t *testing.T) {
	data := pattern(64, 5)
	valid := []stEntry{
		{"w", "BF16", []int64{4, 4}, [2]int64{0, 32}},
		{"b", "F32", []int64{4}, [2]int64{32, 48}},
		{"h", "F16", []int64{2, 2, 2}, [2]int64{48, 64}},
	}
	with := func(i int, f func(*stEntry)) []stEntry {
		es := slices.Clone(valid)
		f(&es[i])
		return es
	}
	tests := []struct {
		name string
		file []byte
		want []wantTensor // key is unused; lo/hi index the data buffer
		err  error
		msg  string
	}{
		{
			name: "three dtypes with metadata",
			file: buildSafetensors(valid, map[string]string{"format": "pt"}, data),
			want: []wantTensor{
				{"b", kernels.F32, []int{4}, "", 32, 48},
				{"h", kernels.F16, []int{2, 2, 2}, "", 48, 64},
				{"w", kernels.BF16, []int{4, 4}, "", 0, 32},
			},
		},
		{
			name: "scalar and empty tensors",
			file: buildSafetensors([]stEntry{
				{"s", "F32", nil, [2]int64{0, 4}},
				{"e", "BF16", []int64{3, 0}, [2]int64{4, 4}},
			}, nil, data[:4]),
			want: []wantTensor{{"e", kernels.BF16, []int{3, 0}, "", 4, 4}, {"s", kernels.F32, []int{}, "", 0, 4}},
		},
		{
			name: "no tensors",
			file: buildSafetensors(nil, map[string]string{}, nil),
		},
		{
			name: "unknown dtype",
			file: buildSafetensors(with(1, func(e *stEntry) { e.DType = "I64"; e.Shape = []int64{2} }), nil, data),
			err:  ErrDType, msg: `tensor "b": unknown dtype "I64"`,
		},
		{
			name: "offsets past the end",
			file: buildSafetensors(with(2, func(e *stEntry) { e.Offsets = [2]int64{48, 80} }), nil, data),
			err:  ErrTruncated, msg: `tensor "h": truncated (data_offsets [48, 80] outside the 64-byte data buffer)`,
		},
		{
			name: "begin after end",
			file: buildSafetensors(with(2, func(e *stEntry) { e.Offsets = [2]int64{64, 48} }), nil, data),
			err:  ErrTruncated, msg: `tensor "h"`,
		},
		{
			name: "size does not match shape",
			file: buildSafetensors(with(0, func(e *stEntry) { e.Shape = []int64{4, 5} }), nil, data),
			err:  ErrShape, msg: "hold 32 bytes, shape [4 5] needs 40",
		},
		{
			name: "overlap",
			file: buildSafetensors(with(1, func(e *stEntry) { e.Offsets = [2]int64{16, 32} }), nil, data),
			err:  ErrFormat, msg: "gaps or overlaps",
		},
		{
			name: "gap",
			file: buildSafetensors(valid[:2], nil, data[:64]),
			err:  ErrFormat, msg: "tensor data ends at 48 but the data buffer holds 64 bytes",
		},
		{
			name: "negative offset",
			file: rawSafetensors(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, data[:4]),
			err:  ErrFormat, msg: `tensor "x"`,
		},
		{
			name: "three offsets",
			file: rawSafetensors(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, data[:4]),
			err:  ErrFormat, msg: "3 values, want 2",
		},
		{
			name: "negative dimension",
			file: rawSafetensors(`{"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, data[:4]),
			err:  ErrShape,
		},
		{
			name: "overflowing shape",
			file: rawSafetensors(`{"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`, nil),
			err:  ErrShape,
		},
		{
			name: "missing shape",
			file: rawSafetensors(`{"x":{"dtype":"F32","data_offsets":[0,4]}}`, data[:4]),
			err:  ErrFormat, msg: "needs dtype, shape and data_offsets",
		},
		{
			name: "duplicate key",
			file: rawSafetensors(`{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, data[:8]),
			err:  ErrFormat, msg: "duplicate key",
		},
		{
			name: "metadata with a number",
			file: rawSafetensors(`{"__metadata__":{"epoch":3}}`, nil),
			err:  ErrFormat, msg: "__metadata__",
		},
		{
			name: "trailing garbage after JSON",
			file: rawSafetensors(`{}{}`, nil),
			err:  ErrFormat, msg: "data after the JSON object",
		},
		{
			name: "JSON array",
			file: rawSafetensors(`[{}]`, nil),
			err:  ErrFormat,
		},
		{
			name: "header longer than file",
			file: append(binary.LittleEndian.AppendUint64(nil, 1000), `{"x":1}`...),
			err:  ErrTruncated, msg: "runs past the end",
		},
		{
			name: "header length huge",
			file: append(binary.LittleEndian.AppendUint64(nil, 1<<62), `{}`...),
			err:  ErrFormat, msg: "out of range",
		},
		{
			name: "invalid UTF-8",
			file: rawSafetensors("{\"\xff\":1}", nil),
			err:  ErrFormat, msg: "UTF-8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewReader(bytes.NewReader(tt.file), int64(len(tt.file)), "m.safetensors")
			if tt.err != nil {
				if err == nil {
					t.Fatalf("opened without error, want %v", tt.err)
				}
				if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("error %q, want %v containing %q", err, tt.err, tt.msg)
				}
				if !strings.HasPrefix(err.Error(), "checkpoint m.safetensors: ") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Format() != "safetensors" {
				t.Errorf("Format() = %q", f.Format())
			}
			base := len(tt.file) - len(dataOf(tt.file))
			storages := map[string][]byte{"": tt.file[base:]}
			checkBuilt(t, f, tt.want, storages)
		})
	}
}

// dataOf returns the data buffer of a safetensors file.
func dataOf(file []byte) []byte {
	n := binary.LittleEndian.Uint64(file)
	return file[8+n:]
}
