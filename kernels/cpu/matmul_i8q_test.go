package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// qKernels returns the kernel sets with an integer int8 kernel (dotQ4),
// plus the generic set given dotQ4Generic, so that the code around the
// kernel (digits, tails, the int64 sums) is tested on any CPU.
func qKernels() []*kernelSet {
	g := genericKernels()
	g.name = "generic-q"
	g.dotQ4 = dotQ4Generic
	g.toDigits = toDigitsGeneric
	g.sumQ = sumQGeneric
	ks := []*kernelSet{g}
	for _, k := range allKernels() {
		if k.dotQ4 != nil {
			ks = append(ks, k)
		}
	}
	return ks
}

// dotQ4Generic is kernelSet.dotQ4 in Go, the reference for the assembly
// and, in qKernels, a stand-in for it on any CPU.
func dotQ4Generic(out *[16]int32, d []byte, ld, n int, w []byte, off *[4]int) {
	n &^= 63
	for i, o := range off {
		r := w[o : o+n]
		for j := range 4 {
			dj := d[j*ld : j*ld+n]
			var a int32
			for k, b := range r {
				a += int32(dj[k]) * int32(int8(b))
			}
			out[4*i+j] = a
		}
	}
}

// TestDotQ4 checks dotQ4 against the Go version on random digits and
// weights, on the extremes of both (digits 255 against weights −128 over
// the longest row taken, where the int32 sums come within 0.4% of
// overflowing) and on rows that overlap or repeat.
func TestDotQ4(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, ks := range qKernels() {
		for _, n := range []int{64, 128, 192, 1024, 8192, qMaxK &^ 63} {
			for _, fill := range []string{"random", "extreme"} {
				ld := n + 64*r.IntN(2)
				d := make([]byte, 4*ld)
				w := make([]byte, 4*n+7)
				for i := range d {
					d[i] = byte(r.Uint32())
					if fill == "extreme" {
						d[i] = 255
					}
				}
				for i := range w {
					w[i] = byte(r.Uint32())
					if fill == "extreme" {
						w[i] = byte(0x80 - byte(r.IntN(2))) // −128 or 127
						if i < 2*n+3 {
							w[i] = 0x80
						}
					}
				}
				for _, off := range [][4]int{{0, n, 2 * n, 3 * n}, {7, 7 + n, 7 + 2*n, 7 + 3*n}, {1, 1, 2, 3}, {3 * n, 0, 3 * n, 5}} {
					var got, want [16]int32
					ks.dotQ4(&got, d, ld, n, w, &off)
					dotQ4Generic(&want, d, ld, n, w, &off)
					if got != want {
						t.Fatalf("%s n=%d ld=%d %s off=%v: got %v, want %v", ks.name, n, ld, fill, off, got, want)
					}
				}
			}
		}
	}
}

// qErrorBound is the bound of matmul_i8q.go on |y_n − Σ_k x_k·w_nk| for one
// row x and weight row q·scale, with margins for the float64 arithmetic
// (relative 2^−20, far above it) and the final rounding to float32 (half
// an ulp of the result, or of the smallest subnormal):
//
//	(m/(2^32 − 2))·Σ_k |q_k|·|scale|·(1 + 2^−20) + 2^−24·(|ref| + that) + 2^−150
func qErrorBound(m float64, sumAbsQ, scale, ref float64) float64 {
	b := m / (1<<32 - 2) * sumAbsQ * math.Abs(scale) * (1 + 1.0/(1<<20))
	return b + (math.Abs(ref)+b)/(1<<24) + math.Ldexp(1, -150)
}

