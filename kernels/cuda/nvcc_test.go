package cuda

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/kernels/kernelstest"
)

// TestNVCCCompiles compiles the embedded kernels with nvcc when it is on
// PATH, so that a syntax or type error in the CUDA sources shows on a
// machine without a GPU (NVRTC, which the backend uses, compiles the same
// source on the GPU machine; it includes no headers, so neither may the
// sources).
func TestNVCCCompiles(t *testing.T) {
	nvcc, err := exec.LookPath("nvcc")
	if err != nil {
		t.Skip("no nvcc on PATH")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "goose_kernels.cu")
	if err := os.WriteFile(src, []byte(kernelSource), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nvcc, "-arch=sm_90", "-std=c++17", "--ptx", "-o", filepath.Join(dir, "k.ptx"), src)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nvcc: %v\n%s", err, out)
	}
}

// TestConformanceRef checks every op against its float64 reference (the
// shared suite in kernelstest; TestConformance also compares with the CPU
// backend).
func TestConformanceRef(t *testing.T) {
	kernelstest.Run(t, newGPU(t))
}
