// Package preprocess is the first stage of the VisualRWKV-7 image encoder:
// it decodes an image, converts it to RGB, resizes it to each vision tower's
// square input size exactly like PIL's bicubic resize, and turns the result
// into normalised float32 CHW pixels.
//
// VisualRWKV-7 feeds the same picture to three towers (DINOv2, SigLIP and
// SAM). Each one uses a plain square resize (aspect ratio not kept, no crop,
// no padding), the ToTensor scaling by 1/255 and a per-channel
// (x − mean) / std normalisation. The resize follows Pillow's
// ImagingResample bit for bit: a separable Keys cubic filter (a = −0.5) whose
// support widens with the downscale factor, 22-bit fixed-point weights and
// clipping to uint8 after the horizontal and after the vertical pass.
package preprocess

import (
	"image"
	"image/color"
	"sync"
)

// Tower describes the input one vision tower expects.
type Tower struct {
	// Name is the tower's short name: "dino", "siglip" or "sam".
	Name string
	// Size is the side of the square input image in pixels.
	Size int
	// Mean and Std normalise each RGB channel after scaling to [0, 1]:
	// out = (x − Mean[c]) / Std[c].
	Mean, Std [3]float32
}

// ImageNet mean and standard deviation, used by DINOv2 and (through
// VisualRWKV's shared transform) by SAM.
var (
	imagenetMean = [3]float32{0.485, 0.456, 0.406}
	imagenetStd  = [3]float32{0.229, 0.224, 0.225}
)

// DINOv2 returns the DINOv2 tower's preprocessing at the given input size
// (448 in the released VisualRWKV-7): bicubic resize to size×size and
// ImageNet normalisation.
func DINOv2(size int) Tower {
	return Tower{Name: "dino", Size: size, Mean: imagenetMean, Std: imagenetStd}
}

// SigLIP returns the SigLIP tower's preprocessing at the given input size
// (448 in the released VisualRWKV-7): bicubic resize to size×size and
// mean 0.5 / std 0.5, which maps pixels to [−1, 1].
func SigLIP(size int) Tower {
	half := [3]float32{0.5, 0.5, 0.5}
	return Tower{Name: "siglip", Size: size, Mean: half, Std: half}
}

// SAM returns the SAM tower's preprocessing at the given input size (1024 in
// the released VisualRWKV-7). VisualRWKV-7 does not use SAM's own
// longest-side resize and padding: it reuses the DINOv2 transform with a
// plain square bicubic resize, and ImageNet normalisation (which equals
// SAM's native pixel mean/std on the 0..255 scale).
func SAM(size int) Tower {
	return Tower{Name: "sam", Size: size, Mean: imagenetMean, Std: imagenetStd}
}

// Resize converts img to RGB and resizes it to t.Size×t.Size with Pillow's
// bicubic filter. The result is opaque (alpha 255); like PIL's
// convert("RGB"), any alpha channel of the source is dropped, not blended.
// An empty source gives a black image; a non-positive t.Size gives an empty
// one.
func Resize(img image.Image, t Tower) *image.NRGBA {
	return toNRGBA(resizeRGB(toRGB(img), t.Size))
}

// resizeRGB resizes an RGB raster to size×size (an empty raster for a
// non-positive size).
func resizeRGB(src rgbImage, size int) rgbImage {
	if size <= 0 {
		return rgbImage{}
	}
	return resampleBicubic(src, size, size)
}

// toNRGBA converts an RGB raster to an opaque image.
func toNRGBA(rgb rgbImage) *image.NRGBA {
	out := image.NewNRGBA(image.Rect(0, 0, rgb.w, rgb.h))
	for i, j := 0, 0; i < len(rgb.pix); i, j = i+3, j+4 {
		out.Pix[j] = rgb.pix[i]
		out.Pix[j+1] = rgb.pix[i+1]
		out.Pix[j+2] = rgb.pix[i+2]
		out.Pix[j+3] = 255
	}
	return out
}

// Pixels resizes img for tower t (see Resize) and returns the normalised
// pixels as float32 in CHW order: 3 planes of t.Size×t.Size values.
func Pixels(img image.Image, t Tower) []float32 {
	return Normalize(Resize(img, t), t)
}

// Prepare returns the pixels of img for each tower, as Pixels does, in the
// order of towers. It converts img to RGB once and resizes it once per
// distinct size (VisualRWKV-7's DINOv2 and SigLIP towers share their 448²
// resize; SAM's is 1024²), the resizes running concurrently.
func Prepare(img image.Image, towers ...Tower) [][]float32 {
	r := NewRGB(img)
	out := make([][]float32, len(towers))
	var wg sync.WaitGroup
	for i, t := range towers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = r.Pixels(t, nil)
		}()
	}
	wg.Wait()
	return out
}

// RGB is an image converted to 8-bit RGB once, from which the towers'
// inputs are made; each size is resized once, however many towers use it.
// Its methods may be called from several goroutines.
type RGB struct {
	src rgbImage

	mu      sync.Mutex
	resized map[int]*resizeOnce
}

// resizeOnce is one size's resize, computed by the first caller.
type resizeOnce struct {
	once sync.Once
	img  rgbImage
}

// NewRGB converts img to RGB as PIL's convert("RGB") does (see Resize).
func NewRGB(img image.Image) *RGB {
	return &RGB{src: toRGB(img), resized: map[int]*resizeOnce{}}
}

