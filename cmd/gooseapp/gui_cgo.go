//go:build cgo

package main

import (
	"fmt"
	"io"

	"github.com/goose-rwkv/goose/ui"
)

// runGUI opens the desktop app, or with --smoke-test drives the real window
// through one message and saves a screenshot.
func runGUI(args []string, stderr io.Writer) error {
	fs := newFlags("gooseapp", stderr)
	smoke := fs.Bool("smoke-test", false, "open the window, load --model, send one message, save --screenshot, exit")
	model := fs.String("model", "", "model `FILE` for --smoke-test")
	shot := fs.String("screenshot", "", "PNG `FILE` for --smoke-test")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*smoke {
		return ui.Run(ui.Options{})
	}
	if *model == "" || *shot == "" {
		return fmt.Errorf("--smoke-test needs --model FILE and --screenshot OUT.png")
	}
	return ui.SmokeTest(ui.Options{}, *model, *shot)
}
