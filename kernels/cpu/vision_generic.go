//go:build purego || !amd64

package cpu

// expShiftSum replaces each x of row (all at most m) by e^(x−m) and
// returns their sum.
func expShiftSum(row []float32, m float32) float32 { return expShiftSumGeneric(row, m) }

// geluErfRange sets d[i] = GELU(x[i]), exact form.
func geluErfRange(d, x []float32) {
	for i, v := range x {
		d[i] = geluErf(v)
	}
}

// rowMax returns the largest value of a non-empty row.
func rowMax(row []float32) float32 {
	m := row[0]
	for _, v := range row {
		m = max(m, v)
	}
	return m
}
