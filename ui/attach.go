package ui

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/ui/history"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// Images are message content. A message with images starts with one line
// per image, "[image: NAME #KEY]", KEY being the image's key in the
// history store (the SHA-256 of its bytes, which the store keeps); the
// question follows. Reopening, regenerating or editing the message after
// a restart reads the images back from the store. Lines "[image: NAME]"
// without a key (written before images were stored) stay plain text.
const (
	markerPrefix = "[image: "
	markerSuffix = "]"
	// maxMessageImages is the most images one message may carry.
	maxMessageImages = 8
	// thumbSide is the longest side of a thumbnail, in pixels.
	thumbSide = 96
)

// imageLimits states what an attached image may be, for error messages.
var imageLimits = fmt.Sprintf("PNG, JPEG or GIF, at most %d MiB, %d pixels a side, %d megapixels and %d MiB decoded",
	preprocess.MaxFileBytes>>20, preprocess.MaxSide, preprocess.MaxPixels>>20, preprocess.MaxDecodedBytes>>20)

// imageRef is an image a message carries.
type imageRef struct {
	name string // the file name it was attached as
	key  string // its key in the history store
}

// imageMarker is the line a message holds for an image.
func imageMarker(r imageRef) string { return markerPrefix + r.name + " #" + r.key + markerSuffix }

// splitImages separates a message's leading image lines from the
// question.
func splitImages(content string) (refs []imageRef, question string) {
	rest := content
	for {
		line, after, _ := strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, markerPrefix) || !strings.HasSuffix(line, markerSuffix) {
			break
		}
		body := strings.TrimSuffix(strings.TrimPrefix(line, markerPrefix), markerSuffix)
		i := strings.LastIndex(body, " #")
		if i < 0 || len(body)-i-2 != 64 {
			break // no key: plain text
		}
		refs = append(refs, imageRef{name: body[:i], key: body[i+2:]})
		rest = after
	}
	if len(refs) == 0 {
		return nil, content
	}
	return refs, strings.TrimSpace(rest)
}

// pendingImage is an image attached to the message being written.
type pendingImage struct {
	name  string
	data  []byte
	thumb image.Image
}

// attachBar holds the composer's image controls: the attach button, the
// attached images as thumbnails with remove buttons, and what is being
// checked.
type attachBar struct {
	btn      *widget.Button
	hint     *widget.Label // why the button is disabled
	chips    *fyne.Container
	checking *widget.Label
	root     *fyne.Container
	// pending are the attached images, checking the files being read.
	// UI goroutine only.
	pending  []pendingImage
	inflight int
	// wg counts background checks (tests wait on it).
	wg sync.WaitGroup
}

func (c *chatView) newAttachBar() *attachBar {
	b := &attachBar{}
	b.btn = widget.NewButtonWithIcon("Image", theme.FileImageIcon(), c.attachDialog)
	b.btn.Importance = widget.LowImportance
	b.hint = widget.NewLabel("Images need a VisualRWKV-7 model")
	b.hint.SizeName = theme.SizeNameCaptionText
	b.hint.Importance = widget.LowImportance
	b.checking = widget.NewLabel("")
	b.checking.SizeName = theme.SizeNameCaptionText
	b.checking.Hide()
	b.chips = container.NewHBox()
	b.root = container.NewHBox(b.btn, b.hint, b.chips, b.checking)
	return b
}

// refreshAttach enables the attach button when the loaded model reads
// images and shows the attached images. UI goroutine only.
func (c *chatView) refreshAttach() {
	b := c.attach
	if c.a.model != nil && c.a.model.Vision {
		b.btn.Enable()
		b.hint.Hide()
	} else {
		b.btn.Disable()
		b.hint.Show()
	}
	b.chips.Objects = b.chips.Objects[:0]
	for i, p := range b.pending {
		thumb := canvas.NewImageFromImage(p.thumb)
		thumb.FillMode = canvas.ImageFillContain
		thumb.SetMinSize(fyne.NewSize(40, 40))
		name := widget.NewLabel(p.name)
		name.Truncation = fyne.TextTruncateEllipsis
		remove := widget.NewButtonWithIcon("", theme.CancelIcon(), func() { c.removeAttachment(i) })
		remove.Importance = widget.LowImportance
		b.chips.Add(container.NewHBox(thumb, container.NewGridWrap(fyne.NewSize(110, 36), name), remove))
	}
	b.chips.Refresh()
	if b.inflight > 0 {
		b.checking.SetText("Checking image…")
		b.checking.Show()
	} else {
		b.checking.Hide()
	}
}

// attachDialog lets the user choose image files.
func (c *chatView) attachDialog() {
	c.a.openFile("Attach an image", fileFilter{"Images (PNG, JPEG, GIF)", []string{".png", ".jpg", ".jpeg", ".gif"}}, func(path string) {
		if err := c.attachImage(path); err != nil {
			c.a.showError(err)
		}
	})
}