// resize returns the image resized to size×size.
func (r *RGB) resize(size int) rgbImage {
	r.mu.Lock()
	ro, ok := r.resized[size]
	if !ok {
		ro = &resizeOnce{}
		r.resized[size] = ro
	}
	r.mu.Unlock()
	ro.once.Do(func() { ro.img = resizeRGB(r.src, size) })
	return ro.img
}

// Pixels returns the image resized for tower t and normalised, float32
// CHW (3 planes of t.Size² values), as the package function Pixels does.
// The result goes into dst when it has room (its length is set), else
// into a new slice.
func (r *RGB) Pixels(t Tower, dst []float32) []float32 {
	rgb := r.resize(t.Size)
	n := 3 * rgb.w * rgb.h
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	normalizeRGB(dst, rgb, t)
	return dst
}

// normalizeRGB writes (v/255 − Mean[c]) / Std[c] for each channel value
// of rgb into CHW planes, through one 256-entry table per channel (the
// same float32 arithmetic, so the same values as Normalize), rows split
// over goroutines.
func normalizeRGB(dst []float32, rgb rgbImage, t Tower) {
	var lut [3][256]float32
	for c := range 3 {
		for v := range 256 {
			lut[c][v] = (float32(v)/255 - t.Mean[c]) / t.Std[c]
		}
	}
	w, h := rgb.w, rgb.h
	plane := w * h
	parallelRows(h, func(y0, y1 int) {
		r, g, b := dst[y0*w:y1*w], dst[plane+y0*w:plane+y1*w], dst[2*plane+y0*w:2*plane+y1*w]
		px := rgb.pix[3*y0*w : 3*y1*w]
		for i := range r {
			r[i] = lut[0][px[3*i]]
			g[i] = lut[1][px[3*i+1]]
			b[i] = lut[2][px[3*i+2]]
		}
	})
}

// Normalize turns an already resized image into float32 CHW pixels for
// tower t, computing (v/255 − Mean[c]) / Std[c] in float32 as torchvision's
// ToTensor and Normalize do. Alpha is ignored.
func Normalize(img *image.NRGBA, t Tower) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	out := make([]float32, 3*plane)
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				v := float32(row[4*x+c]) / 255
				out[c*plane+y*w+x] = (v - t.Mean[c]) / t.Std[c]
			}
		}
	}
	return out
}

// rgbImage is a packed 8-bit RGB raster, three bytes a pixel, row-major.
type rgbImage struct {
	w, h int
	pix  []uint8
}

// toRGB copies img into a packed RGB raster the way PIL's convert("RGB")
// does for the modes Go decoders produce: alpha is dropped (colour values
// are taken un-premultiplied), grey is replicated, 16-bit samples keep their
// high byte.
func toRGB(img image.Image) rgbImage {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := rgbImage{w: w, h: h, pix: make([]uint8, 3*w*h)}
	// Rows are independent: convert bands of them concurrently.
	parallelRows(h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			toRGBRow(out.pix[3*y*w:3*(y+1)*w], img, b.Min.X, b.Min.Y+y, w)
		}
	})
	return out
}

// toRGBRow converts the w pixels of img's row y from x0 into dst (3 bytes
// a pixel). Common image types are read directly; every path gives what
// rgbAt gives.
func toRGBRow(dst []uint8, img image.Image, x0, y, w int) {
	switch src := img.(type) {
	case *image.NRGBA:
		row := src.Pix[src.PixOffset(x0, y):]
		for x := 0; x < w; x++ {
			dst[3*x], dst[3*x+1], dst[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
		}
	case *image.RGBA:
		row := src.Pix[src.PixOffset(x0, y):]
		for x := 0; x < w; x++ {
			if row[4*x+3] == 255 {
				dst[3*x], dst[3*x+1], dst[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
			} else {
				dst[3*x], dst[3*x+1], dst[3*x+2] = rgbAt(img, x0+x, y)
			}
		}
	case *image.Gray:
		row := src.Pix[src.PixOffset(x0, y):]
		for x := 0; x < w; x++ {
			v := row[x]
			dst[3*x], dst[3*x+1], dst[3*x+2] = v, v, v
		}
	case *image.YCbCr:
		// JPEG: the same conversion as color.YCbCr's RGBA method, which
		// the generic path reaches through an interface per pixel.
		for x := 0; x < w; x++ {
			yi, ci := src.YOffset(x0+x, y), src.COffset(x0+x, y)
			r, g, bb, _ := color.YCbCr{Y: src.Y[yi], Cb: src.Cb[ci], Cr: src.Cr[ci]}.RGBA()
			dst[3*x], dst[3*x+1], dst[3*x+2] = uint8(r>>8), uint8(g>>8), uint8(bb>>8)
		}
	default:
		for x := 0; x < w; x++ {
			dst[3*x], dst[3*x+1], dst[3*x+2] = rgbAt(img, x0+x, y)
		}
	}
}

// rgbAt returns the un-premultiplied 8-bit RGB colour of one pixel.
func rgbAt(img image.Image, x, y int) (r, g, b uint8) {
	switch c := img.At(x, y).(type) {
	case color.NRGBA:
		return c.R, c.G, c.B
	case color.NRGBA64:
		return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
	case color.Gray16:
		v := uint8(c.Y >> 8)
		return v, v, v
	case color.RGBA64:
		if c.A == 0xffff {
			return uint8(c.R >> 8), uint8(c.G >> 8), uint8(c.B >> 8)
		}
		n := color.NRGBA64Model.Convert(c).(color.NRGBA64)
		return uint8(n.R >> 8), uint8(n.G >> 8), uint8(n.B >> 8)
	default:
		n := color.NRGBAModel.Convert(c).(color.NRGBA)
		return n.R, n.G, n.B
	}
}
