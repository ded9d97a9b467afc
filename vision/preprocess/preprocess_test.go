package preprocess

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/disintegration/imaging"

	"github.com/goose-rwkv/goose/internal/npy"
)

const fixtureDir = "../../testdata/visualrwkv"

// Sizes of the fixture's small towers (mm.visualrwkv.json → config).
const (
	fixtureDinoSize   = 56
	fixtureSiglipSize = 56
	fixtureSAMSize    = 128
)

func loadFixtureImage(t testing.TB) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, "mm.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := Decode(f)
	if err != nil {
		t.Fatalf("decode mm.png: %v", err)
	}
	return img
}

func loadNpy(t testing.TB, name string, shape ...int) []float32 {
	t.Helper()
	a, err := npy.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Shape) != len(shape) {
		t.Fatalf("%s: shape %v, want %v", name, a.Shape, shape)
	}
	for i := range shape {
		if a.Shape[i] != shape[i] {
			t.Fatalf("%s: shape %v, want %v", name, a.Shape, shape)
		}
	}
	return a.Data
}

// diffU8 compares an NRGBA image's RGB bytes with an HWC reference and
// returns the number of differing samples and the largest difference.
func diffU8(img *image.NRGBA, want []float32) (n, maxd int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				got := int(img.Pix[y*img.Stride+4*x+c])
				d := got - int(want[(y*w+x)*3+c])
				if d < 0 {
					d = -d
				}
				if d != 0 {
					n++
				}
				maxd = max(maxd, d)
			}
		}
	}
	return n, maxd
}

func TestResizeMatchesPIL(t *testing.T) {
	img := loadFixtureImage(t)
	for _, tc := range []struct {
		tower Tower
		file  string
	}{
		{DINOv2(fixtureDinoSize), "mm.resized_dino_u8.npy"},
		{SAM(fixtureSAMSize), "mm.resized_sam_u8.npy"},
	} {
		t.Run(tc.tower.Name, func(t *testing.T) {
			s := tc.tower.Size
			want := loadNpy(t, tc.file, s, s, 3)
			got := Resize(img, tc.tower)
			if got.Bounds().Dx() != s || got.Bounds().Dy() != s {
				t.Fatalf("size %v, want %d×%d", got.Bounds(), s, s)
			}
			n, maxd := diffU8(got, want)
			t.Logf("%s: %d of %d samples differ from PIL, max |Δ| = %d", tc.file, n, len(want), maxd)
			if maxd > 1 {
				t.Errorf("%s: max |Δ| = %d, over the ±1 the fixture allows", tc.file, maxd)
			}
			if n != 0 {
				t.Errorf("%s: %d samples differ; the resampler is meant to be PIL-exact", tc.file, n)
			}
			for i := 3; i < len(got.Pix); i += 4 {
				if got.Pix[i] != 255 {
					t.Fatalf("alpha at byte %d = %d, want 255", i, got.Pix[i])
				}
			}
		})
	}
}

// TestImagingCatmullRom measures github.com/disintegration/imaging's
// Resize with CatmullRom (also a = −0.5, support widened when shrinking)
// against the PIL fixture and against this package's resampler on larger
// images the fixture does not cover. imaging matches mm.png exactly but
// computes float weights where Pillow rounds them to 22-bit fixed point, so
// on bigger images a few samples in 10⁴–10⁵ land one level apart; it also
// weights colours by alpha, where PIL's convert("RGB") drops alpha first.
// That is why Resize carries the Pillow-exact resampler. Being an
// independent implementation of the same filter, imaging must stay within
// ±1 everywhere, which cross-checks the tap bounds and weights at the real
// 448/1024 sizes.
func TestImagingCatmullRom(t *testing.T) {
	img := loadFixtureImage(t)
	for _, tc := range []struct {
		size int
		file string
	}{
		{fixtureDinoSize, "mm.resized_dino_u8.npy"},
		{fixtureSAMSize, "mm.resized_sam_u8.npy"},
	} {
		want := loadNpy(t, tc.file, tc.size, tc.size, 3)
		got := imaging.Resize(img, tc.size, tc.size, imaging.CatmullRom)
		n, maxd := diffU8(got, want)
		t.Logf("imaging vs PIL %s: %d of %d samples differ, max |Δ| = %d", tc.file, n, len(want), maxd)
		if maxd > 1 {
			t.Errorf("imaging vs PIL %s: max |Δ| = %d", tc.file, maxd)
		}
	}

	r := rand.New(rand.NewSource(1))
	for _, c := range [][3]int{{1600, 1200, 448}, {1200, 1600, 1024}, {640, 480, 448}, {300, 200, 448}, {997, 1013, 448}} {
		w, h, size := c[0], c[1], c[2]
		src := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				i := src.PixOffset(x, y)
				for k := 0; k < 3; k++ {
					src.Pix[i+k] = uint8((x/7)*31+(y/5)*17+k*50) ^ uint8(r.Intn(8))
				}
				src.Pix[i+3] = 255
			}
		}
		mine := Resize(src, DINOv2(size))
		theirs := imaging.Resize(src, size, size, imaging.CatmullRom)
		n, maxd := 0, 0
		for i := range mine.Pix {
			d := int(mine.Pix[i]) - int(theirs.Pix[i])
			if d != 0 {
				n++
			}
			maxd = max(maxd, d, -d)
		}
		t.Logf("imaging vs Resize %d×%d → %d: %d of %d bytes differ, max |Δ| = %d", w, h, size, n, len(mine.Pix), maxd)
		if maxd > 1 {
			t.Errorf("imaging vs Resize %d×%d → %d: max |Δ| = %d, want ≤ 1", w, h, size, maxd)
		}
	}
}

