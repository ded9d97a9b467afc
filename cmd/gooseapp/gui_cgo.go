//go:build cgo

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/goose-rwkv/goose/ui"
)

// guiBuilt says that this build has the desktop app, for --version.
const guiBuilt = "desktop app (Fyne)"

// runGUI opens the desktop app, or with --smoke-test drives the real window
// through one message and saves a screenshot.
func runGUI(args []string, stderr io.Writer) error {
	fs := newFlags("gooseapp", stderr)
	smoke := fs.Bool("smoke-test", false, "open the window, load --model, send one message, save --screenshot, exit")
	model := fs.String("model", "", "model `FILE` for --smoke-test")
	shot := fs.String("screenshot", "", "PNG `FILE` for --smoke-test")
	screens := fs.String("screens", "", "with --smoke-test, also save these screens beside the screenshot as FILE-NAME.png: comma-separated `NAMES` of models, settings, import, shortcuts")
	audioModel := fs.String("audio-model", "", "with --smoke-test, also load this A-RWKV `FILE` on the Audio screen, record 3 s, attach it to a message and save the screen as FILE-audio.png")
	audioFile := fs.String("audio-file", "", "with --audio-model, also import this WAV/FLAC/MP3 `FILE`")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: the app takes only flags (gooseapp --help lists the commands)", fs.Arg(0))
	}
	if err := checkDisplay(); err != nil {
		return err
	}
	if !*smoke {
		return ui.Run(ui.Options{})
	}
	if *model == "" || *shot == "" {
		return fmt.Errorf("--smoke-test needs --model FILE and --screenshot OUT.png")
	}
	var extra []string
	if *screens != "" {
		extra = strings.Split(*screens, ",")
	}
	opts := ui.Options{}
	if *audioModel != "" {
		opts.SmokeAudio = &ui.SmokeAudio{Model: *audioModel, File: *audioFile, Screenshot: strings.TrimSuffix(*shot, filepath.Ext(*shot)) + "-audio" + filepath.Ext(*shot)}
	}
	return ui.SmokeTest(opts, *model, *shot, extra...)
}

// checkDisplay reports a missing X11/Wayland display before the window
// toolkit would fail on it.
func checkDisplay() error {
	switch runtime.GOOS {
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return errors.New("no display (DISPLAY and WAYLAND_DISPLAY are unset): the desktop app needs one; the terminal subcommands work without, e.g. gooseapp chat --model FILE (gooseapp help lists them)")
		}
	}
	return nil
}
