package core

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/core/sample"
)

// quantError compares logits a (quantized) with b (reference): the largest
// |Δ| over std(b), the relative L2 error ‖a−b‖/‖b‖, and whether the top
// token agrees.
func quantError(a, b []float32) (maxRel, l2 float64, sameTop bool) {
	sd := std(b)
	var num, den float64
	for i := range b {
		d := float64(a[i] - b[i])
		maxRel = max(maxRel, math.Abs(d)/sd)
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	return maxRel, math.Sqrt(num / den), sample.Greedy(a) == sample.Greedy(b)
}

// Tolerances of int8 weights (per-output-channel scales) against the
// float reference, from the measurements logged by the tests below: the
// largest logit error relative to std(logits), and the relative L2 error of
// the logits.
const (
	int8MaxRelTol = 0.4
	int8L2Tol     = 0.1
)

// TestInt8Golden runs every golden fixture with int8 weights (in both
// modes, on the CPU and, when there is one, the GPU) and holds the logits
// to the int8 tolerances against the reference; the errors are logged.
func TestInt8Golden(t *testing.T) {
	for _, bk := range testBackends() {
		for _, name := range []string{"tiny", "small", "long"} {
			for _, mode := range []string{"seq", "rnn"} {
				t.Run(fmt.Sprintf("%s/%s/%s", bk.name, name, mode), func(t *testing.T) {
					be := bk.open(t)
					m, err := LoadFile(filepath.Join("..", "testdata", "rwkv7", name+".pth"), LoadOptions{Backend: be, Quant: QuantInt8})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					if m.WeightBytes() >= m.Config().WeightBytes {
						t.Errorf("int8 weights take %d bytes, the checkpoint's %d", m.WeightBytes(), m.Config().WeightBytes)
					}
					g := loadGolden(t, name)
					V := m.Config().Vocab
					st, _ := m.NewState()
					defer st.Free()
					all := make([]float32, len(g.Tokens)*V)
					ctx := context.Background()
					if mode == "seq" {
						err = m.ForwardAll(ctx, st, g.Tokens, all)
					} else {
						for i, tok := range g.Tokens {
							if err = m.Forward(ctx, st, []int32{tok}, all[i*V:(i+1)*V]); err != nil {
								break
							}
						}
					}
					if err != nil {
						t.Fatal(err)
					}
					var worst, worstL2 float64
					same := 0
					for r, pos := range g.Positions {
						mr, l2, top := quantError(all[pos*V:(pos+1)*V], g.logits.Data[r*V:(r+1)*V])
						worst, worstL2 = max(worst, mr), max(worstL2, l2)
						if top {
							same++
						}
					}
					t.Logf("int8 vs reference: max |Δlogits| %.3g·std, relative L2 %.3g, same top token at %d/%d positions", worst, worstL2, same, len(g.Positions))
					if !(worst <= int8MaxRelTol) || !(worstL2 <= int8L2Tol) {
						t.Errorf("int8 logits off by %.3g·std (tolerance %g), relative L2 %.3g (tolerance %g)", worst, int8MaxRelTol, worstL2, int8L2Tol)
					}
				})
			}
		}
	}
}

// TestInt8Random compares int8 with the bf16 weights they came from on
// random weights at official shapes (0.1b; GOOSE_INT8_SHAPES=0.1b,1.5b
// for more): a prompt, then greedy decoding on both.
func TestInt8Random(t *testing.T) {
	if testing.Short() {
		t.Skip("0.1B model in -short mode")
	}
	shapes := []string{"0.1b"}
	if s := os.Getenv("GOOSE_INT8_SHAPES"); s != "" {
		shapes = strings.Split(s, ",")
	}
	for _, shape := range shapes {
		t.Run(shape, func(t *testing.T) {
			cfg, ok := OfficialShape(shape)
			if !ok {
				t.Fatalf("unknown shape %q", shape)
			}
			src, err := RandomSource(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			be := newCPU(t)
			run := func(q Quantization) [][]float32 {
				m, err := Load(src, LoadOptions{Backend: be, Quant: q})
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				st, _ := m.NewState()
				defer st.Free()
				ctx := context.Background()
				var out [][]float32
				logits := make([]float32, cfg.Vocab)
				if err := m.Forward(ctx, st, []int32{24281, 59, 4571, 261, 5585, 41693, 59}, logits); err != nil {
					t.Fatal(err)
				}
				out = append(out, append([]float32(nil), logits...))
				for _, tok := range []int32{11, 2000, 33, 40000, 7} { // the same tokens for both
					if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
						t.Fatal(err)
					}
					out = append(out, append([]float32(nil), logits...))
				}
				return out
			}
			ref, q := run(QuantNone), run(QuantInt8)
			var worst, worstL2 float64
			same := 0
			for i := range ref {
				mr, l2, top := quantError(q[i], ref[i])
				worst, worstL2 = max(worst, mr), max(worstL2, l2)
				if top {
					same++
				}
			}
			t.Logf("%s int8 vs bf16: max |Δlogits| %.3g·std, relative L2 %.3g, same top token %d/%d", shape, worst, worstL2, same, len(ref))
			if !(worst <= int8MaxRelTol) || !(worstL2 <= int8L2Tol) {
				t.Errorf("int8 logits off by %.3g·std (tolerance %g), relative L2 %.3g (tolerance %g)", worst, int8MaxRelTol, worstL2, int8L2Tol)
			}
		})
	}
}
