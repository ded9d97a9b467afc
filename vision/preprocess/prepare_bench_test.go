package preprocess

import (
	"image"
	"testing"
)

// BenchmarkPrepare times VisualRWKV-7's preprocessing of a 1024×768 photo
// for the three released towers (448, 448, 1024).
func BenchmarkPrepare(b *testing.B) {
	img := image.NewNRGBA(image.Rect(0, 0, 1024, 768))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 31)
	}
	for b.Loop() {
		Prepare(img, DINOv2(448), SigLIP(448), SAM(1024))
	}
}

// TestRGBPixelsMatchPixels checks that the shared-resize path gives the
// same values as Pixels, bit for bit, with and without a reused buffer.
func TestRGBPixelsMatchPixels(t *testing.T) {
	img := image.NewNRGBA(image.Rect(0, 0, 97, 61))
	for i := range img.Pix {
		img.Pix[i] = uint8(i*37 + i/5)
	}
	r := NewRGB(img)
	buf := make([]float32, 0, 3*64*64)
	for _, tw := range []Tower{DINOv2(56), SigLIP(56), SAM(64), SAM(128)} {
		want := Pixels(img, tw)
		for _, dst := range [][]float32{nil, buf} {
			got := r.Pixels(tw, dst)
			if len(got) != len(want) {
				t.Fatalf("%s %d: %d values, want %d", tw.Name, tw.Size, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s %d: value %d is %v, want %v", tw.Name, tw.Size, i, got[i], want[i])
				}
			}
		}
	}
}