// canAttach says why no image can be attached now, or nil.
func (c *chatView) canAttach() error {
	if c.a.model == nil || !c.a.model.Vision {
		return errors.New("the loaded model cannot read images: load a VisualRWKV-7 model to attach one")
	}
	if n := len(c.attach.pending) + c.attach.inflight; n >= maxMessageImages {
		return fmt.Errorf("a message carries at most %d images", maxMessageImages)
	}
	return nil
}

// attachImage attaches the image file at path to the next message. The
// file is read and decoded in the background (a large one takes a
// moment); one that is not an image, is truncated or is over the limits
// gives a dialog naming it, and nothing else changes. UI goroutine only.
func (c *chatView) attachImage(path string) error {
	if err := c.canAttach(); err != nil {
		return err
	}
	name := filepath.Base(path)
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("attach image: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", name)
	case fi.Size() > preprocess.MaxFileBytes:
		return fmt.Errorf("%s is %d MiB; images may be %s", name, fi.Size()>>20, imageLimits)
	}
	c.checkImage(name, func() ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return io.ReadAll(io.LimitReader(f, preprocess.MaxFileBytes+1))
	})
	return nil
}

// attachData attaches encoded image bytes (a pasted data: URL) named name.
func (c *chatView) attachData(name string, data []byte) error {
	if err := c.canAttach(); err != nil {
		return err
	}
	c.checkImage(name, func() ([]byte, error) { return data, nil })
	return nil
}

// checkImage reads and decodes an image in the background and attaches it
// when it is good, else shows a dialog naming it. UI goroutine only.
func (c *chatView) checkImage(name string, read func() ([]byte, error)) {
	b := c.attach
	b.inflight++
	b.wg.Add(1)
	c.refreshAttach()
	go func() {
		defer b.wg.Done()
		p, err := loadPending(name, read)
		c.a.do(func() {
			b.inflight--
			if err != nil {
				c.a.showError(err)
			} else if len(b.pending) < maxMessageImages {
				b.pending = append(b.pending, p)
			}
			c.refreshAttach()
		})
	}()
}

// loadPending reads, decodes and checks an image and makes its thumbnail.
func loadPending(name string, read func() ([]byte, error)) (pendingImage, error) {
	data, err := read()
	if err != nil {
		return pendingImage{}, fmt.Errorf("%s: %w", name, err)
	}
	img, err := decodeImage(name, data)
	if err != nil {
		return pendingImage{}, err
	}
	return pendingImage{name: name, data: data, thumb: thumbnail(img)}, nil
}

// decodeImage decodes an attached or stored image, naming it in errors.
func decodeImage(name string, data []byte) (image.Image, error) {
	if len(data) > preprocess.MaxFileBytes {
		return nil, fmt.Errorf("%s is too large; images may be %s", name, imageLimits)
	}
	img, err := preprocess.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s cannot be used (%v); images may be %s", name, err, imageLimits)
	}
	return img, nil
}

// thumbnail scales img down to at most thumbSide pixels a side (nearest
// pixel: it is only for showing).
func thumbnail(img image.Image) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	s := max(w, h)
	if s <= thumbSide {
		return img
	}
	tw, th := max(1, w*thumbSide/s), max(1, h*thumbSide/s)
	out := image.NewNRGBA(image.Rect(0, 0, tw, th))
	for y := range th {
		for x := range tw {
			out.Set(x, y, img.At(b.Min.X+x*w/tw, b.Min.Y+y*h/th))
		}
	}
	return out
}

// removeAttachment drops attached image i. UI goroutine only.
func (c *chatView) removeAttachment(i int) {
	b := c.attach
	if i >= 0 && i < len(b.pending) {
		b.pending = append(b.pending[:i], b.pending[i+1:]...)
	}
	c.refreshAttach()
}

// clearAttachment removes every attached image.
func (c *chatView) clearAttachment() {
	c.attach.pending = nil
	c.refreshAttach()
}

// storePending saves the attached images in the history store and returns
// their lines for the message.
func (c *chatView) storePending() (string, error) {
	var lines []string
	for _, p := range c.attach.pending {
		key, err := c.a.store.PutImage(p.name, p.data)
		if err != nil {
			return "", fmt.Errorf("save image %s: %w", p.name, err)
		}
		lines = append(lines, imageMarker(imageRef{name: p.name, key: key}))
	}
	return strings.Join(lines, "\n"), nil
}

// dropped attaches the image files dropped on the window (other files are
// ignored). UI goroutine only.
func (c *chatView) dropped(_ fyne.Position, uris []fyne.URI) {
	if slices.ContainsFunc(uris, func(u fyne.URI) bool { return u != nil && u.Scheme() == "file" && isImageName(u.Path()) }) {
		c.a.show("chat")
	}
	for _, u := range uris {
		if u == nil || u.Scheme() != "file" || !isImageName(u.Path()) {
			continue
		}
		if err := c.attachImage(u.Path()); err != nil {
			c.a.showError(err)
			return
		}
	}
}