// TestLinearI8Integer runs linearI8 through the integer kernels on many
// shapes and activations against float64 of Σ_k x_k·q_nk·scale_n, with
// qErrorBound as the tolerance.
func TestLinearI8Integer(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	acts := []struct {
		name string
		gen  func(i int) float32
	}{
		{"uniform", func(int) float32 { return float32(r.Float64()*2 - 1) }},
		{"zeros", func(int) float32 {
			if r.IntN(3) == 0 {
				return float32(r.NormFloat64())
			}
			return 0
		}},
		{"range", func(int) float32 { // |x| from 1e-30 to 1e+30
			return float32(math.Pow(10, r.Float64()*60-30) * float64(1-2*r.IntN(2)))
		}},
		{"tiny", func(int) float32 { // subnormal and near the float32 minimum
			return math.Float32frombits(uint32(r.IntN(1<<24)) | uint32(r.IntN(2))<<31)
		}},
		{"huge", func(int) float32 { return float32(0x1p100 * (r.Float64()*2 - 1)) }},
		{"allzero", func(int) float32 { return 0 }},
		{"one", func(i int) float32 {
			if i == 0 {
				return -3.5
			}
			return 0
		}},
	}
	weights := []struct {
		name string
		gen  func() byte
	}{
		{"random", func() byte { return byte(r.Uint32()) }},
		{"extreme", func() byte { return byte(int8(127 * (1 - 2*r.IntN(2)))) }},
	}
	for _, ks := range qKernels() {
		for _, threads := range []int{1, 2} {
			p := newPoolWith(threads, ks)
			defer p.Close()
			for _, K := range []int{1, 5, 63, 64, 65, 100, 128, 200, 1024, 2048 + 17, 8192} {
				for _, N := range []int{1, 3, 4, 5, 33, 130} {
					for _, T := range []int{1, 2, 3, 8} {
						if (K > 2048 || N > 33) && T > 2 && ks.name == "generic-q" {
							continue
						}
						a := acts[(K+N+T)%len(acts)]
						wg := weights[(K+T)%len(weights)]
						name := fmt.Sprintf("%s/threads=%d/K=%d/N=%d/T=%d/%s/%s", ks.name, threads, K, N, T, a.name, wg.name)
						q := make([]byte, N*K)
						for i := range q {
							q[i] = wg.gen()
						}
						scale := randActs(r, N)
						x := make([]float32, T*K)
						for i := range x {
							x[i] = a.gen(i % K)
						}
						dst, all := dstWithGuard(T * N)
						var sums rowSums
						linearI8(p, dst, x, T, K, q, scale, &sums, N)
						if !guardIntact(all, T*N) {
							t.Fatalf("%s: wrote past dst", name)
						}
						checkQ(t, name, dst, x, T, K, N, q, scale)
						again := make([]float32, T*N) // with the sums kept
						linearI8(p, again, x, T, K, q, scale, &sums, N)
						for i := range dst {
							if math.Float32bits(again[i]) != math.Float32bits(dst[i]) {
								t.Fatalf("%s: second call: dst[%d] = %v, first %v", name, i, again[i], dst[i])
							}
						}
					}
				}
			}
		}
	}
}

// checkQ compares dst = x·(q·scale)ᵀ with float64 within qErrorBound.
func checkQ(t *testing.T, name string, dst, x []float32, T, K, N int, q []byte, scale []float32) {
	t.Helper()
	for tt := range T {
		xs := x[tt*K : (tt+1)*K]
		var m float64
		for _, v := range xs {
			m = max(m, math.Abs(float64(v)))
		}
		for n := range N {
			var ref, sq float64
			for k, v := range xs {
				w := float64(int8(q[n*K+k]))
				ref += float64(v) * w
				sq += math.Abs(w)
			}
			ref *= float64(scale[n])
			got := float64(dst[tt*N+n])
			tol := qErrorBound(m, sq, float64(scale[n]), ref)
			if !(math.Abs(got-ref) <= tol) {
				t.Fatalf("%s: dst[%d][%d] = %g, want %g ± %g", name, tt, n, got, ref, tol)
			}
		}
	}
}

