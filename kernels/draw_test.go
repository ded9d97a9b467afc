package kernels

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"
)

// TestEncodeDraws checks the layout a Drawer reads: the row count, even
// offsets, each spec's numbers where its offset says, the size DrawWords
// gives, and errors for settings no draw can take.
func TestEncodeDraws(t *testing.T) {
	specs := []DrawSpec{
		{U: 0.25, InvTemp: 1, TopP: 0.3, Shifts: []LogitShift{{ID: 7, Sub: 0.5}, {ID: 0, Sub: math.Inf(1)}}},
		{U: 0.75, InvTemp: 2, TopP: 1, TopK: 40},
		{U: 0, InvTemp: 0.5, TopP: 0, Shifts: []LogitShift{{ID: 65535, Sub: -1.5}}},
	}
	b, err := EncodeDraws(specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%4 != 0 || len(b)/4 > DrawWords(len(specs), 3) {
		t.Fatalf("%d bytes, want whole words and at most DrawWords = %d", len(b), DrawWords(len(specs), 3))
	}
	word := func(i int) uint32 { return binary.LittleEndian.Uint32(b[4*i:]) }
	f64 := func(i int) float64 { return math.Float64frombits(uint64(word(i)) | uint64(word(i+1))<<32) }
	if word(0) != 3 {
		t.Fatalf("row count %d", word(0))
	}
	for r, s := range specs {
		o := int(word(1 + r))
		if o%2 != 0 {
			t.Errorf("row %d: odd offset %d", r, o)
		}
		n := int(word(o + 7))
		if f64(o) != s.U || f64(o+2) != s.InvTemp || f64(o+4) != s.TopP || int(word(o+6)) != s.TopK || n != len(s.Shifts) {
			t.Errorf("row %d: read %v %v %v %d %d, wrote %+v", r, f64(o), f64(o+2), f64(o+4), word(o+6), n, s)
		}
		for j, sh := range s.Shifts {
			if f64(o+8+2*j) != sh.Sub || int32(word(o+8+2*n+j)) != sh.ID {
				t.Errorf("row %d, shift %d: read %v at %d, wrote %+v", r, j, f64(o+8+2*j), int32(word(o+8+2*n+j)), sh)
			}
		}
	}
	if back, err := DecodeDraws(b); err != nil || !reflect.DeepEqual(back, specs) {
		t.Errorf("DecodeDraws: %+v, %v; want %+v", back, err, specs)
	}
	for _, bad := range []DrawSpec{
		{U: 1, InvTemp: 1, TopP: 1},
		{U: -0.1, InvTemp: 1, TopP: 1},
		{U: 0.5, InvTemp: 0, TopP: 1},
		{U: 0.5, InvTemp: math.Inf(1), TopP: 1},
		{U: 0.5, InvTemp: 1, TopP: math.NaN()},
		{U: 0.5, InvTemp: 1, TopP: 1, TopK: -1},
	} {
		if _, err := EncodeDraws([]DrawSpec{bad}); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// FuzzDecodeDraws feeds DecodeDraws arbitrary bytes: it must return specs
// or an error, never panic, and specs it returns must encode again to a
// buffer that decodes to the same specs.
func FuzzDecodeDraws(f *testing.F) {
	good, _ := EncodeDraws([]DrawSpec{{U: 0.5, InvTemp: 1, TopP: 0.3, Shifts: []LogitShift{{ID: 3, Sub: 1}}}, {U: 0.1, InvTemp: 2, TopP: 1, TopK: 5}})
	f.Add(good)
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		specs, err := DecodeDraws(b)
		if err != nil {
			return
		}
		again, err := EncodeDraws(specs)
		if err != nil {
			return // valid layout, settings a draw refuses
		}
		back, err := DecodeDraws(again)
		if err != nil || len(back) != len(specs) {
			t.Fatalf("re-encoded specs do not decode: %v", err)
		}
	})
}
