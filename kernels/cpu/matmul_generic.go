//go:build !amd64 || purego

package cpu

// bestKernels returns the portable kernel set: this build has no SIMD
// kernels.
func bestKernels() *kernelSet { return genericKernels() }

// allKernels returns every kernel set this CPU can run, for tests.
func allKernels() []*kernelSet { return []*kernelSet{genericKernels()} }
