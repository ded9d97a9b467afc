package vision

import "unsafe"

// floatBytes views f as its little-endian bytes (amd64, arm64).
func floatBytes(f []float32) []byte {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
}
