package core

import (
	"unsafe"
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
