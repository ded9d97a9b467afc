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

// TestToRGBFastPaths checks that the direct conversions of common image
// types give what the per-pixel path (rgbAt) gives, sub-images included.
func TestToRGBFastPaths(t *testing.T) {
	r := image.Rect(0, 0, 37, 23)
	var imgs []image.Image
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		y := image.NewYCbCr(r, ratio)
		for i := range y.Y {
			y.Y[i] = uint8(i * 7)
		}
		for i := range y.Cb {
			y.Cb[i], y.Cr[i] = uint8(i*13+5), uint8(255-i*3)
		}
		imgs = append(imgs, y, y.SubImage(image.Rect(3, 5, 30, 20)))
	}
	rgba := image.NewRGBA(r)
	for i := range rgba.Pix {
		rgba.Pix[i] = uint8(i * 11)
	}
	for i := 3; i < len(rgba.Pix); i += 8 {
		rgba.Pix[i] = 255 // half the pixels opaque
	}
	for i := 0; i < len(rgba.Pix); i += 4 { // valid premultiplied colours
		a := rgba.Pix[i+3]
		rgba.Pix[i], rgba.Pix[i+1], rgba.Pix[i+2] = min(rgba.Pix[i], a), min(rgba.Pix[i+1], a), min(rgba.Pix[i+2], a)
	}
	gray := image.NewGray(r)
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 3)
	}
	imgs = append(imgs, rgba, rgba.SubImage(image.Rect(1, 1, 20, 9)), gray)
	for k, img := range imgs {
		got := toRGB(img)
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				i := 3 * ((y-b.Min.Y)*b.Dx() + x - b.Min.X)
				r, g, bb := rgbAt(img, x, y)
				if got.pix[i] != r || got.pix[i+1] != g || got.pix[i+2] != bb {
					t.Fatalf("image %d (%T) pixel (%d,%d): %v, want %v", k, img, x, y, got.pix[i:i+3], []uint8{r, g, bb})
				}
			}
		}
	}
}

// BenchmarkToRGB times the conversion of a decoded 1024×768 JPEG (YCbCr
// 4:2:0) through the direct path and through the per-pixel one.
func BenchmarkToRGB(b *testing.B) {
	y := image.NewYCbCr(image.Rect(0, 0, 1024, 768), image.YCbCrSubsampleRatio420)
	for i := range y.Y {
		y.Y[i] = uint8(i)
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			toRGB(y)
		}
	})
	b.Run("per-pixel", func(b *testing.B) {
		dst := make([]uint8, 3*1024)
		for b.Loop() {
			for yy := range 768 {
				for x := range 1024 {
					dst[3*x], dst[3*x+1], dst[3*x+2] = rgbAt(y, x, yy)
				}
			}
		}
	})
}
