package main

import (
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// Every size is rendered at its size, with the icon's colours in it.
func TestRender(t *testing.T) {
	dir := t.TempDir()
	if err := render(dir, "goose"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "hicolor", "scalable", "apps", "goose.svg")); err != nil {
		t.Error(err)
	}
	for _, n := range sizes {
		f, err := os.Open(filepath.Join(dir, "hicolor", fmt.Sprintf("%dx%d", n, n), "apps", "goose.png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Bounds(); b.Dx() != n || b.Dy() != n {
			t.Errorf("%d px icon is %v", n, b)
		}
		// The middle of the badge is drawn (not transparent), a corner is
		// left clear by the rounded square.
		_, _, _, mid := img.At(n/2, n*3/4).RGBA()
		_, _, _, corner := img.At(0, 0).RGBA()
		if mid == 0 || corner != 0 {
			t.Errorf("%d px icon: alpha %d in the middle, %d in the corner", n, mid, corner)
		}
	}
}
