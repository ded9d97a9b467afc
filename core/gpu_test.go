package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/cuda"
)

// cudaBackend opens the GPU or skips the test, saying why.
func cudaBackend(t testing.TB) kernels.Backend {
	t.Helper()
	be, err := cuda.New(cuda.Options{})
	var un *kernels.UnavailableError
	if errors.As(err, &un) {
		t.Skipf("no GPU: %s", un.Reason)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { be.Close() })
	return be
}

// f32Source presents a checkpoint with every tensor converted to float32.
type f32Source struct{ Source }

func (s f32Source) Tensors() []checkpoint.Info {
	infos := s.Source.Tensors()
	out := make([]checkpoint.Info, len(infos))
	for i, info := range infos {
		info.DType = kernels.F32
		out[i] = info
	}
	return out
}

func (s f32Source) Lookup(name string) (checkpoint.Info, bool) {
	info, ok := s.Source.Lookup(name)
	info.DType = kernels.F32
	return info, ok
}

func (s f32Source) Bytes(name string) ([]byte, error) {
	info, _ := s.Source.Lookup(name)
	b, err := s.Source.Bytes(name)
	if err != nil {
		return nil, err
	}
	f := make([]float32, info.Len())
	if err := info.DType.Decode(f, b); err != nil {
		return nil, err
	}
	return half.Bytes(f), nil
}

// TestGoldenCUDA runs every fixture on the GPU in both modes: with the
// weights upcast to float32 at the CPU tolerance (1e-3·std), and with the
// bf16 weights as stored within 2e-2·std (the measured error is logged).
func TestGoldenCUDA(t *testing.T) {
	be := cudaBackend(t)
	for _, name := range []string{"tiny", "small", "long"} {
		for _, dtype := range []string{"f32", "bf16"} {
			for _, mode := range []string{"seq", "rnn"} {
				t.Run(fmt.Sprintf("%s/%s/%s", name, dtype, mode), func(t *testing.T) {
					f, err := checkpoint.Open(filepath.Join("..", "testdata", "rwkv7", name+".pth"))
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					var src Source = f
					tol := 2e-2
					if dtype == "f32" {
						src, tol = f32Source{f}, 1e-3
					}
					m, err := Load(src, LoadOptions{Backend: be})
					if err != nil {
						t.Fatal(err)
					}
					defer m.Close()
					worst := checkGoldenModel(t, m, name, mode, tol)
					t.Logf("max |Δlogits| = %.2e × std(logits)", worst)
				})
			}
		}
	}
}

// TestCUDAMatchesCPUGreedy decodes 256 greedy tokens from random float32
// weights at the 0.1B shape on both backends and requires the same tokens.
func TestCUDAMatchesCPUGreedy(t *testing.T) {
	gpu := cudaBackend(t)
	if testing.Short() {
		t.Skip("0.1B model in -short mode")
	}
	cfg, _ := OfficialShape("0.1b")
	cfg.DType = kernels.F32
	src, err := RandomSource(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	run := func(be kernels.Backend) []int32 {
		m, err := Load(src, LoadOptions{Backend: be})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		st, _ := m.NewState()
		defer st.Free()
		logits := make([]float32, cfg.Vocab)
		ctx := context.Background()
		if err := m.Forward(ctx, st, []int32{24281, 59, 4571, 261, 5585, 41693, 59}, logits); err != nil {
			t.Fatal(err)
		}
		var toks []int32
		for range 256 {
			tok := sample.Greedy(logits)
			toks = append(toks, tok)
			if err := m.Forward(ctx, st, []int32{tok}, logits); err != nil {
				t.Fatal(err)
			}
		}
		return toks
	}
	want := run(newCPU(t))
	got := run(gpu)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("step %d: GPU token %d, CPU token %d (GPU %v…, CPU %v…)", i, got[i], want[i], got[:i+1], want[:i+1])
		}
	}
}
