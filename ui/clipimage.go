package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/vision/preprocess"
)

// ClipboardImages reads a picture that another program put on the
// desktop's clipboard as an image (a screenshot, "Copy image" in a
// browser), which Fyne's clipboard, text only, does not see.
type ClipboardImages interface {
	// Image returns the clipboard's picture as encoded bytes (PNG, JPEG or
	// GIF); ok is false when the clipboard holds none. It is called off
	// the UI goroutine.
	Image(ctx context.Context) (data []byte, ok bool, err error)
}

// imageTypes are the clipboard picture types the image decoders read, in
// order of preference.
var imageTypes = []string{"image/png", "image/jpeg", "image/gif"}

// clipboardTimeout bounds one clipboard read (the owning program answers
// over the display server).
const clipboardTimeout = 3 * time.Second

// systemClipboard asks the desktop's clipboard tools: wl-paste on Wayland,
// xclip on X11, whichever is installed. Without either it finds no image.
type systemClipboard struct{}

// Image implements ClipboardImages.
func (systemClipboard) Image(ctx context.Context) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, clipboardTimeout)
	defer cancel()
	list, get := clipboardTool()
	if list == nil {
		return nil, false, nil
	}
	out, err := exec.CommandContext(ctx, list[0], list[1:]...).Output()
	if err != nil {
		// An empty clipboard or one holding no selection owner: no image.
		return nil, false, nil
	}
	typ := pickImageType(string(out))
	if typ == "" {
		return nil, false, nil
	}
	args := get(typ)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, false, fmt.Errorf("read the clipboard's image: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("read the clipboard's image: %w", err)
	}
	data, rerr := io.ReadAll(io.LimitReader(stdout, preprocess.MaxFileBytes+1))
	if int64(len(data)) > preprocess.MaxFileBytes {
		cmd.Process.Kill()
	}
	werr := cmd.Wait()
	switch {
	case int64(len(data)) > preprocess.MaxFileBytes:
		return nil, false, fmt.Errorf("the clipboard's image is over %d MiB; images may be %s", preprocess.MaxFileBytes>>20, imageLimits)
	case rerr != nil:
		return nil, false, fmt.Errorf("read the clipboard's image: %w", rerr)
	case werr != nil:
		return nil, false, fmt.Errorf("read the clipboard's image (%s): %w", args[0], werr)
	}
	return data, len(data) > 0, nil
}

// clipboardTool returns the command that lists the clipboard's types and a
// function giving the command that prints one type, for the display server
// in use; nil when no tool is installed.
func clipboardTool() (list []string, get func(typ string) []string) {
	if os.Getenv("WAYLAND_DISPLAY") != "" {
		if p, err := exec.LookPath("wl-paste"); err == nil {
			return []string{p, "--list-types"}, func(t string) []string { return []string{p, "--no-newline", "--type", t} }
		}
	}
	if os.Getenv("DISPLAY") != "" {
		if p, err := exec.LookPath("xclip"); err == nil {
			return []string{p, "-selection", "clipboard", "-t", "TARGETS", "-o"},
				func(t string) []string { return []string{p, "-selection", "clipboard", "-t", t, "-o"} }
		}
	}
	return nil, nil
}

// pickImageType returns the first of imageTypes that the newline-separated
// list of clipboard types offers, or "".
func pickImageType(types string) string {
	offered := map[string]bool{}
	for _, t := range strings.Fields(types) {
		offered[strings.ToLower(t)] = true
	}
	for _, t := range imageTypes {
		if offered[t] {
			return t
		}
	}
	return ""
}
