package cpu

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/internal/hugemem"
	"github.com/goose-rwkv/goose/kernels"
)

// Weight shapes [N,K] of the RWKV-7 0.1B (C=768) and 0.4B (C=1024) models:
// attention and FFN projections and the vocabulary head.
var gemvShapes = []struct {
	name string
	N, K int
}{
	{"768x768", 768, 768},
	{"3072x768", 3072, 768},
	{"768x3072", 768, 3072},
	{"head65536x768", 65536, 768},
	{"1024x1024", 1024, 1024},
	{"4096x1024", 4096, 1024},
	{"1024x4096", 1024, 4096},
	{"head65536x1024", 65536, 1024},
}

// coldSet is the bytes of weights a benchmark cycles through so that each
// product reads its matrix from memory, not from the last-level cache, as
// decode does with a whole model.
const coldSet = 256 << 20

// coldWeights returns enough copies of an [n,k] bf16 matrix to fill
// coldSet, so that consecutive iterations read different memory.
func coldWeights(n, k int, dt kernels.DType) [][]byte {
	size := n * k * dt.Size()
	copies := max(1, coldSet/size)
	ws := make([][]byte, copies)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range ws {
		w := make([]byte, size)
		if i > 0 {
			copy(w, ws[0]) // same values, different memory
		} else {
			for j := 0; j < len(w); j += 2 {
				// Small bf16 values: random mantissa and sign, exponent near 2^-4.
				w[j] = byte(r.Uint32())
				w[j+1] = 0x3d | byte(r.Uint32()&1)<<7
			}
		}
		ws[i] = w
	}
	return ws
}

// copySize is the buffer BenchmarkCopyBandwidth copies.
const copySize = 256 << 20

// copyBuffers returns a source and destination of copySize bytes, both
// written so that their pages are really mapped.
func copyBuffers() (src, dst []byte) {
	src, dst = make([]byte, copySize), make([]byte, copySize)
	for i := range src {
		src[i] = byte(i)
	}
	copy(dst, src)
	return src, dst
}

// copyAll copies src to dst with copy() split over p's threads.
func copyAll(p *pool, dst, src []byte) {
	p.For(len(src), 1<<20, func(lo, hi int) { copy(dst[lo:hi], src[lo:hi]) })
}

// BenchmarkCopyBandwidth measures the memory bandwidth floor decode is
// compared to: copy() of a 256 MiB buffer split over all threads. The rate
// (MB/s) is bytes copied per second, i.e. bytes read; the same number of
// bytes are written, so the memory traffic is at least twice that.
func BenchmarkCopyBandwidth(b *testing.B) {
	src, dst := copyBuffers()
	p := newPool(runtime.NumCPU())
	defer p.Close()
	b.SetBytes(copySize)
	for b.Loop() {
		copyAll(p, dst, src)
	}
}

// BenchmarkLinearGEMV times decode's x·wᵀ for one token with bf16 weights
// read from memory (cold). MB/s is weight bytes read per second. The
// metric x-copy divides that by the rate of BenchmarkCopyBandwidth's copy,
// run (untimed) after every GiB of weights so that both see the same
// machine load: 1 means a product runs as fast as copying its weights.
func BenchmarkLinearGEMV(b *testing.B) {
	src, cdst := copyBuffers()
	for _, ks := range benchKernels() {
		p := newPoolWith(runtime.NumCPU(), ks)
		defer p.Close()
		for _, s := range gemvShapes {
			b.Run(fmt.Sprintf("%s/%s", ks.name, s.name), func(b *testing.B) {
				ws := coldWeights(s.N, s.K, kernels.BF16)
				x := randActs(rand.New(rand.NewPCG(3, 4)), s.K)
				dst := make([]float32, s.N)
				bytes := s.N * s.K * 2
				b.SetBytes(int64(bytes))
				var copyTime time.Duration
				copies, sinceCopy := 0, 0
				i := 0
				for b.Loop() {
					linear(p, dst, x, 1, s.K, ws[i%len(ws)], kernels.BF16, s.N)
					i++
					if sinceCopy += bytes; sinceCopy >= 1<<30 {
						b.StopTimer()
						t0 := time.Now()
						copyAll(p, cdst, src)
						copyTime += time.Since(t0)
						copies++
						sinceCopy = 0
						b.StartTimer()
					}
				}
				if copies > 0 {
					rate := float64(bytes) * float64(b.N) / b.Elapsed().Seconds()
					b.ReportMetric(rate/(float64(copies)*copySize/copyTime.Seconds()), "x-copy")
				}
			})
		}
	}
}

// BenchmarkLinearGEMM times prefill's x·wᵀ for T tokens with bf16
// weights and reports GFLOP/s (2·T·N·K per product) and tokens/s.
func BenchmarkLinearGEMM(b *testing.B) {
	for _, ks := range benchKernels() {
		p := newPoolWith(runtime.NumCPU(), ks)
		defer p.Close()
		for _, T := range []int{64, 512} {
			for _, s := range gemvShapes {
				if s.N == 65536 || (ks.name == "generic" && T > 64) {
					continue
				}
				b.Run(fmt.Sprintf("%s/T=%d/%s", ks.name, T, s.name), func(b *testing.B) {
					ws := coldWeights(s.N, s.K, kernels.BF16)
					x := randActs(rand.New(rand.NewPCG(3, 4)), T*s.K)
					dst := make([]float32, T*s.N)
					i := 0
					for b.Loop() {
						linear(p, dst, x, T, s.K, ws[i%len(ws)], kernels.BF16, s.N)
						i++
					}
					sec := b.Elapsed().Seconds()
					b.ReportMetric(2*float64(T*s.N*s.K)*float64(b.N)/sec/1e9, "GFLOP/s")
					b.ReportMetric(float64(T*b.N)/sec, "tok/s")
				})
			}
		}
	}
}

