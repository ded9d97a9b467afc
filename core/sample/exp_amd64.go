//go:build !purego

package sample

import (
	"math"

	"golang.org/x/sys/cpu"
)

// expBlocksAVX2 is expRange's loop over n blocks of four, four lanes at a
// time: lane j accumulates what expRange's sum j does, with the same
// operations in the same order (no fused multiply-adds), so the results
// and sums are bit-identical. c holds m, the scale and step of expNeg's
// reduction, its polynomial's coefficients 1, 1/2, 1/6, 1/24, and −104;
// tab is expTable(); sums receives the four lanes' sums.
//
//go:noescape
func expBlocksAVX2(dst, x *float32, n int, c *[8]float64, tab *[expTableSize]float64, sums *[4]float64)

// hasAVX2 is read once: the sampler's vector exponential needs AVX2 (the
// gather and the 256-bit integer ops).
var hasAVX2 = cpu.X86.HasAVX2

// expRangeFast runs the blocks of four of expRange with AVX2 where the CPU
// has it and returns the four partial sums and how many elements it did.
func expRangeFast(dst, x []float32, m float64, tab *[expTableSize]float64) (s [4]float64, done int) {
	n := len(x) / 4
	if !hasAVX2 || n == 0 {
		return s, 0
	}
	const (
		scale = expTableSize / math.Ln2
		step  = math.Ln2 / expTableSize
	)
	c := [8]float64{m, scale, 0.5, step, 1, 1.0 / 6, 1.0 / 24, -104}
	expBlocksAVX2(&dst[0], &x[0], n, &c, tab, &s)
	return s, 4 * n
}

// maxAVX2 returns the largest of x[0, 8n), n ≥ 1.
//
//go:noescape
func maxAVX2(x *float32, n int) float32

// scaleAVX2 sets dst[i] = float32(float64(dst[i])·inv) for i < 4n.
//
//go:noescape
func scaleAVX2(dst *float32, n int, inv float64)

// maxFast returns the largest of x's first done elements (a multiple of
// eight; 0 when the CPU has no AVX2 or x is short), which has no NaN.
func maxFast(x []float32) (m float32, done int) {
	n := len(x) / 8
	if !hasAVX2 || n == 0 {
		return float32(math.Inf(-1)), 0
	}
	return maxAVX2(&x[0], n), 8 * n
}

// scaleFast does the multiple-of-four prefix of softmax's last pass and
// returns its length.
func scaleFast(dst []float32, inv float64) int {
	n := len(dst) / 4
	if !hasAVX2 || n == 0 {
		return 0
	}
	scaleAVX2(&dst[0], n, inv)
	return 4 * n
}
