// Command icon renders Goose's icon (assets/goose.svg) to PNG files for
// desktop launchers, in the hicolor theme's layout:
//
//	go run ./packaging/icon -out DIR [-name NAME]
//
// writes DIR/hicolor/SIZExSIZE/apps/NAME.png for sizes 16 to 512 and
// DIR/hicolor/scalable/apps/NAME.svg. It uses oksvg and rasterx (the SVG
// renderer Fyne itself uses), so no image tool needs to be installed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"

	"github.com/srwiley/oksvg"
	"github.com/srwiley/rasterx"

	"github.com/goose-rwkv/goose/assets"
)

// sizes are the PNG sizes desktops look for.
var sizes = []int{16, 24, 32, 48, 64, 128, 256, 512}

func main() {
	out := flag.String("out", "", "output `DIR` (the icons go under DIR/hicolor)")
	name := flag.String("name", "io.github.goose_rwkv.Goose", "icon `NAME` (the desktop entry's Icon=)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "usage: go run ./packaging/icon -out DIR [-name NAME]")
		os.Exit(2)
	}
	if err := render(*out, *name); err != nil {
		fmt.Fprintln(os.Stderr, "icon:", err)
		os.Exit(1)
	}
}

func render(out, name string) error {
	svg := assets.Icon()
	dir := filepath.Join(out, "hicolor", "scalable", "apps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".svg"), svg, 0o644); err != nil {
		return err
	}
	for _, n := range sizes {
		icon, err := oksvg.ReadIconStream(bytes.NewReader(svg), oksvg.StrictErrorMode)
		if err != nil {
			return fmt.Errorf("goose.svg: %w", err)
		}
		icon.SetTarget(0, 0, float64(n), float64(n))
		img := image.NewRGBA(image.Rect(0, 0, n, n))
		icon.Draw(rasterx.NewDasher(n, n, rasterx.NewScannerGV(n, n, img, img.Bounds())), 1)
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return err
		}
		dir := filepath.Join(out, "hicolor", fmt.Sprintf("%dx%d", n, n), "apps")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}
