package core

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/goose-rwkv/goose/internal/memfault"
)

// benchModel loads random weights at an official shape.
func benchModel(b *testing.B, shape string) *Model {
	b.Helper()
	cfg, _ := OfficialShape(shape)
	src, err := RandomSource(cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Load(src, LoadOptions{Backend: newCPU(b)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	return m
}

// BenchmarkDecode measures one-token steps (logits included) at the 0.1B
// shape; see gooseapp bench for the figures in BENCHMARKS.md.
func BenchmarkDecode(b *testing.B) { benchDecode(b, benchModel(b, "0.1b")) }

// BenchmarkDecodeFile is BenchmarkDecode with the weights memory-mapped
// from a file, as the app and the server run: each step also checks that
// the file did not change (one fstat) and guards against memory faults.
func BenchmarkDecodeFile(b *testing.B) {
	cfg, _ := OfficialShape("0.1b")
	path := filepath.Join(b.TempDir(), "0.1b.safetensors")
	if err := WriteRandom(path, cfg, 1); err != nil {
		b.Fatal(err)
	}
	m, err := LoadFile(path, LoadOptions{Backend: newCPU(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	benchDecode(b, m)
}

// benchDecode runs one-token steps on m.
func benchDecode(b *testing.B, m *Model) {
	st, _ := m.NewState()
	defer st.Free()
	logits := make([]float32, m.Config().Vocab)
	ctx := context.Background()
	b.SetBytes(m.Config().WeightBytes)
	for i := 0; b.Loop(); i++ {
		if err := m.Forward(ctx, st, []int32{int32(1 + i%60000)}, logits); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkForwardGuard measures what each forward call pays for the
// hostile-neighbour guards alone: the weights file check (one fstat) and
// the memory-fault guard. Compare with BenchmarkDecodeFile's time per token.
func BenchmarkForwardGuard(b *testing.B) {
	path := filepath.Join(b.TempDir(), "m.safetensors")
	cfg := Config{Layers: 1, Width: 64, Vocab: 256, DecayLoRA: 16, AlphaLoRA: 16, GateLoRA: 16}
	if err := WriteRandom(path, cfg, 1); err != nil {
		b.Fatal(err)
	}
	m, err := LoadFile(path, LoadOptions{Backend: newCPU(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	guarded := func() (err error) {
		if err := m.checkSource(); err != nil {
			return err
		}
		defer memfault.CatchFile(m.path, &err)()
		return nil
	}
	for b.Loop() {
		if err := guarded(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrefill measures a 128-token prompt at the 0.1B shape.
func BenchmarkPrefill(b *testing.B) {
	m := benchModel(b, "0.1b")
	st, _ := m.NewState()
	defer st.Free()
	ids := make([]int32, 128)
	for i := range ids {
		ids[i] = int32(1 + i*397%60000)
	}
	logits := make([]float32, m.Config().Vocab)
	ctx := context.Background()
	for b.Loop() {
		if err := m.Forward(ctx, st, ids, logits); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ids)*b.N)/b.Elapsed().Seconds(), "tok/s")
}
