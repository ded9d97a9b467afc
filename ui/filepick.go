package ui

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/widget"
)

// fileFilter names a kind of file and its extensions, like ".pth".
type fileFilter struct {
	name string
	exts []string
}

// openFile asks for a file to open, of the kind filter names, and calls
// done with its path on the UI goroutine (not when the person cancels).
// The desktop's own file chooser is used when it offers one through the
// XDG desktop portal; otherwise Fyne's, almost as large as the window.
// UI goroutine only.
func (a *App) openFile(title string, filter fileFilter, done func(path string)) {
	if a.viaPortal(func() (string, error) { return a.portal.open(a.win, title, filter) }, done) {
		return
	}
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		path := ""
		if r != nil {
			path = r.URI().Path()
			r.Close()
		}
		a.picked(path, err, done)
	}, a.win)
	exts := filter.exts
	for _, e := range filter.exts {
		exts = append(exts, strings.ToUpper(e))
	}
	d.SetFilter(storage.NewExtensionFileFilter(exts))
	a.showFileDialog(d)
}

// saveFile asks where to save a file, suggesting name, and calls done with
// the path on the UI goroutine (not when the person cancels). Like
// openFile, it prefers the desktop's own chooser. UI goroutine only.
func (a *App) saveFile(title, name string, done func(path string)) {
	if a.viaPortal(func() (string, error) { return a.portal.save(a.win, title, name) }, done) {
		return
	}
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		path := ""
		if w != nil {
			// Only the path is wanted: the caller writes the file
			// (atomically) itself.
			path = w.URI().Path()
			w.Close()
		}
		a.picked(path, err, done)
	}, a.win)
	d.SetFileName(name)
	a.showFileDialog(d)
}

// exportChoice is a format an export dialog offers: what people read and
// the extension of the file it writes.
type exportChoice struct{ label, ext string }

// exportFile asks which of choices to export as (the first is selected)
// and where, suggesting name with that choice's extension, then calls save
// with the path and the extension; an error it returns is shown as what
// ("Could not export the chat") happened. UI goroutine only.
func (a *App) exportFile(title, name string, choices []exportChoice, what string, save func(path, ext string) error) {
	labels := make([]string, len(choices))
	for i, c := range choices {
		labels[i] = c.label
	}
	format := widget.NewRadioGroup(labels, nil)
	format.Required = true
	format.SetSelected(labels[0])
	dialog.ShowCustomConfirm(title, "Choose file…", "Cancel", format, func(ok bool) {
		if !ok {
			return
		}
		ext := choices[slices.Index(labels, format.Selected)].ext
		a.saveFile(title, name+ext, func(path string) {
			if err := save(path, ext); err != nil {
				a.showProblem(what, err)
			}
		})
	}, a.win)
}

// viaPortal runs ask, a question to the desktop portal's file chooser,
// off the UI goroutine (it blocks until the person answers) and hands the
// answer to done. It reports false, doing nothing, when there is no portal.
func (a *App) viaPortal(ask func() (string, error), done func(string)) bool {
	if a.portal == nil || !a.portal.available() {
		return false
	}
	go func() {
		path, err := ask()
		a.do(func() { a.picked(path, err, done) })
	}()
	return true
}

// picked reports a chooser's answer.
func (a *App) picked(path string, err error, done func(string)) {
	switch {
	case err != nil:
		a.showProblem("The file chooser failed", err)
	case path != "":
		done(path)
	}
}

// showFileDialog shows Fyne's file dialog nearly as large as the window
// (its default is cramped).
func (a *App) showFileDialog(d *dialog.FileDialog) {
	size := a.win.Canvas().Size()
	d.Resize(fyne.NewSize(max(size.Width*0.9, 640), max(size.Height*0.9, 480)))
	d.Show()
}

// quietLog is the app's standard log output: it passes everything on to w
// but for two harmless toolkit messages, which only alarm people reading
// the log:
//
//   - "Getting favorite locations": Fyne's file dialog logs it whenever one
//     of the folders it lists as favourites (Documents, Downloads, Music,
//     Pictures, Videos) does not exist, as on a fresh machine; the dialog
//     works all the same.
//   - "Preferences load error" caused by EOF: Fyne's preferences file is
//     read back by its change watcher while Fyne itself is rewriting it
//     (the file dialog remembers its last folder there); the next read
//     succeeds.
//
// Fyne logs a message as up to three lines, one write each: the message,
// "  Cause: ...", "  At: ...".
type quietLog struct {
	mu      sync.Mutex
	w       io.Writer
	pending []byte // a message line whose fate its cause decides
	skip    bool   // inside a dropped message: drop its Cause/At lines
}

func (q *quietLog) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cont := bytes.Contains(p, []byte("  Cause:")) || bytes.Contains(p, []byte("  At:"))
	if q.pending != nil {
		held := q.pending
		q.pending = nil
		if cont && bytes.HasSuffix(bytes.TrimSpace(p), []byte("Cause: EOF")) {
			q.skip = true
			return len(p), nil
		}
		if _, err := q.w.Write(held); err != nil {
			return 0, err
		}
	}
	switch {
	case bytes.Contains(p, []byte("Fyne error:  Getting favorite locations")):
		q.skip = true
		return len(p), nil
	case bytes.Contains(p, []byte("Fyne error:  Preferences load error")):
		q.pending, q.skip = append([]byte(nil), p...), false
		return len(p), nil
	case q.skip && cont:
		return len(p), nil
	}
	q.skip = false
	return q.w.Write(p)
}