func TestPixelsMatchReference(t *testing.T) {
	img := loadFixtureImage(t)
	const tol = 1e-5
	for _, tc := range []struct {
		tower Tower
		file  string
	}{
		{DINOv2(fixtureDinoSize), "mm.pixels_dino.npy"},
		{SigLIP(fixtureSiglipSize), "mm.pixels_siglip.npy"},
		{SAM(fixtureSAMSize), "mm.pixels_sam.npy"},
	} {
		t.Run(tc.tower.Name, func(t *testing.T) {
			s := tc.tower.Size
			want := loadNpy(t, tc.file, 3, s, s)
			got := Pixels(img, tc.tower)
			if len(got) != len(want) {
				t.Fatalf("len %d, want %d", len(got), len(want))
			}
			maxd := 0.0
			for i := range got {
				maxd = math.Max(maxd, math.Abs(float64(got[i])-float64(want[i])))
			}
			t.Logf("%s: max |Δ| = %.3g", tc.file, maxd)
			if maxd > tol {
				t.Errorf("%s: max |Δ| = %.3g > %g", tc.file, maxd, tol)
			}
		})
	}
}

func TestTowers(t *testing.T) {
	for _, tc := range []struct {
		tower      Tower
		name       string
		size       int
		mean0, sd0 float32
	}{
		{DINOv2(448), "dino", 448, 0.485, 0.229},
		{SigLIP(448), "siglip", 448, 0.5, 0.5},
		{SAM(1024), "sam", 1024, 0.485, 0.229},
	} {
		if tc.tower.Name != tc.name || tc.tower.Size != tc.size || tc.tower.Mean[0] != tc.mean0 || tc.tower.Std[0] != tc.sd0 {
			t.Errorf("%+v, want name %s size %d mean0 %g std0 %g", tc.tower, tc.name, tc.size, tc.mean0, tc.sd0)
		}
	}
}

// TestResizeProperties checks cases the fixture does not cover: a constant
// image stays constant at any scale (weights sum to one), identity size is a
// copy, alpha is dropped rather than blended, and degenerate sizes do not
// panic.
func TestResizeProperties(t *testing.T) {
	flat := image.NewNRGBA(image.Rect(0, 0, 37, 5))
	for i := 0; i < len(flat.Pix); i += 4 {
		flat.Pix[i], flat.Pix[i+1], flat.Pix[i+2], flat.Pix[i+3] = 200, 17, 99, 10
	}
	for _, size := range []int{1, 3, 5, 37, 100} {
		got := Resize(flat, DINOv2(size))
		for i := 0; i < len(got.Pix); i += 4 {
			if got.Pix[i] != 200 || got.Pix[i+1] != 17 || got.Pix[i+2] != 99 || got.Pix[i+3] != 255 {
				t.Fatalf("size %d: pixel %d = %v, want 200,17,99,255", size, i/4, got.Pix[i:i+4])
			}
		}
	}

	// Identity: a square image already at the tower size comes back as is,
	// sub-image bounds included.
	big := image.NewRGBA(image.Rect(0, 0, 10, 10))
	for i := range big.Pix {
		big.Pix[i] = uint8(i * 7)
	}
	for i := 3; i < len(big.Pix); i += 4 {
		big.Pix[i] = 255
	}
	sub := big.SubImage(image.Rect(2, 3, 8, 9)).(*image.RGBA)
	got := Resize(sub, SigLIP(6))
	for y := 0; y < 6; y++ {
		for x := 0; x < 6; x++ {
			c := sub.RGBAAt(x+2, y+3)
			g := got.NRGBAAt(x, y)
			if g.R != c.R || g.G != c.G || g.B != c.B {
				t.Fatalf("identity (%d,%d) = %v, want %v", x, y, g, c)
			}
		}
	}

	// Grey images replicate to three equal channels.
	gray := image.NewGray(image.Rect(0, 0, 4, 4))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(60 * (i % 4))
	}
	g := Resize(gray, DINOv2(4))
	for i := 0; i < len(g.Pix); i += 4 {
		if g.Pix[i] != gray.Pix[i/4] || g.Pix[i+1] != g.Pix[i] || g.Pix[i+2] != g.Pix[i] {
			t.Fatalf("gray pixel %d = %v, want %d", i/4, g.Pix[i:i+3], gray.Pix[i/4])
		}
	}

	if r := Resize(image.NewNRGBA(image.Rect(0, 0, 0, 0)), DINOv2(4)); r.Bounds().Dx() != 4 {
		t.Errorf("empty source: bounds %v, want 4×4", r.Bounds())
	}
	if r := Resize(flat, DINOv2(0)); !r.Bounds().Empty() {
		t.Errorf("size 0: bounds %v, want empty", r.Bounds())
	}
	if p := Pixels(flat, SigLIP(2)); len(p) != 12 || math.Abs(float64(p[0])-(200.0/255-0.5)/0.5) > 1e-6 {
		t.Errorf("SigLIP pixels %v", p)
	}
}

