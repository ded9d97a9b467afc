package vision

import (
	"math"
	"testing"

	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"github.com/goose-rwkv/goose/vision/internal/visiontest"
)

// roundedAttention is a CPU backend whose Attention rounds its operands
// as a tensor-core kernel with single low-precision products would: q, k,
// v and the softmax weights to the format round, scores and sums in
// higher precision (the CUDA kernel attn_f16 with fp16; see PERF.md).
type roundedAttention struct {
	kernels.Backend
	round func(float32) float32
}

func (e *roundedAttention) Attention(a kernels.Attention) {
	qkv, _ := nn.Download(e.Backend, a.QKV)
	var rh, rw []float32
	if a.RelH.Valid() {
		rh, _ = nn.Download(e.Backend, a.RelH)
		rw, _ = nn.Download(e.Backend, a.RelW)
	}
	T, heads, hd, groups, span := a.QKV.Rows, a.Heads, a.HeadDim(), max(a.Groups, 1), a.Span
	D, n := heads*hd, T/max(a.Groups, 1)
	r := make([]float64, len(qkv))
	for i, v := range qkv {
		r[i] = float64(e.round(v))
	}
	out := make([]float32, T*D)
	sc := make([]float64, n)
	o := make([]float64, hd)
	for g := range groups {
		for h := range heads {
			for i := range n {
				qi := (g*n+i)*3*D + h*hd
				m := math.Inf(-1)
				for j := range n {
					kj := (g*n+j)*3*D + D + h*hd
					var s float64
					for d := range hd {
						s += r[qi+d] * r[kj+d]
					}
					s *= float64(a.Scale)
					if rh != nil { // the bias tables stay fp32
						qy, qx, ky, kx := i/span, i%span, j/span, j%span
						for d := range hd {
							q := float64(qkv[qi+d])
							s += q*float64(rh[(qy-ky+span-1)*hd+d]) + q*float64(rw[(qx-kx+span-1)*hd+d])
						}
					}
					sc[j] = s
					m = max(m, s)
				}
				var sum float64
				clear(o)
				for j := range n {
					p := math.Exp(sc[j] - m)
					sum += p
					pr := float64(e.round(float32(p)))
					vj := (g*n+j)*3*D + 2*D + h*hd
					for d := range hd {
						o[d] += pr * r[vj+d]
					}
				}
				for d := range hd {
					out[(g*n+i)*D+h*hd+d] = float32(o[d] / sum)
				}
			}
		}
	}
	if err := e.Backend.Upload(a.Dst, half.Bytes(out)); err != nil {
		panic(err)
	}
}

// TestAttentionPrecision measures what single low-precision products in
// the towers' attention cost on the golden fixture (PERF.md, attn_f16):
// with fp16 operands the features must stay within the fixture's
// tolerance (1e-3·std); bf16 ones are reported (they exceed it, which is
// why no bf16 single-product kernel exists).
func TestAttentionPrecision(t *testing.T) {
	f, cfg := fixture(t)
	want := visiontest.NPY(t, "mm.features.npy").Data
	for _, c := range []struct {
		name  string
		round func(float32) float32
		limit float64 // of max |Δ|/std; 0: report only
	}{
		{"fp16", func(x float32) float32 { return half.F16ToF32(half.F32ToF16(x)) }, 1e-3},
		{"bf16", func(x float32) float32 { return half.BF16ToF32(half.F32ToBF16(x)) }, 0},
	} {
		feat := features(t, f, cfg, &roundedAttention{Backend: visiontest.CPU(t), round: c.round})
		var s, s2, worst float64
		for i, v := range want {
			s += float64(v)
			s2 += float64(v) * float64(v)
			worst = max(worst, math.Abs(float64(feat[i]-v)))
		}
		nf := float64(len(want))
		rel := worst / math.Sqrt(s2/nf-(s/nf)*(s/nf))
		t.Logf("%s attention products: features max |Δ| = %.2g·std", c.name, rel)
		if c.limit > 0 && !(rel <= c.limit) {
			t.Errorf("%s attention products: features max |Δ| = %.2g·std, over %.0g·std", c.name, rel, c.limit)
		}
	}
}
