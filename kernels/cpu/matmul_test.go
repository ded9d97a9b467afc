package cpu

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

var dtypes = []kernels.DType{kernels.F32, kernels.F16, kernels.BF16}

// randWeights returns n random weights in [-1, 1) encoded as dt, starting
// at byte 1 of the backing array so that nothing is aligned, and the same
// values decoded to float64.
func randWeights(r *rand.Rand, n int, dt kernels.DType) ([]byte, []float64) {
	es := dt.Size()
	raw := make([]byte, 1+n*es)
	w := raw[1:]
	vals := make([]float64, n)
	for i := range n {
		f := float32(r.Float64()*2 - 1)
		switch dt {
		case kernels.BF16:
			h := half.F32ToBF16(f)
			binary.LittleEndian.PutUint16(w[2*i:], h)
			vals[i] = float64(half.BF16ToF32(h))
		case kernels.F16:
			h := half.F32ToF16(f)
			binary.LittleEndian.PutUint16(w[2*i:], h)
			vals[i] = float64(half.F16ToF32(h))
		default:
			binary.LittleEndian.PutUint32(w[4*i:], math.Float32bits(f))
			vals[i] = float64(f)
		}
	}
	return w, vals
}

// randActs returns n random activations in [-1, 1), not 32-byte aligned.
func randActs(r *rand.Rand, n int) []float32 {
	buf := make([]float32, n+1)
	for i := range buf {
		buf[i] = float32(r.Float64()*2 - 1)
	}
	return buf[1:]
}

// dstWithGuard returns a dst of n elements filled with NaN, followed in
// memory by guard sentinels; check with guardIntact.
func dstWithGuard(n int) (dst, all []float32) {
	all = make([]float32, n+9)
	for i := range all {
		all[i] = float32(math.NaN())
	}
	for i := n; i < len(all); i++ {
		all[i] = 12345
	}
	return all[:n:n], all
}

func guardIntact(all []float32, n int) bool {
	for _, v := range all[n:] {
		if v != 12345 {
			return false
		}
	}
	return true
}

// checkProduct compares got[t,n] with Σ_k x[t,k]·wv(n,k) computed in
// float64, within tol relative to Σ_k |x[t,k]·wv(n,k)|.
func checkProduct(t *testing.T, got, x []float32, T, K, N int, wv func(n, k int) float64, tol float64) {
	t.Helper()
	bad := 0
	for i := range T {
		for n := range N {
			var s, a float64
			for k := range K {
				p := float64(x[i*K+k]) * wv(n, k)
				s += p
				a += math.Abs(p)
			}
			g := float64(got[i*N+n])
			if !(math.Abs(g-s) <= tol*a+1e-30) {
				if bad++; bad <= 3 {
					t.Errorf("[%d,%d] = %v, want %v (scale %v)", i, n, g, s, a)
				}
			}
		}
	}
}

// productShapes are the odd shapes every kernel set must handle: K
// covers tails of the 8- and 16-wide loops and the K blocking of both
// drivers, N the 3-, 4- and 16-wide tiles and the 128-wide N block.
var (
	shapeT = []int{1, 2, 5, 17}
	shapeK = []int{1, 7, 8, 16, 17, 63, 129, 300, 2100}
	shapeN = []int{1, 5, 33, 130}
)

func TestLinear(t *testing.T) {
	for _, ks := range allKernels() {
		for _, threads := range []int{1, 2, 3} {
			p := newPoolWith(threads, ks)
			defer p.Close()
			for _, dt := range dtypes {
				t.Run(fmt.Sprintf("%s/threads=%d/%v", ks.name, threads, dt), func(t *testing.T) {
					r := rand.New(rand.NewPCG(1, uint64(dt)))
					for _, T := range shapeT {
						for _, K := range shapeK {
							for _, N := range shapeN {
								if (threads != 2 || testing.Short()) && K*N*T > 1<<16 {
									continue // big shapes once is enough
								}
								w, wv := randWeights(r, N*K, dt)
								x := randActs(r, T*K)
								dst, all := dstWithGuard(T * N)
								linear(p, dst, x, T, K, w, dt, N)
								if !guardIntact(all, T*N) {
									t.Fatalf("T=%d K=%d N=%d: wrote past dst", T, K, N)
								}
								t.Run(fmt.Sprintf("T=%d/K=%d/N=%d", T, K, N), func(t *testing.T) {
									checkProduct(t, dst, x, T, K, N, func(n, k int) float64 { return wv[n*K+k] }, 1e-5)
								})
							}
						}
					}
				})
			}
		}
	}
}

