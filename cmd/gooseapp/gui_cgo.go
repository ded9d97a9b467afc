//go:build cgo

package main

import (
	"errors"
	"io"
)

// runGUI opens the desktop app.
func runGUI(args []string, stderr io.Writer) error {
	return errors.New("the desktop app is not wired in yet")
}