// isImageName says a file name has an image extension.
func isImageName(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".png", ".jpg", ".jpeg", ".gif":
		return true
	}
	return false
}

// pasteImage attaches what the clipboard holds when it is an image: a
// picture copied as an image (read through Options.Clipboard, since
// Fyne's clipboard carries text only), a file path or file:// URI of an
// image file (what file managers copy), or a data:image/...;base64 URL. It
// reports whether it did something; other text is left for the composer to
// paste.
func (c *chatView) pasteImage() bool {
	text := strings.TrimSpace(c.a.fa.Clipboard().Content())
	if text == "" {
		c.pasteClipboardImage()
		return true
	}
	if strings.ContainsAny(text, "\n\r") && !strings.HasPrefix(text, "file://") {
		return false
	}
	if strings.HasPrefix(text, "data:image/") {
		meta, data, ok := strings.Cut(text, ",")
		if !ok || !strings.HasSuffix(meta, ";base64") {
			return false
		}
		raw, err := decodeBase64(data)
		if err != nil {
			c.a.showError(fmt.Errorf("the pasted image is not valid base64: %w", err))
			return true
		}
		if err := c.attachData("pasted image", raw); err != nil {
			c.a.showError(err)
		}
		return true
	}
	path := strings.Split(text, "\n")[0]
	if u, err := url.Parse(path); err == nil && u.Scheme == "file" {
		path = u.Path
	}
	if !filepath.IsAbs(path) || !isImageName(path) {
		return false
	}
	if _, err := os.Stat(path); err != nil {
		return false
	}
	if err := c.attachImage(path); err != nil {
		c.a.showError(err)
	}
	return true
}

// pasteClipboardImage looks for a picture on the clipboard off the UI
// goroutine and attaches it; a clipboard with no picture is left alone.
func (c *chatView) pasteClipboardImage() {
	src := c.a.opts.Clipboard
	if src == nil {
		src = systemClipboard{}
	}
	b := c.attach
	b.wg.Add(1)
	go func() {
		data, ok, err := src.Image(context.Background())
		c.a.do(func() {
			defer b.wg.Done() // after attachData has counted its own work
			switch {
			case err != nil:
				c.a.showError(err)
			case ok:
				if err := c.attachData("pasted image", data); err != nil {
					c.a.showError(err)
				}
			}
		})
	}()
}

// loadImages reads a message's images back from the history store.
func (c *chatView) loadImages(refs []imageRef) ([]image.Image, error) {
	var imgs []image.Image
	for _, r := range refs {
		_, data, err := c.a.store.Image(r.key)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", r.name, err)
		}
		img, err := decodeImage(r.name, data)
		if err != nil {
			return nil, err
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

// prefillImages feeds user message u with its images: the part of prompt
// before u's turn as text, then the images and u's question. It returns
// the prompt left to generate from (empty). It runs on the engine
// goroutine with engineMu held; the encoding stops when ctx is cancelled.
func (c *chatView) prefillImages(ctx context.Context, prompt string, u history.Message, refs []imageRef) (string, error) {
	n := len(refs)
	c.a.do(func() {
		c.speed.SetText(fmt.Sprintf("Encoding %d image%s… (Stop cancels)", n, map[bool]string{true: "s"}[n > 1]))
	})
	imgs, err := c.loadImages(refs)
	if err != nil {
		return "", err
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
	_, question := splitImages(u.Content)
	if err := c.session.PrefillImages(ctx, imgs, question); err != nil {
		return "", err
	}
	c.a.do(func() { c.speed.SetText("Answering…") })
	return "", nil
}

// thumbsFor returns the thumbnails of a message's images, decoding each
// stored image once (cached by key). UI goroutine only; the decoding runs
// in the background and done is called (on the UI goroutine) when every
// thumbnail is ready.
func (c *chatView) thumbsFor(refs []imageRef, done func([]image.Image)) {
	out := make([]image.Image, len(refs))
	var missing []int
	for i, r := range refs {
		if t, ok := c.thumbs[r.key]; ok {
			out[i] = t
		} else {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		done(out)
		return
	}
	store := c.a.store
	go func() {
		got := map[string]image.Image{}
		for _, i := range missing {
			r := refs[i]
			var t image.Image = image.NewNRGBA(image.Rect(0, 0, 1, 1))
			if _, data, err := store.Image(r.key); err == nil {
				if img, err := decodeImage(r.name, data); err == nil {
					t = thumbnail(img)
				}
			}
			got[r.key] = t
		}
		c.a.do(func() {
			for k, t := range got {
				c.thumbs[k] = t
			}
			for i, r := range refs {
				out[i] = c.thumbs[r.key]
			}
			done(out)
		})
	}()
}

// decodeBase64 decodes standard base64, padded or not.
func decodeBase64(s string) ([]byte, error) {
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawStdEncoding.DecodeString(s)
}
