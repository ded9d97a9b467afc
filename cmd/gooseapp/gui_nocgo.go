//go:build !cgo

package main

import (
	"errors"
	"io"
)

// guiBuilt says that this build lacks the desktop app, for --version.
const guiBuilt = "none (built with CGO_ENABLED=0: terminal commands only)"

// runGUI is unavailable in builds without cgo (the desktop app needs it);
// the terminal subcommands work.
func runGUI(args []string, stderr io.Writer) error {
	return errors.New("this build has no desktop app (built with CGO_ENABLED=0); use a subcommand, e.g. gooseapp chat --model FILE")
}