// BenchmarkMatMul times the LoRA products x·w with w [C,r] and [r,C] in
// bf16 (cold), for decode (T=1, see MB/s of weights) and prefill (T=64,
// see GFLOP/s).
func BenchmarkMatMul(b *testing.B) {
	shapes := []struct{ K, N int }{{768, 64}, {64, 768}, {1024, 128}, {128, 1024}, {768, 320}, {320, 768}}
	for _, ks := range benchKernels() {
		p := newPoolWith(runtime.NumCPU(), ks)
		defer p.Close()
		for _, T := range []int{1, 64} {
			for _, s := range shapes {
				b.Run(fmt.Sprintf("%s/T=%d/%dx%d", ks.name, T, s.K, s.N), func(b *testing.B) {
					ws := coldWeights(s.K, s.N, kernels.BF16)
					x := randActs(rand.New(rand.NewPCG(3, 4)), T*s.K)
					dst := make([]float32, T*s.N)
					b.SetBytes(int64(s.K * s.N * 2))
					i := 0
					for b.Loop() {
						matmul(p, dst, x, T, s.K, ws[i%len(ws)], kernels.BF16, s.N)
						i++
					}
					sec := b.Elapsed().Seconds()
					b.ReportMetric(2*float64(T*s.N*s.K)*float64(b.N)/sec/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// benchKernels is the fastest kernel set and, for comparison, the AVX2
// one when the fastest is AVX-512, and the generic one.
func benchKernels() []*kernelSet {
	best := bestKernels()
	if best.name == "generic" {
		return []*kernelSet{best}
	}
	ks := []*kernelSet{best}
	for _, k := range allKernels() {
		if k.name == "avx2" && best.name != "avx2" {
			ks = append(ks, k)
		}
	}
	return append(ks, genericKernels())
}

// BenchmarkWeightPages times decode's x·wᵀ (4096×1024 bf16, 512 MiB of
// copies cycled, so every product reads memory) with the weights in plain
// heap memory and in memory from hugemem.Make (transparent huge pages
// where the system offers them, as weights quantized at load get). On
// the 2-vCPU Sapphire Rapids VM the huge pages read about a fifth faster.
func BenchmarkWeightPages(b *testing.B) {
	const n, k, copies = 4096, 1024, 64
	size := n * k * 2
	base := coldWeights(n, k, kernels.BF16)[0]
	p := newPool(runtime.NumCPU())
	defer p.Close()
	for _, alloc := range []struct {
		name string
		make func(int) []byte
	}{{"heap", func(n int) []byte { return make([]byte, n) }}, {"hugemem", hugemem.Make}} {
		b.Run(alloc.name, func(b *testing.B) {
			w := alloc.make(size * copies)
			for i := range copies {
				copy(w[i*size:], base)
			}
			x := randActs(rand.New(rand.NewPCG(3, 4)), k)
			dst := make([]float32, n)
			b.SetBytes(int64(size))
			i := 0
			for b.Loop() {
				linear(p, dst, x, 1, k, w[(i%copies)*size:(i%copies+1)*size], kernels.BF16, n)
				i++
			}
		})
	}
}

// BenchmarkLinearGEMVI8 times decode's x·wᵀ for one token with int8
// weights (I8: per-row scales), on one and on all threads: read from
// memory (cold, 256 MiB of copies cycled) for the 1.5B model's 4096×1024
// and 2048×8192 shapes, and from L2 for 256×2048 (one 512 KiB copy), where
// the kernel's own speed shows. MB/s is int8 weight bytes per second. The
// kernel sets are every SIMD one: avx512vnni (the integer kernel, dotQ4)
// against avx512 (the float one it replaces) and avx2.
func BenchmarkLinearGEMVI8(b *testing.B) {
	shapes := []struct {
		name string
		N, K int
		hot  bool
	}{
		{"4096x1024", 4096, 1024, false},
		{"2048x8192", 2048, 8192, false},
		{"l2-256x2048", 256, 2048, true},
	}
	for _, ks := range allKernels() {
		if ks.name == "generic" {
			continue
		}
		for _, threads := range []int{1, runtime.NumCPU()} {
			p := newPoolWith(threads, ks)
			defer p.Close()
			for _, s := range shapes {
				b.Run(fmt.Sprintf("%s/threads=%d/%s", ks.name, threads, s.name), func(b *testing.B) {
					ws := i8Weights(s.N, s.K, s.hot)
					scale := randActs(rand.New(rand.NewPCG(5, 6)), s.N)
					x := randActs(rand.New(rand.NewPCG(3, 4)), s.K)
					dst := make([]float32, s.N)
					sums := make([]rowSums, len(ws))
					for i, w := range ws {
						sums[i].get(p, w, s.N, s.K)
					}
					b.SetBytes(int64(s.N * s.K))
					i := 0
					for b.Loop() {
						linearI8(p, dst, x, 1, s.K, ws[i%len(ws)], scale, &sums[i%len(ws)], s.N)
						i++
					}
				})
			}
		}
	}
}

// i8Weights returns one [n,k] int8 matrix of random values in
// [−127, 127], or with cold enough copies of it in huge-page memory
// (hugemem, as weights quantized at load get) to fill coldSet.
func i8Weights(n, k int, hot bool) [][]byte {
	size := n * k
	copies := 1
	if !hot {
		copies = max(1, coldSet/size)
	}
	all := hugemem.Make(size * copies)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range size {
		all[i] = byte(int8(r.IntN(255) - 127))
	}
	ws := make([][]byte, copies)
	for i := range ws {
		ws[i] = all[i*size : (i+1)*size]
		copy(ws[i], all[:size])
	}
	return ws
}
