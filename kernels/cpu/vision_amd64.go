//go:build !purego

package cpu

// The image towers' element-wise kernels in AVX2 (vision_amd64.s).

//go:noescape
func expShiftSumAVX2(row *float32, n int, m float32) float32

//go:noescape
func geluAVX2(dst, x *float32, n int)

//go:noescape
func maxAVX2(row *float32, n int) float32

// rowMax returns the largest value of a non-empty row.
func rowMax(row []float32) float32 {
	n := 0
	m := row[0]
	if visionAVX2 && len(row) >= 8 {
		n = len(row) &^ 7
		m = maxAVX2(&row[0], n)
	}
	for _, v := range row[n:] {
		m = max(m, v)
	}
	return m
}

// visionAVX2 says the CPU runs the AVX2/FMA kernels (read once at start;
// it never changes).
var visionAVX2, _ = cpuFeatures()

// expShiftSum replaces each x of row (all at most m) by e^(x−m) and
// returns their sum.
func expShiftSum(row []float32, m float32) float32 {
	n := 0
	var sum float32
	if visionAVX2 && len(row) >= 8 {
		n = len(row) &^ 7
		sum = expShiftSumAVX2(&row[0], n, m)
	}
	return sum + expShiftSumGeneric(row[n:], m)
}

// geluErfRange sets d[i] = GELU(x[i]), exact form.
func geluErfRange(d, x []float32) {
	n := 0
	if visionAVX2 && len(x) >= 8 {
		n = len(x) &^ 7
		geluAVX2(&d[0], &x[0], n)
	}
	for i := n; i < len(x); i++ {
		d[i] = geluErf(x[i])
	}
}
