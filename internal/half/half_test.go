package half

import (
	"math"
	"testing"
)

func TestF16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToF16(f); got != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%g) = %#04x", h, f, got)
		}
	}
}

func TestBF16RoundTrip(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := BF16ToF32(uint16(h))
		if math.IsNaN(float64(f)) {
			continue
		}
		if got := F32ToBF16(f); got != uint16(h) {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)=%g) = %#04x", h, f, got)
		}
	}
}

func TestKnownValues(t *testing.T) {
	tests := []struct {
		name string
		got  float32
		want float32
	}{
		{"f16 one", F16ToF32(0x3c00), 1},
		{"f16 -2", F16ToF32(0xc000), -2},
		{"f16 max", F16ToF32(0x7bff), 65504},
		{"f16 smallest subnormal", F16ToF32(0x0001), float32(math.Ldexp(1, -24))},
		{"bf16 one", BF16ToF32(0x3f80), 1},
		{"bf16 pi", BF16ToF32(F32ToBF16(math.Pi)), 3.140625},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: got %g, want %g", tc.name, tc.got, tc.want)
		}
	}
}
