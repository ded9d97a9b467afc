package main

import (
	"errors"
	"io"
)

func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
