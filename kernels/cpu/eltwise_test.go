package cpu

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// closeTo reports whether got is within tol·(1 + |want|) of want (NaN
// never is).
func closeTo(got, want float32, tol float64) bool {
	return math.Abs(float64(got)-float64(want)) <= tol*(1+math.Abs(float64(want)))
}

// TestPrep7Kernels runs every kernel set's Prep7 row against a float64
// reference, with and without the value residual, on rows of several
// heads whose pre-activations reach far into the sigmoid's tails.
func TestPrep7Kernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	vec := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(scale * rng.NormFloat64())
		}
		return v
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	for _, ks := range allKernels() {
		for _, C := range []int{64, 192, 384} {
			for _, residual := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/C=%d/residual=%v", ks.name, C, residual), func(t *testing.T) {
					p := &prep7Chan{w0: vec(C, 3), a0: vec(C, 1), kk: vec(C, 1), ka: vec(C, 1), v0: vec(C, 1), n: 64}
					k, v, vf, w, a := vec(C, 2), vec(C, 2), vec(C, 2), vec(C, 40), vec(C, 40)
					b := make([]float32, C)
					var zv []float32
					if residual {
						zv = vec(C, 40)
					}
					k0, v0, vf0, w0, a0 := clone(k), clone(v), clone(vf), clone(w), clone(a)
					ks.prep7(k, v, vf, w, a, b, zv, p)
					for h := 0; h < C; h += 64 {
						var norm float64
						for j := h; j < h+64; j++ {
							x := float64(k0[j]) * float64(p.kk[j])
							norm += x * x
						}
						inv := 1 / math.Max(math.Sqrt(norm), 1e-12)
						for i := h; i < h+64; i++ {
							kh := float64(k0[i]) * float64(p.kk[i]) * inv
							alpha := sig(float64(p.a0[i]) + float64(a0[i]))
							wantV, wantVF := float64(v0[i]), float64(v0[i])
							if residual {
								wantV += (float64(vf0[i]) - float64(v0[i])) * sig(float64(p.v0[i])+float64(zv[i]))
								wantVF = float64(vf0[i])
							}
							for _, c := range []struct {
								name      string
								got, want float64
							}{
								{"a", float64(a[i]), -kh},
								{"b", float64(b[i]), kh * alpha},
								{"k", float64(k[i]), float64(k0[i]) * (1 + (alpha-1)*float64(p.ka[i]))},
								{"w", float64(w[i]), math.Exp(-decayScale * sig(float64(p.w0[i])+float64(w0[i])))},
								{"v", float64(v[i]), wantV},
								{"v_first", float64(vf[i]), wantVF},
							} {
								if !closeTo(float32(c.got), float32(c.want), 1e-6) {
									t.Fatalf("channel %d: %s = %g, want %g", i, c.name, c.got, c.want)
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestActKernels checks every kernel set's sigmoid, tanh and ReLU² against
// float64, lengths with and without a tail, NaN carried through.
func TestActKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, ks := range allKernels() {
		for _, n := range []int{1, 8, 29, 300} {
			t.Run(fmt.Sprintf("%s/n=%d", ks.name, n), func(t *testing.T) {
				x := make([]float32, n)
				for i := range x {
					x[i] = float32(30 * rng.NormFloat64())
				}
				x[0] = float32(math.NaN())
				if n > 3 {
					x[1], x[2], x[3] = 0, 200, -200
				}
				d := make([]float32, n+1)
				d[n] = 7
				ks.sigmoid(d[:n], x)
				for i, v := range x {
					want := 1 / (1 + math.Exp(-float64(v)))
					if i == 0 {
						if !math.IsNaN(float64(d[0])) {
							t.Fatalf("σ(NaN) = %g", d[0])
						}
						continue
					}
					if math.Abs(float64(d[i])-want) > 5e-7*want+1e-38 {
						t.Fatalf("σ(%g) = %g, want %g", v, d[i], want)
					}
				}
				xt := append([]float32(nil), x...)
				for i := 4; i < n; i += 3 {
					xt[i] *= 0.01 // near zero, where tanh switches to its series
				}
				ks.tanh(d[:n], xt)
				for i, v := range xt {
					want := math.Tanh(float64(v))
					if i == 0 {
						if !math.IsNaN(float64(d[0])) {
							t.Fatalf("tanh(NaN) = %g", d[0])
						}
						continue
					}
					if math.Abs(float64(d[i])-want) > 4e-7*math.Abs(want)+1e-45 {
						t.Fatalf("tanh(%g) = %g, want %g", v, d[i], want)
					}
				}
				ks.reluSquared(d[:n], x)
				for i, v := range x {
					want := float32(math.Max(float64(v), 0) * math.Max(float64(v), 0))
					if i == 0 {
						want = float32(math.NaN())
					}
					if !(d[i] == want || i == 0 && math.IsNaN(float64(d[i]))) {
						t.Fatalf("relu²(%g) = %g, want %g", v, d[i], want)
					}
				}
				if d[n] != 7 {
					t.Fatal("wrote past the end")
				}
			})
		}
	}
}

func clone(x []float32) []float32 { return append([]float32(nil), x...) }

// TestRowKernels checks every kernel set's LayerNorm, Lerp, Add, GateMix,
// Out7's bonus and gate, and depthwise
// convolution rows against float64, at widths with and without a tail.
func TestRowKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	vec := func(n int, mean float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(mean + rng.NormFloat64())
		}
		return v
	}
	for _, ks := range allKernels() {
		for _, n := range []int{8, 29, 64, 384} {
			t.Run(fmt.Sprintf("%s/n=%d", ks.name, n), func(t *testing.T) {
				x, w, b := vec(n, 3), vec(n, 0), vec(n, 0)
				for _, affine := range []bool{false, true} {
					d := make([]float32, n)
					if affine {
						ks.layerNorm(d, x, w, b, 1e-5)
					} else {
						ks.layerNorm(d, x, nil, nil, 1e-5)
					}
					var mean, v float64
					for _, e := range x {
						mean += float64(e)
					}
					mean /= float64(n)
					for _, e := range x {
						v += (float64(e) - mean) * (float64(e) - mean)
					}
					s := 1 / math.Sqrt(v/float64(n)+1e-5)
					for i, e := range x {
						want := (float64(e) - mean) * s
						if affine {
							want = want*float64(w[i]) + float64(b[i])
						}
						if !closeTo(d[i], float32(want), 1e-6) {
							t.Fatalf("affine %v: layerNorm[%d] = %g, want %g", affine, i, d[i], want)
						}
					}
				}

				dd, m := vec(n, 0), vec(n, 0)
				d := make([]float32, n)
				ks.lerp(d, x, dd, m)
				for i := range d {
					if want := float64(x[i]) + float64(dd[i])*float64(m[i]); !closeTo(d[i], float32(want), 1e-6) {
						t.Fatalf("lerp[%d] = %g, want %g", i, d[i], want)
					}
				}

				ks.add(d, x, dd)
				for i := range d {
					if d[i] != x[i]+dd[i] {
						t.Fatalf("add[%d] = %g, want %g", i, d[i], x[i]+dd[i])
					}
				}

				gv := float32(rng.Float64())
				ks.gateMix(d, x, dd, gv)
				for i := range d {
					if want := float64(gv)*float64(x[i]) + (1-float64(gv))*float64(dd[i]); !closeTo(d[i], float32(want), 1e-6) {
						t.Fatalf("gateMix[%d] = %g, want %g", i, d[i], want)
					}
				}

				r, kk, v, g, rk := vec(n, 0), vec(n, 0), vec(n, 0), vec(n, 0), vec(n, 0)
				copy(d, x)
				ks.out7(d, r, kk, v, g, rk)
				var bonus, mag float64 // the sum and the sum of its terms' sizes
				for i := range n {
					p := float64(r[i]) * float64(kk[i]) * float64(rk[i])
					bonus, mag = bonus+p, mag+math.Abs(p)
				}
				for i := range d {
					want := (float64(x[i]) + bonus*float64(v[i])) * float64(g[i])
					tol := 1e-6*math.Abs(want) + 1e-6*mag*math.Abs(float64(v[i])*float64(g[i]))
					if math.Abs(float64(d[i])-want) > tol {
						t.Fatalf("out7[%d] = %g, want %g", i, d[i], want)
					}
				}

				k := vec(n*dwTaps, 0)
				kt := dwKernels(k, n)
				var src [dwTaps][]float32
				zero := make([]float32, n)
				for tap := range src {
					src[tap] = vec(n, 0)
					if tap%4 == 1 {
						src[tap] = zero // a tap outside the image
					}
				}
				out := make([]float32, n+1)
				out[n] = 7
				ks.dwconv(out[:n], &src, kt)
				for c := range n {
					var want float64
					for tap := range dwTaps {
						want += float64(k[c*dwTaps+tap]) * float64(src[tap][c])
					}
					if !closeTo(out[c], float32(want), 1e-5) {
						t.Fatalf("dwconv[%d] = %g, want %g", c, out[c], want)
					}
				}
				if out[n] != 7 {
					t.Fatal("dwconv wrote past the row")
				}
			})
		}
	}
}