// pngWithSize returns a PNG signature and an IHDR chunk (valid CRC) that
// declare a w×h 8-bit RGB image, followed by nothing.
func pngWithSize(w, h uint32) []byte { return pngHeader(w, h, 8, 2) }

// pngHeader is pngWithSize for a bit depth and PNG colour type (2 RGB,
// 6 RGBA).
func pngHeader(w, h uint32, depth, colorType byte) []byte {
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = depth, colorType
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&buf, binary.BigEndian, uint32(len(ihdr)))
	buf.Write(chunk)
	binary.Write(&buf, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return buf.Bytes()
}

func TestDecodeErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(fixtureDir, "mm.png"))
	if err != nil {
		t.Fatal(err)
	}
	corrupt := bytes.Clone(good)
	// Flip bytes inside the first IDAT chunk's data so its CRC no longer
	// matches.
	idat := bytes.Index(corrupt, []byte("IDAT"))
	if idat < 0 {
		t.Fatal("mm.png has no IDAT chunk")
	}
	for i := idat + 10; i < idat+20; i++ {
		corrupt[i] ^= 0xa5
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"empty", "empty input", nil},
		{"not an image", "header", []byte("hello, this is not an image")},
		{"truncated header", "header", good[:20]},
		{"truncated data", "png", good[:len(good)/2]},
		{"corrupt data", "png", corrupt},
		{"huge declared size", "over the limit", pngWithSize(30000, 30000)},
		{"huge side", "over the limit", pngWithSize(100000, 1)},
		// 64 Mpx is allowed at 8 bits, but at 16 bits RGBA it decodes to
		// 512 MiB (it once took 1.68 GB from a 0.5 MB file).
		{"16-bit 64 Mpx", "decoded", pngHeader(8192, 8192, 16, 6)},
		{"16-bit 40 Mpx", "decoded", pngHeader(8000, 5000, 16, 6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Decode(bytes.NewReader(tc.data))
			if err == nil {
				t.Fatalf("decoded %v, want an error", img.Bounds())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	src := image.NewNRGBA(image.Rect(0, 0, 3, 2))
	src.SetNRGBA(1, 1, color.NRGBA{R: 10, G: 20, B: 30, A: 0}) // alpha dropped, colour kept (PIL convert)
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		t.Fatal(err)
	}
	img, err := Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	r := Resize(img, DINOv2(3)) // 3×2 → 3×3: vertical pass only
	if r.Bounds().Dx() != 3 {
		t.Fatalf("bounds %v", r.Bounds())
	}
	// Width unchanged, so column 1 is a vertical resample of (0,0,0) over
	// (10,20,30): its bottom row must keep a non-zero colour, which it would
	// not if the transparent pixel had been premultiplied to black.
	if c := r.NRGBAAt(1, 2); c.R == 0 || c.G == 0 || c.B == 0 {
		t.Errorf("bottom of column 1 = %v; a transparent pixel's colour was lost", c)
	}
}

func FuzzDecode(f *testing.F) {
	good, err := os.ReadFile(filepath.Join(fixtureDir, "mm.png"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(pngWithSize(30000, 30000))
	f.Add(pngWithSize(3, 3))
	f.Add([]byte("GIF89a"))
	f.Add([]byte("\xff\xd8\xff\xe0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		b := img.Bounds()
		if b.Dx() <= 0 || b.Dy() <= 0 || b.Dx() > MaxSide || b.Dy() > MaxSide {
			t.Fatalf("Decode accepted bounds %v", b)
		}
		if b.Dx()*b.Dy() <= 1<<20 {
			p := Pixels(img, SigLIP(7))
			if len(p) != 3*7*7 {
				t.Fatalf("len(Pixels) = %d", len(p))
			}
		}
	})
}

func BenchmarkPixelsSAM1024(b *testing.B) {
	src := image.NewNRGBA(image.Rect(0, 0, 1600, 1200))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 31)
	}
	tw := SAM(1024)
	b.ResetTimer()
	for b.Loop() {
		Pixels(src, tw)
	}
}

func BenchmarkPixelsDINO448(b *testing.B) {
	src := image.NewNRGBA(image.Rect(0, 0, 1600, 1200))
	for i := range src.Pix {
		src.Pix[i] = uint8(i * 31)
	}
	tw := DINOv2(448)
	b.ResetTimer()
	for b.Loop() {
		Pixels(src, tw)
	}
}
