package preprocess

import (
	"bytes"
	"image"
	"image/png"
	"strings"
	"testing"
)

// doubled reports an error prefix repeated: "png: png: ...".
func doubled(msg string) bool {
	parts := strings.Split(msg, ": ")
	for i := 1; i < len(parts)-1; i++ {
		if parts[i] == parts[i-1] {
			return true
		}
	}
	return false
}

// TestDecodeErrorNoDoubledPrefix: a PNG cut short said
// "decode image: png: png: invalid format".
func TestDecodeErrorNoDoubledPrefix(t *testing.T) {
	var buf bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 64, 64))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	full := buf.Bytes()
	for _, n := range []int{len(full) / 2, len(full) - 20} {
		_, err := Decode(bytes.NewReader(full[:n]))
		if err == nil {
			t.Fatalf("cut at %d: decoded", n)
		}
		if doubled(err.Error()) {
			t.Errorf("cut at %d: %q repeats a prefix", n, err)
		}
	}
}
