package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Drawer is implemented by backends that draw each row's next token where
// the logits are, with the rules of the project's sampler (core/sample:
// penalties and bans, softmax, top-p, top-k, temperature, one uniform
// number mapped through the kept tokens in id order), so that only the
// token and a check come back instead of the logits.
type Drawer interface {
	// Draw draws a token from each row t of x (F32 [T, V]) under the t-th
	// of the specs encoded in spec (I32, EncodeDraws) and sets dst[2t]
	// (dst I32 with 2T elements) to it and dst[2t+1] to a doubt flag;
	// work is F32 scratch of at least DrawWork(T, V) elements. A flag of
	// 0 says the token is the one the host sampler picks from that row
	// with the same uniform number: no decision (the top-p cutoff, a
	// top-k boundary, the draw) was closer than the backend's rounding
	// could change. A 1 says the caller must sample from the row on the
	// host (also when no token can be drawn, or a probability is
	// infinite).
	Draw(dst, x, spec, work Tensor)
}

// DrawWork is the scratch a Drawer needs for rows rows of V logits (F32
// elements): for each row the shifted logits, the probabilities and 2,048
// words of partial sums, then three words a row to synchronise its blocks.
func DrawWork(rows, V int) int { return rows*(2*V+2048) + 3*rows }

// DrawSpec is one row's draw for a Drawer: the settings as the sampler
// applies them and the uniform number it drew.
type DrawSpec struct {
	U       float64 // the uniform number in [0, 1)
	InvTemp float64 // 1/temperature, > 0: weights are (p/pmax)^InvTemp
	TopP    float64 // nucleus mass; 1 or more keeps every token
	TopK    int     // keeps the TopK most probable; 0 (or ≥ V) is off
	// Shifts lower single logits before the softmax (penalties and bans):
	// logit[ID] becomes float32(float64(logit[ID]) − Sub), −∞ for a Sub of
	// +∞. IDs are distinct; those outside the row are ignored.
	Shifts []LogitShift
}

// LogitShift is one entry of DrawSpec.Shifts.
type LogitShift struct {
	ID  int32
	Sub float64
}

// drawHeader is the number of I32 words before a spec's shifts: U,
// InvTemp and TopP as float64 (two words each), TopK and the shift count.
const drawHeader = 8

// DrawWords is the number of I32 words EncodeDraws writes for rows specs
// with shifts entries in all.
func DrawWords(rows, shifts int) int {
	return 1 + rows + rows*(drawHeader+1) + 3*shifts // +1 a row: alignment padding
}

// EncodeDraws lays specs out as a Drawer reads them: word 0 holds the row
// count, word 1+t the offset (in words, even, so that float64s are 8-byte
// aligned) of row t's spec; a spec is U, InvTemp, TopP (float64 each),
// TopK, the shift count n, n Subs (float64) and n IDs. Numbers are little
// endian.
func EncodeDraws(specs []DrawSpec) ([]byte, error) {
	n := 0
	for _, s := range specs {
		if !(s.InvTemp > 0) || math.IsInf(s.InvTemp, 1) || math.IsNaN(s.TopP) || !(s.U >= 0 && s.U < 1) || s.TopK < 0 || s.TopK > math.MaxInt32 {
			return nil, fmt.Errorf("draw spec: u %v, 1/temperature %v, top-p %v, top-k %d", s.U, s.InvTemp, s.TopP, s.TopK)
		}
		n += len(s.Shifts)
	}
	w := make([]uint32, 1+len(specs), DrawWords(len(specs), n))
	w[0] = uint32(len(specs))
	f64 := func(v float64) { b := math.Float64bits(v); w = append(w, uint32(b), uint32(b>>32)) }
	for t, s := range specs {
		if len(w)%2 == 1 {
			w = append(w, 0)
		}
		w[1+t] = uint32(len(w))
		f64(s.U)
		f64(s.InvTemp)
		f64(s.TopP)
		w = append(w, uint32(s.TopK), uint32(len(s.Shifts)))
		for _, sh := range s.Shifts {
			f64(sh.Sub)
		}
		for _, sh := range s.Shifts {
			w = append(w, uint32(sh.ID))
		}
	}
	out := make([]byte, 4*len(w))
	for i, v := range w {
		binary.LittleEndian.PutUint32(out[4*i:], v)
	}
	return out, nil
}

// DecodeDraws reads specs laid out by EncodeDraws (for a Drawer written in
// Go, and for tests). It checks every offset and count against the
// buffer's length and returns an error naming the first that does not
// fit.
func DecodeDraws(b []byte) ([]DrawSpec, error) {
	if len(b)%4 != 0 || len(b) < 4 {
		return nil, fmt.Errorf("draw specs: %d bytes, want whole 32-bit words", len(b))
	}
	nw := len(b) / 4
	word := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	f64 := func(i int) float64 { return math.Float64frombits(uint64(word(i)) | uint64(word(i+1))<<32) }
	rows := int(word(0))
	if rows > nw-1 {
		return nil, fmt.Errorf("draw specs: %d rows in %d words", rows, nw)
	}
	specs := make([]DrawSpec, rows)
	for t := range specs {
		o := int(word(1 + t))
		if o%2 != 0 || o < 1+rows || o+drawHeader > nw {
			return nil, fmt.Errorf("draw specs: row %d at word %d of %d", t, o, nw)
		}
		n := int(word(o + 7))
		if n > (nw-o-drawHeader)/3 {
			return nil, fmt.Errorf("draw specs: row %d has %d shifts, %d words left", t, n, nw-o-drawHeader)
		}
		s := DrawSpec{U: f64(o), InvTemp: f64(o + 2), TopP: f64(o + 4), TopK: int(int32(word(o + 6)))}
		if n > 0 {
			s.Shifts = make([]LogitShift, n)
		}
		for j := range s.Shifts {
			s.Shifts[j] = LogitShift{ID: int32(word(o + drawHeader + 2*n + j)), Sub: f64(o + drawHeader + 2*j)}
		}
		specs[t] = s
	}
	return specs, nil
}