func TestMatMul(t *testing.T) {
	for _, ks := range allKernels() {
		for _, threads := range []int{1, 2, 3} {
			p := newPoolWith(threads, ks)
			defer p.Close()
			for _, dt := range dtypes {
				t.Run(fmt.Sprintf("%s/threads=%d/%v", ks.name, threads, dt), func(t *testing.T) {
					r := rand.New(rand.NewPCG(2, uint64(dt)))
					for _, T := range append(shapeT, 13, 40) {
						for _, K := range shapeK {
							for _, N := range append(shapeN, 16, 32, 300, 530) {
								if (threads != 2 || testing.Short()) && K*N*T > 1<<16 {
									continue
								}
								w, wv := randWeights(r, K*N, dt)
								x := randActs(r, T*K)
								dst, all := dstWithGuard(T * N)
								matmul(p, dst, x, T, K, w, dt, N)
								if !guardIntact(all, T*N) {
									t.Fatalf("T=%d K=%d N=%d: wrote past dst", T, K, N)
								}
								t.Run(fmt.Sprintf("T=%d/K=%d/N=%d", T, K, N), func(t *testing.T) {
									checkProduct(t, dst, x, T, K, N, func(n, k int) float64 { return wv[k*N+n] }, 1e-5)
								})
							}
						}
					}
				})
			}
		}
	}
}

// TestSpecialValues checks that infinities and NaNs in the weights reach
// exactly the outputs they should, so that padding and tail handling never
// mix a discarded lane into a kept one.
func TestSpecialValues(t *testing.T) {
	const T, K, N = 5, 19, 7
	for _, ks := range allKernels() {
		p := newPoolWith(2, ks)
		defer p.Close()
		for _, dt := range dtypes {
			r := rand.New(rand.NewPCG(3, 0))
			w, _ := randWeights(r, N*K, dt)
			// Row 3 of the linear weight (column 3 of matmul's) holds +Inf at k=18.
			setInf := func(i int) {
				switch dt {
				case kernels.BF16:
					binary.LittleEndian.PutUint16(w[2*i:], 0x7f80)
				case kernels.F16:
					binary.LittleEndian.PutUint16(w[2*i:], 0x7c00)
				default:
					binary.LittleEndian.PutUint32(w[4*i:], math.Float32bits(float32(math.Inf(1))))
				}
			}
			x := randActs(r, T*K)
			for i := range T {
				x[i*K+18] = 1
			}
			setInf(3*K + 18)
			dst := make([]float32, T*N)
			linear(p, dst, x, T, K, w, dt, N)
			for i, v := range dst {
				if inf := math.IsInf(float64(v), 1); inf != (i%N == 3) {
					t.Errorf("%s %v linear: dst[%d] = %v", ks.name, dt, i, v)
				}
			}
			w, _ = randWeights(r, K*N, dt)
			setInf(18*N + 3)
			matmul(p, dst, x, T, K, w, dt, N)
			for i, v := range dst {
				if inf := math.IsInf(float64(v), 1); inf != (i%N == 3) {
					t.Errorf("%s %v matmul: dst[%d] = %v", ks.name, dt, i, v)
				}
			}
		}
	}
}

// TestKernelSetsAgree runs each kernel primitive of every set directly on
// the same inputs and compares with the generic set.
func TestKernelSetsAgree(t *testing.T) {
	ref := genericKernels()
	r := rand.New(rand.NewPCG(4, 0))
	for _, ks := range allKernels() {
		for _, dt := range dtypes {
			for _, n := range []int{0, 1, 8, 23, 48, 64, 100} {
				w, _ := randWeights(r, 4*n+3, dt)
				off := &[4]int{0, n * dt.Size(), 3 * n * dt.Size(), (3*n + 3) * dt.Size()}
				x := randActs(r, n)
				var a, b [4]float32
				ks.dot4(&a, x, w, off, dt)
				ref.dot4(&b, x, w, off, dt)
				for i := range a {
					if d := math.Abs(float64(a[i] - b[i])); d > 1e-4 {
						t.Errorf("%s %v dot4 n=%d: [%d] %v vs %v", ks.name, dt, n, i, a[i], b[i])
					}
				}
				for _, k := range []int{0, 1, 4, 7} {
					// k rows of n elements, 3 elements apart beyond their length.
					xs := randActs(r, k)
					ww, _ := randWeights(r, k*(n+3)+1, dt)
					d1, d2 := randActs(r, n), make([]float32, n)
					copy(d2, d1)
					ks.gemvNN(d1, xs, ww, dt.Size(), (n+3)*dt.Size(), dt)
					ref.gemvNN(d2, xs, ww, dt.Size(), (n+3)*dt.Size(), dt)
					for i := range d1 {
						if d := math.Abs(float64(d1[i] - d2[i])); d > 1e-5 {
							t.Errorf("%s %v gemvNN n=%d k=%d: [%d] %v vs %v", ks.name, dt, n, k, i, d1[i], d2[i])
						}
					}
				}
				off8 := &[8]int{}
				for i := range off8 {
					off8[i] = (i * n / 3) * dt.Size()
				}
				t1, t2 := make([]float32, 8*n+8), make([]float32, 8*n+8)
				ks.transpose8(t1, 8, w, off8, n, dt)
				ref.transpose8(t2, 8, w, off8, n, dt)
				for i := range t1 {
					if math.Float32bits(t1[i]) != math.Float32bits(t2[i]) {
						t.Errorf("%s %v transpose8 n=%d: [%d] %v vs %v", ks.name, dt, n, i, t1[i], t2[i])
						break
					}
				}
				f1, f2 := make([]float32, n), make([]float32, n)
				ks.decode(f1, w[:n*dt.Size()], dt)
				ref.decode(f2, w[:n*dt.Size()], dt)
				for i := range f1 {
					if math.Float32bits(f1[i]) != math.Float32bits(f2[i]) {
						t.Errorf("%s %v decode n=%d: [%d] %v vs %v", ks.name, dt, n, i, f1[i], f2[i])
					}
				}
			}
		}
	}
}

