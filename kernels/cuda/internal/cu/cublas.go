package cu

import (
	"fmt"
	"unsafe"
)

// BLAS holds the entry points of libcublas.
type BLAS struct {
	Path string

	cublasCreate       func(h *uintptr) int32
	cublasDestroy      func(h uintptr) int32
	cublasSetStream    func(h, s uintptr) int32
	cublasSetWorkspace func(h uintptr, ws uint64, n uint64) int32
	cublasGetVersion   func(h uintptr, v *int32) int32
	cublasStatusName   func(code int32) string
	cublasGemmExP      uintptr
}

// LoadBLAS opens libcublas (and its libcublasLt), preferring the driver's
// major version.
func LoadBLAS(major int) (*BLAS, error) {
	var firstErr error
	for _, m := range []string{fmt.Sprint(major), fmt.Sprint(major - 1), ""} {
		suffix := ""
		if m != "" {
			suffix = "." + m
		}
		// cuBLAS needs cuBLASLt; load it first so that it resolves even
		// when the toolkit directory is not on the loader's path.
		open("libcublasLt.so" + suffix)
		h, path, err := open("libcublas.so" + suffix)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		b := &BLAS{Path: path}
		s := &symbols{lib: path, handle: h}
		s.fn(&b.cublasCreate, "cublasCreate_v2")
		s.fn(&b.cublasDestroy, "cublasDestroy_v2")
		s.fn(&b.cublasSetStream, "cublasSetStream_v2")
		s.fn(&b.cublasSetWorkspace, "cublasSetWorkspace_v2")
		s.fn(&b.cublasGetVersion, "cublasGetVersion_v2")
		s.fn(&b.cublasStatusName, "cublasGetStatusName")
		b.cublasGemmExP = s.addr("cublasGemmEx")
		if err := s.err(); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, firstErr
}

func (b *BLAS) check(call string, code int32) error {
	if code == 0 {
		return nil
	}
	return &Error{Call: call, Code: int(code), Name: b.cublasStatusName(code)}
}

// Create makes a cuBLAS handle bound to the current context.
func (b *BLAS) Create() (uintptr, error) {
	var h uintptr
	err := b.check("cublasCreate_v2", b.cublasCreate(&h))
	return h, err
}

// Destroy frees a handle.
func (b *BLAS) Destroy(h uintptr) error { return b.check("cublasDestroy_v2", b.cublasDestroy(h)) }

// SetStream makes h queue its work on stream s.
func (b *BLAS) SetStream(h, s uintptr) error {
	return b.check("cublasSetStream_v2", b.cublasSetStream(h, s))
}

// SetWorkspace gives h a fixed device workspace (needed for graph capture).
func (b *BLAS) SetWorkspace(h uintptr, ws uint64, n int64) error {
	return b.check("cublasSetWorkspace_v2", b.cublasSetWorkspace(h, ws, uint64(n)))
}

// Version returns the library's version number, e.g. 130000.
func (b *BLAS) Version(h uintptr) (int, error) {
	var v int32
	err := b.check("cublasGetVersion_v2", b.cublasGetVersion(h, &v))
	return int(v), err
}

// cudaDataType and cublasComputeType values.
const (
	R32F        = 0
	R16F        = 2
	R16BF       = 14
	Compute32F  = 68
	GemmDefault = -1
	OpN         = 0
	OpT         = 1
)

// GemmEx computes C = op(A)·op(B) + beta·C in column-major storage
// (alpha = 1) with fp32 accumulation; beta is 0 or 1.
func (b *BLAS) GemmEx(h uintptr, transA, transB, m, n, k int, A uint64, aType, lda int, B uint64, bType, ldb int, beta float32, C uint64, cType, ldc int) error {
	one, zero := float32(1), beta
	algo := int32(GemmDefault)
	return b.check("cublasGemmEx", call(b.cublasGemmExP, h, uintptr(transA), uintptr(transB),
		uintptr(m), uintptr(n), uintptr(k), uintptr(unsafe.Pointer(&one)),
		uintptr(A), uintptr(aType), uintptr(lda), uintptr(B), uintptr(bType), uintptr(ldb),
		uintptr(unsafe.Pointer(&zero)), uintptr(C), uintptr(cType), uintptr(ldc),
		uintptr(Compute32F), uintptr(uint32(algo))))
}
