//go:build linux

package hugemem

import (
	"syscall"
	"unsafe"
)

// madvHugepage is MADV_HUGEPAGE (not in package syscall on every
// architecture).
const madvHugepage = 14

// alignOffset is how far into b the first huge page boundary lies.
func alignOffset(b []byte) int {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return int((Size - p%Size) % Size)
}

// advise asks for huge pages over b's whole huge pages, then drops any
// pages already there (memory the heap reuses was faulted in 4 KiB at a
// time, and the hint alone does not change pages that exist), so that the
// first write faults in huge pages. b is zero before and after: a dropped
// private anonymous page reads as zeros. Errors (a kernel without THP, or
// THP "never") are ignored: the memory works the same, only slower.
func advise(b []byte) {
	if n := len(b) / Size * Size; n > 0 {
		if syscall.Madvise(b[:n], madvHugepage) == nil {
			_ = syscall.Madvise(b[:n], syscall.MADV_DONTNEED)
		}
	}
}
