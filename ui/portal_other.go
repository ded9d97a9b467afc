//go:build !((linux || freebsd || openbsd || netbsd) && !android)

package ui

import "fyne.io/fyne/v2"

// xdgPortal stands for the XDG desktop portal, which only free Unix
// desktops have: here the app uses Fyne's file dialog.
type xdgPortal struct{}

func newPortal() *xdgPortal { return &xdgPortal{} }

func (p *xdgPortal) available() bool { return false }

func (p *xdgPortal) open(fyne.Window, string, fileFilter) (string, error) { return "", nil }

func (p *xdgPortal) save(fyne.Window, string, string) (string, error) { return "", nil }
