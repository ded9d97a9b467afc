//go:build (linux || freebsd || openbsd || netbsd) && !android

package ui

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver"
	"github.com/godbus/dbus/v5"
	"github.com/rymdport/portal/filechooser"
)

// portalName is the XDG desktop portal's D-Bus name.
const portalName = "org.freedesktop.portal.Desktop"

// xdgPortal reaches the desktop's own file chooser through the XDG
// desktop portal (GNOME, KDE and others provide it).
type xdgPortal struct {
	once sync.Once
	ok   bool
}

func newPortal() *xdgPortal { return &xdgPortal{} }

// available reports, once, whether the session bus has a desktop portal
// running or ready to start.
func (p *xdgPortal) available() bool {
	p.once.Do(func() {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" && os.Getenv("XDG_RUNTIME_DIR") == "" {
			return
		}
		conn, err := dbus.SessionBus()
		if err != nil {
			return
		}
		bus := conn.BusObject()
		var has bool
		if bus.Call("org.freedesktop.DBus.NameHasOwner", 0, portalName).Store(&has) == nil && has {
			p.ok = true
			return
		}
		var names []string
		if bus.Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&names) == nil {
			p.ok = slices.Contains(names, portalName)
		}
	})
	return p.ok
}

// open asks the portal for a file to open; "" when cancelled. It blocks
// until the person answers.
func (p *xdgPortal) open(w fyne.Window, title string, f fileFilter) (string, error) {
	var rules []filechooser.Rule
	for _, e := range f.exts {
		rules = append(rules, filechooser.Rule{Type: filechooser.GlobPattern, Pattern: "*" + e})
	}
	filter := &filechooser.Filter{Name: f.name, Rules: rules}
	uris, err := filechooser.OpenFile(windowHandle(w), title, &filechooser.OpenFileOptions{
		Filters: []*filechooser.Filter{filter}, CurrentFilter: filter,
	})
	return firstPath(uris, err)
}

// save asks the portal where to save a file named name.
func (p *xdgPortal) save(w fyne.Window, title, name string) (string, error) {
	uris, err := filechooser.SaveFile(windowHandle(w), title, &filechooser.SaveFileOptions{CurrentName: name})
	return firstPath(uris, err)
}

func firstPath(uris []string, err error) (string, error) {
	if err != nil || len(uris) == 0 {
		return "", err
	}
	u, err := url.Parse(uris[0])
	if err != nil || u.Scheme != "file" {
		return "", fmt.Errorf("the file chooser returned %q, not a local file", uris[0])
	}
	return u.Path, nil
}

// windowHandle identifies w to the portal, so that the chooser opens over
// it ("" where that is not known, as on Wayland).
func windowHandle(w fyne.Window) string {
	handle := ""
	if nw, ok := w.(driver.NativeWindow); ok {
		nw.RunNative(func(ctx any) {
			if x, ok := ctx.(driver.X11WindowContext); ok {
				handle = fmt.Sprintf("x11:%x", x.WindowHandle)
			}
		})
	}
	return handle
}
