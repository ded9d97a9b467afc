package preprocess

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/gif"  // register GIF with image.Decode
	_ "image/jpeg" // register JPEG with image.Decode
	_ "image/png"  // register PNG with image.Decode
	"io"
	"strings"
)

// Limits that keep a hostile or corrupt file from causing huge work.
const (
	// MaxFileBytes is the largest encoded image Decode reads.
	MaxFileBytes = 256 << 20
	// MaxSide is the largest width or height Decode accepts.
	MaxSide = 1 << 15
	// MaxPixels is the largest width×height Decode accepts (64 Mpx).
	MaxPixels = 64 << 20
	// MaxDecodedBytes is the most memory the decoded pixels may take,
	// estimated from the header's colour model before decoding: 64 Mpx at
	// 8-bit RGBA, 32 Mpx at 16-bit RGBA, 85 Mpx of 8-bit grey (but
	// MaxPixels still applies). Preprocessing then needs 3 bytes a pixel
	// more for the RGB copy, so the peak is under 450 MiB.
	MaxDecodedBytes = 256 << 20
)

// bytesPerPixel is the memory a decoded pixel of colour model m takes in
// the image types Go's decoders return (8 for models it does not know).
func bytesPerPixel(m color.Model) int64 {
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // 4:4:4 at most
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel:
		return 4
	case color.RGBA64Model, color.NRGBA64Model:
		return 8
	}
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	return 8
}

// Decode reads a PNG, JPEG or GIF image from r. The declared dimensions are
// checked with image.DecodeConfig before any pixel is decoded, so a file
// claiming a huge size is rejected cheaply. Like PIL's Image.open, Decode
// applies no EXIF orientation. JPEG pixels come from Go's decoder, whose
// IDCT and chroma upsampling can differ from libjpeg's (PIL) by a few
// levels; PNG and GIF decode exactly.
func Decode(r io.Reader) (img image.Image, err error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("decode image: read: %w", err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("decode image: file is larger than %d bytes", MaxFileBytes)
	}
	if len(data) == 0 {
		return nil, errors.New("decode image: empty input")
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode image: header: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return nil, fmt.Errorf("decode image: %s declares an empty size %d×%d", format, cfg.Width, cfg.Height)
	}
	if cfg.Width > MaxSide || cfg.Height > MaxSide || int64(cfg.Width)*int64(cfg.Height) > MaxPixels {
		return nil, fmt.Errorf("decode image: %s declares %d×%d pixels, over the limit (%d a side, %d in all)",
			format, cfg.Width, cfg.Height, MaxSide, MaxPixels)
	}
	if n := int64(cfg.Width) * int64(cfg.Height) * bytesPerPixel(cfg.ColorModel); n > MaxDecodedBytes {
		return nil, fmt.Errorf("decode image: %s of %d×%d pixels would take %d MiB decoded, over the limit of %d MiB",
			format, cfg.Width, cfg.Height, n>>20, MaxDecodedBytes>>20)
	}
	defer func() {
		// The standard decoders are not expected to panic; if one does on a
		// malformed file, report it as a decode error instead of crashing.
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("decode image: %s decoder failed: %v", format, p)
		}
	}()
	img, _, err = image.Decode(bytes.NewReader(data))
	if err != nil {
		if strings.HasPrefix(err.Error(), format+": ") { // "png: invalid format", not "png: png: ..."
			return nil, fmt.Errorf("decode image: %w", err)
		}
		return nil, fmt.Errorf("decode image: %s: %w", format, err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return nil, fmt.Errorf("decode image: %s decoded to an empty %d×%d image", format, b.Dx(), b.Dy())
	}
	return img, nil
}
