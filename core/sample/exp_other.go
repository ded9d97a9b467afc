//go:build !amd64 || purego

package sample

import "math"

// expRangeFast has no vector form here: expRange runs every element.
func expRangeFast(dst, x []float32, m float64, tab *[expTableSize]float64) (s [4]float64, done int) {
	return s, 0
}

// maxFast has no vector form here.
func maxFast(x []float32) (m float32, done int) { return float32(math.Inf(-1)), 0 }

// scaleFast has no vector form here.
func scaleFast(dst []float32, inv float64) int { return 0 }
