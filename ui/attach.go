package ui

import (
	"context"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // image.DecodeConfig checks attached JPEG files
	_ "image/png"  // and PNG files
	"os"
	"path/filepath"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/ui/history"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// The history schema has no column for attachments, so a message sent
// with an image keeps the image's file name in its text, on a first line
// "[image: name.png]"; the question follows on the next line.
const (
	markerPrefix = "[image: "
	markerSuffix = "]"
)

// imageMarker is the text stored for an attached image.
func imageMarker(name string) string { return markerPrefix + name + markerSuffix }

// splitImageMarker separates a message's image marker (if its first line
// is one) from the question.
func splitImageMarker(content string) (name, question string, ok bool) {
	first, rest, _ := strings.Cut(content, "\n")
	first = strings.TrimSpace(first)
	if !strings.HasPrefix(first, markerPrefix) || !strings.HasSuffix(first, markerSuffix) {
		return "", content, false
	}
	return strings.TrimSuffix(strings.TrimPrefix(first, markerPrefix), markerSuffix), strings.TrimSpace(rest), true
}

// attachBar holds the composer's image controls.
type attachBar struct {
	btn  *widget.Button
	hint *widget.Label // why the button is disabled
	chip *fyne.Container
	name *widget.Label
	root *fyne.Container
	// path is the attached image, "" when none. UI goroutine only.
	path string
}

func (c *chatView) newAttachBar() *attachBar {
	b := &attachBar{}
	b.btn = widget.NewButtonWithIcon("Attach image", theme.FileImageIcon(), c.attachDialog)
	b.btn.Importance = widget.LowImportance
	b.hint = widget.NewLabel("Images need a VisualRWKV-7 model")
	b.hint.SizeName = theme.SizeNameCaptionText
	b.hint.Importance = widget.LowImportance
	b.name = widget.NewLabel("")
	b.name.Truncation = fyne.TextTruncateEllipsis
	remove := widget.NewButtonWithIcon("", theme.CancelIcon(), c.clearAttachment)
	remove.Importance = widget.LowImportance
	b.chip = container.NewHBox(widget.NewIcon(theme.FileImageIcon()), b.name, remove)
	b.chip.Hide()
	b.root = container.NewHBox(b.btn, b.hint, b.chip)
	return b
}

// refreshAttach enables the attach button when the loaded model reads
// images. UI goroutine only.
func (c *chatView) refreshAttach() {
	b := c.attach
	if c.a.model != nil && c.a.model.Vision {
		b.btn.Enable()
		b.hint.Hide()
	} else {
		b.btn.Disable()
		b.hint.Show()
	}
	if b.path == "" {
		b.chip.Hide()
	} else {
		b.name.SetText(filepath.Base(b.path))
		b.chip.Show()
	}
}

// attachDialog lets the user choose a PNG or JPEG image.
func (c *chatView) attachDialog() {
	c.a.openFile("Attach an image", fileFilter{"Images (PNG, JPEG)", []string{".png", ".jpg", ".jpeg"}}, func(path string) {
		if err := c.attachImage(path); err != nil {
			c.a.showError(err)
		}
	})
}

// attachImage attaches the image file at path to the next message,
// checking that the model reads images and that the file is a PNG or JPEG
// image (its header only; the pixels are decoded when it is sent).
func (c *chatView) attachImage(path string) error {
	if c.a.model == nil || !c.a.model.Vision {
		return errors.New("the loaded model cannot read images: load a VisualRWKV-7 model to attach one")
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("attach image: %w", err)
	}
	defer f.Close()
	_, format, err := image.DecodeConfig(f)
	if err != nil {
		return fmt.Errorf("%s is not a PNG or JPEG image: %w", filepath.Base(path), err)
	}
	if format != "png" && format != "jpeg" {
		return fmt.Errorf("%s is a %s image; attach a PNG or JPEG one", filepath.Base(path), format)
	}
	c.attach.path = path
	c.refreshAttach()
	return nil
}

// clearAttachment removes the attached image.
func (c *chatView) clearAttachment() {
	c.attach.path = ""
	c.refreshAttach()
}

// prefillImage feeds user message u with the image at path: the part of
// prompt before u's turn as text, then the image and u's question. It
// returns the prompt left to generate from (empty). It runs on the engine
// goroutine with engineMu held.
func (c *chatView) prefillImage(ctx context.Context, prompt string, u history.Message, path string) (string, error) {
	c.a.do(func() { c.speed.SetText("Encoding image…") })
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read image: %w", err)
	}
	img, err := preprocess.Decode(f)
	f.Close()
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	turn := core.ChatTurn(u.Content)
	before, ok := strings.CutSuffix(prompt, turn)
	if !ok {
		return "", errors.New("image message: the prompt does not end with its turn")
	}
	if before != "" {
		if err := c.session.Prefill(ctx, before); err != nil {
			return "", err
		}
	}
	_, question, _ := splitImageMarker(u.Content)
	if err := c.session.PrefillImage(ctx, img, question); err != nil {
		return "", err
	}
	return "", nil
}
