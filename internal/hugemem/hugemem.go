// Package hugemem allocates the large byte slices that hold model weights
// in memory backed by transparent huge pages where the system offers them.
//
// Decode streams every weight from memory once per token. With 4 KiB pages
// the CPU walks a page table entry for every 4 KiB it reads, and on a
// desktop Linux whose THP setting is "madvise" (the Debian default) the Go
// heap never gets huge pages; a weight read through 2 MiB pages runs about
// a fifth faster (kernels/cpu BenchmarkWeightPages). Weight files mapped
// from ext4 or XFS already get large page-cache folios on recent kernels;
// this package gives the same to weights made in memory: int8 weights
// quantized at load, and the random weights of benchmarks.
package hugemem

// Size is the huge page size the allocations are aligned to.
const Size = 2 << 20

// Threshold is the smallest allocation worth a huge-page hint: below it
// Make returns plain heap memory.
const Threshold = 1 << 20

// Make returns a zeroed slice of n bytes. When n ≥ Threshold, the memory
// is asked to be backed by huge pages (on Linux) before it is first
// touched; the hint is best effort and never an error. The memory belongs
// to the Go heap: the garbage collector frees it as usual.
func Make(n int) []byte {
	if n < Threshold {
		return make([]byte, n)
	}
	// Over-allocate so that the slice starts on a huge page boundary and
	// covers whole huge pages where it can.
	b := make([]byte, n+Size)
	off := alignOffset(b)
	b = b[off : off+n : off+n]
	advise(b)
	return b
}