// TestTileNN checks the 6×nr micro-kernel of every set against float64,
// storing and accumulating, with strides wider than the tile.
func TestTileNN(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 0))
	for _, ks := range allKernels() {
		nr := ks.nr
		for _, n := range []int{1, 2, 7, 64, 255} {
			ldd, ldw := nr+3, nr+5
			var xs [6][]float32
			for i := range xs {
				xs[i] = randActs(r, n)
			}
			w := randActs(r, (n-1)*ldw+nr)
			for _, acc := range []bool{false, true} {
				d := randActs(r, 5*ldd+nr)
				before := append([]float32(nil), d...)
				ks.tileNN(d, ldd, &xs, w, ldw, acc)
				for i := range 6 {
					for j := range ldd {
						if i == 5 && j >= nr {
							break
						}
						got := d[i*ldd+j]
						if j >= nr {
							if got != before[i*ldd+j] {
								t.Fatalf("%s n=%d: wrote outside the tile at [%d,%d]", ks.name, n, i, j)
							}
							continue
						}
						var s, a float64
						if acc {
							s = float64(before[i*ldd+j])
						}
						for k := range n {
							p := float64(xs[i][k]) * float64(w[k*ldw+j])
							s += p
							a += math.Abs(p)
						}
						if math.Abs(float64(got)-s) > 1e-5*(a+1) {
							t.Errorf("%s n=%d acc=%v [%d,%d]: %v, want %v", ks.name, n, acc, i, j, got, s)
						}
					}
				}
			}
		}
	}
}

// TestDecodeSpecials checks conversion of every bf16 and f16 bit pattern.
func TestDecodeSpecials(t *testing.T) {
	src := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(src[2*i:], uint16(i))
	}
	for _, ks := range allKernels() {
		for _, dt := range []kernels.DType{kernels.BF16, kernels.F16} {
			got := make([]float32, 1<<16)
			ks.decode(got, src, dt)
			for i, v := range got {
				var want float32
				if dt == kernels.BF16 {
					want = half.BF16ToF32(uint16(i))
				} else {
					want = half.F16ToF32(uint16(i))
				}
				if math.Float32bits(v) != math.Float32bits(want) && !(v != v && want != want) {
					t.Errorf("%s %v %#04x: %v, want %v", ks.name, dt, i, v, want)
					break
				}
			}
		}
	}
}

// TestLinearI8 runs linearI8 with every kernel set and thread count on
// shapes with tails of every vector width, against float64 of x·(q·s)ᵀ.
func TestLinearI8(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for _, ks := range allKernels() {
		for _, threads := range []int{1, 2} {
			p := newPoolWith(threads, ks)
			defer p.Close()
			for _, T := range []int{1, 2, 7} {
				for _, K := range []int{1, 8, 17, 48, 100, 300} {
					for _, N := range []int{1, 5, 33, 130} {
						q := make([]byte, N*K)
						for i := range q {
							q[i] = byte(r.IntN(255) - 127)
						}
						scale := randActs(r, N)
						x := randActs(r, T*K)
						dst, all := dstWithGuard(T * N)
						linearI8(p, dst, x, T, K, q, scale, nil, N)
						if !guardIntact(all, T*N) {
							t.Fatalf("%s T=%d K=%d N=%d: wrote past dst", ks.name, T, K, N)
						}
						checkProduct(t, dst, x, T, K, N, func(n, k int) float64 {
							return float64(float32(int8(q[n*K+k])) * scale[n])
						}, 1e-5)
					}
				}
			}
		}
	}
}
