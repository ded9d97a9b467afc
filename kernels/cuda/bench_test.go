package cuda

import (
	"fmt"
	"testing"

	"github.com/goose-rwkv/goose/kernels"
)

// rotation is how many copies of a benchmark's operands are cycled through,
// so that repeated runs read device memory rather than the L2 cache.
func rotation(bytes int64) int { return int(max(1, (256<<20)/bytes)) }

func mustAlloc(b *testing.B, g *Backend, dt kernels.DType, rows, cols int) kernels.Tensor {
	t, err := g.Alloc(dt, rows, cols)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// fill sets t to small non-zero values (never time on zeros).
func fill(b *testing.B, g *Backend, t kernels.Tensor) {
	n := t.Len() * t.DType.Size()
	raw := make([]byte, n)
	for i := range raw {
		raw[i] = byte(i*7+3) & 0x3f // small finite values for every dtype
	}
	if err := g.Upload(t, raw); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLinearDecode times one-token Linear (GEMV) on bf16 weights of
// the model shapes; MB/s is weight bytes read per second.
func BenchmarkLinearDecode(b *testing.B) {
	g := newGPU(b)
	for _, s := range []struct{ N, K int }{{768, 768}, {2048, 2048}, {8192, 2048}, {2048, 8192}, {10240, 2560}, {65536, 2048}} {
		b.Run(fmt.Sprintf("bf16_N%d_K%d", s.N, s.K), func(b *testing.B) {
			bytes := int64(s.N) * int64(s.K) * 2
			n := rotation(bytes)
			ws := make([]kernels.Tensor, n)
			for i := range ws {
				ws[i] = mustAlloc(b, g, kernels.BF16, s.N, s.K)
				fill(b, g, ws[i])
			}
			x := mustAlloc(b, g, kernels.F32, 1, s.K)
			fill(b, g, x)
			y := mustAlloc(b, g, kernels.F32, 1, s.N)
			g.Linear(y, x, ws[0])
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytes)
			b.ResetTimer()
			for i := range b.N {
				g.Linear(y, x, ws[i%n])
			}
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			for _, w := range ws {
				g.Free(w)
			}
		})
	}
}

// BenchmarkMatMulDecode times one-token MatMul on the LoRA shapes.
func BenchmarkMatMulDecode(b *testing.B) {
	g := newGPU(b)
	for _, s := range []struct{ K, N int }{{2048, 96}, {96, 2048}, {2048, 256}, {768, 64}} {
		b.Run(fmt.Sprintf("bf16_K%d_N%d", s.K, s.N), func(b *testing.B) {
			w := mustAlloc(b, g, kernels.BF16, s.K, s.N)
			fill(b, g, w)
			x := mustAlloc(b, g, kernels.F32, 1, s.K)
			fill(b, g, x)
			y := mustAlloc(b, g, kernels.F32, 1, s.N)
			b.SetBytes(int64(s.K) * int64(s.N) * 2)
			b.ResetTimer()
			for range b.N {
				g.MatMul(y, x, w)
			}
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkDeviceCopy is the device's copy bandwidth, counting bytes read
// plus bytes written: the ceiling GEMV is compared with.
func BenchmarkDeviceCopy(b *testing.B) {
	g := newGPU(b)
	const n = 64 << 20 // floats: 256 MiB
	src := mustAlloc(b, g, kernels.F32, 1, n)
	dst := mustAlloc(b, g, kernels.F32, 1, n)
	fill(b, g, src)
	b.SetBytes(2 * 4 * n)
	b.ResetTimer()
	for range b.N {
		g.Copy(dst, src)
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPrefillLinear times cuBLAS Linear for 512 tokens (bf16).
func BenchmarkPrefillLinear(b *testing.B) {
	g := newGPU(b)
	const T, N, K = 512, 2048, 2048
	w := mustAlloc(b, g, kernels.BF16, N, K)
	fill(b, g, w)
	x := mustAlloc(b, g, kernels.F32, T, K)
	fill(b, g, x)
	y := mustAlloc(b, g, kernels.F32, T, N)
	g.Linear(y, x, w)
	b.ResetTimer()
	for range b.N {
		g.Linear(y, x, w)
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(2*T*N*K*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
}

// BenchmarkWKV7 times the recurrence for 1 and 1024 tokens over 32 heads.
func BenchmarkWKV7(b *testing.B) {
	g := newGPU(b)
	for _, T := range []int{1, 1024} {
		b.Run(fmt.Sprintf("T%d_H32", T), func(b *testing.B) {
			const C = 2048
			ts := make([]kernels.Tensor, 7)
			for i := range ts {
				ts[i] = mustAlloc(b, g, kernels.F32, T, C)
				fill(b, g, ts[i])
			}
			s := mustAlloc(b, g, kernels.F32, C, 64)
			b.ResetTimer()
			for range b.N {
				g.WKV7(ts[0], s, ts[1], ts[2], ts[3], ts[4], ts[5], ts[6])
			}
			if err := g.Sync(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(T)*float64(b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}

// BenchmarkGraphSmallOps replays a graph of 100 tiny kernels: the cost of
// one kernel in a captured decode step.
func BenchmarkGraphSmallOps(b *testing.B) {
	g := newGPU(b)
	x := mustAlloc(b, g, kernels.F32, 1, 2048)
	fill(b, g, x)
	y := mustAlloc(b, g, kernels.F32, 1, 2048)
	gr, err := g.Capture(func() {
		for range 50 {
			g.Act(y, x, kernels.Sigmoid)
			g.Add(x, y, x)
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer gr.Free()
	b.ResetTimer()
	for range b.N {
		if err := gr.Launch(); err != nil {
			b.Fatal(err)
		}
	}
	if err := g.Sync(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)/100*1e6, "µs/kernel")
}
