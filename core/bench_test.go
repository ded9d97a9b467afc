package core

import (
	"context"
	"testing"
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
func BenchmarkDecode(b *testing.B) {
	m := benchModel(b, "0.1b")
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