// TestLinearI8IntegerRanges checks linearI8's choice of kernel: a row of x
// holding a NaN or an infinity gives NaN or infinite outputs as the float
// kernels do (those calls go through them), and K above qMaxK still gives
// the product.
func TestLinearI8IntegerRanges(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, ks := range qKernels() {
		p := newPoolWith(2, ks)
		defer p.Close()
		const K, N, T = 256, 9, 2
		q := make([]byte, N*K)
		for i := range q {
			q[i] = byte(1 + r.IntN(127)) // positive, so +Inf·q = +Inf
		}
		scale := make([]float32, N)
		for i := range scale {
			scale[i] = 0.01
		}
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
			x := randActs(r, T*K)
			x[K+17] = bad
			dst := make([]float32, T*N)
			linearI8(p, dst, x, T, K, q, scale, nil, N)
			for n := range N {
				if got := dst[N+n]; math.Float32bits(got) != math.Float32bits(bad) && !(got != got && bad != bad) {
					t.Fatalf("%s x holds %v: dst[1][%d] = %v", ks.name, bad, n, got)
				}
			}
			checkProduct(t, dst[:N], x[:K], 1, K, N, func(n, k int) float64 {
				return float64(float32(int8(q[n*K+k])) * scale[n])
			}, 1e-5)
		}
	}
	if testing.Short() {
		return
	}
	for _, ks := range qKernels() {
		p := newPoolWith(2, ks)
		defer p.Close()
		for _, K := range []int{qMaxK, qMaxK + 1} {
			const N = 5
			q := make([]byte, N*K)
			for i := range q {
				q[i] = byte(0x80 + r.IntN(2)*0xff) // −128 or 127
			}
			scale := randActs(r, N)
			x := randActs(r, K)
			dst := make([]float32, N)
			linearI8(p, dst, x, 1, K, q, scale, nil, N)
			checkProduct(t, dst, x, 1, K, N, func(n, k int) float64 {
				return float64(float32(int8(q[n*K+k])) * scale[n])
			}, 1e-5)
		}
	}
}

// TestToDigits checks every toDigits against toDigitsGeneric bit for bit,
// on lengths around the vector widths and on activations with zeros,
// subnormals, wide ranges, NaNs and infinities (in the vector part and
// in the tail), and that the digits give back x within s/2.
func TestToDigits(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	specials := []float32{0, float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), math.SmallestNonzeroFloat32, math.MaxFloat32, -0.5, 0.5}
	for _, ks := range qKernels() {
		for _, K := range []int{1, 2, 15, 16, 17, 31, 32, 33, 47, 64, 100, 2048, 2048 + 13} {
			for trial := range 40 {
				x := make([]float32, K)
				for i := range x {
					switch trial % 4 {
					case 0:
						x[i] = float32(r.Float64()*2 - 1)
					case 1:
						x[i] = float32(math.Pow(10, r.Float64()*70-35) * float64(1-2*r.IntN(2)))
					case 2:
						x[i] = math.Float32frombits(uint32(r.IntN(1 << 24)))
					case 3:
						x[i] = float32(r.IntN(5) - 2) // ties of v·inv among integers
					}
				}
				if trial >= 20 {
					x[r.IntN(K)] = specials[trial%len(specials)]
				}
				got := make([]byte, 4*K)
				want := make([]byte, 4*K)
				gs, gok := ks.toDigits(got, x)
				ws, wok := toDigitsGeneric(want, x)
				if gs != ws || gok != wok || (wok && string(got) != string(want)) {
					t.Fatalf("%s K=%d trial %d: got (%v, %v), want (%v, %v)", ks.name, K, trial, gs, gok, ws, wok)
				}
				if !wok || ws == 0 {
					continue
				}
				for k, v := range x {
					u := int64(want[3*K+k])<<24 | int64(want[2*K+k])<<16 | int64(want[K+k])<<8 | int64(want[k])
					back := float64(u-1<<31) * ws
					if e := math.Abs(back - float64(v)); e > ws*(0.5+1.0/(1<<20)) {
						t.Fatalf("%s K=%d: x[%d] = %v comes back as %v (s %v)", ks.name, K, k, v, back, ws)
					}
				}

			}
		}
	}
}

// TestSumQ checks every sumQ against the Go version, on row lengths and
// strides with and without a multiple of 64 and on rows of −128 (the
// longest taken).
func TestSumQ(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	for _, ks := range qKernels() {
		for _, K := range []int{1, 63, 64, 100, 128, 2048, qMaxK} {
			for _, n := range []int{K &^ 63, K} {
				const N = 5
				q := make([]byte, N*K)
				for i := range q {
					q[i] = byte(r.Uint32())
					if K == qMaxK {
						q[i] = 0x80
					}
				}
				got, want := make([]int32, N), make([]int32, N)
				ks.sumQ(got, q, K, n)
				sumQGeneric(want, q, K, n)
				for i := range got {
					if got[i] != want[i] {
						t.Fatalf("%s K=%d n=%d: row %d sums to %d, want %d", ks.name, K, n, i, got[i], want[i])
					}
				}
			}
		}
	}
}
