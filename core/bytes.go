package core

import (
	"fmt"
	"unsafe"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// float32Bytes views f as its little-endian bytes (Goose runs on
// little-endian machines: amd64 and arm64).
func float32Bytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

func int32Bytes(f []int32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}

// decodeFloats converts little-endian elements of dt into dst.
func decodeFloats(dst []float32, src []byte, dt kernels.DType) error {
	if len(src) != len(dst)*dt.Size() {
		return fmt.Errorf("%d bytes for %d %v elements", len(src), len(dst), dt)
	}
	switch dt {
	case kernels.BF16:
		half.DecodeBF16(dst, src)
	case kernels.F16:
		half.DecodeF16(dst, src)
	case kernels.F32:
		half.DecodeF32(dst, src)
	default:
		return fmt.Errorf("unsupported dtype %v", dt)
	}
	return nil
}
