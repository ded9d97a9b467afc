package ui

import (
	"errors"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/audio/decode"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/ui/history"
)

// problem is an error told to people: what happened ("Could not load
// m.pth"), with the cause kept for the details.
type problem struct {
	what string
	err  error
}

func (p *problem) Error() string { return p.what + ": " + p.err.Error() }
func (p *problem) Unwrap() error { return p.err }

// explain returns what a person sees for err: a title saying what
// happened, one sentence saying what to do, and the details (the full
// error text), which are empty when the sentence says it all.
func explain(err error) (title, sentence, details string) {
	var p *problem
	sentence = advice(err)
	details = err.Error()
	if errors.As(err, &p) {
		title, details = p.what, p.err.Error()
	}
	if title == "" {
		if errors.Unwrap(err) == nil && sentence == "" {
			// A message written for people ("no model is loaded: open
			// Models to load one") is the sentence itself.
			return "Goose", sentenceCase(details), ""
		}
		title = "Something went wrong"
	}
	if sentence == "" {
		sentence = "Try again; if it happens again, the details below say more."
	}
	return title, sentence, details
}

// advice says what to do about err, in one sentence, or "" when there is
// nothing specific to say.
func advice(err error) string {
	var (
		ce  *catalog.ChecksumError
		se  *catalog.SizeError
		he  *catalog.HTTPError
		oe  *catalog.OfflineError
		me  *core.MemoryError
		mis *core.MissingError
		sh  *core.ShapeError
		cpe *checkpoint.Error
	)
	var rec *history.Recovery
	switch {
	case errors.As(err, &rec) && rec.InMemory:
		return "Goose cannot write to its data folder, so this session's chats will not be saved: check the folder's permissions and free space, then restart Goose."
	case errors.As(err, &rec) && rec.MovedTo != "":
		return "The damaged file was moved to " + rec.MovedTo + " (nothing was deleted) and a new, empty history was started."
	case errors.As(err, &oe):
		return "There is no network connection: connect to the internet and try again; the download resumes where it stopped."
	case errors.As(err, &ce), errors.As(err, &se):
		return "The downloaded file was damaged and has been deleted: download it again."
	case errors.As(err, &he):
		return "The server refused the download: try again later."
	case isNoSpace(err):
		return "The disk is full: free some space, or choose another models folder in Settings."
	case errors.As(err, &me), isOutOfMemory(err):
		return "There is not enough memory for this model: try a smaller model, or choose the CPU backend in Settings."
	case errors.Is(err, decode.ErrUnsupported):
		return "Goose reads WAV, FLAC and MP3 files: convert the recording to one of them and import it again."
	case errors.Is(err, os.ErrNotExist):
		return "The file is no longer there: choose it again, or remove it from the list."
	case errors.Is(err, os.ErrPermission):
		return "Goose may not open this file: check its permissions."
	case errors.As(err, &mis), errors.As(err, &sh), errors.As(err, &cpe), strings.Contains(err.Error(), "not a usable RWKV-7 model"),
		strings.Contains(err.Error(), "does not match the World tokenizer"):
		return "The file is damaged or is not an RWKV-7 model: download or import it again, or remove it."
	}
	return ""
}

// sentenceCase capitalises s and ends it with a full stop.
func sentenceCase(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// showProblem shows that what ("Could not load m.pth") happened because
// of err. UI goroutine only.
func (a *App) showProblem(what string, err error) {
	if err == nil {
		return
	}
	a.showError(&problem{what: what, err: err})
}

// showError shows err in a dialog: what happened, what to do, and the
// details one click away. UI goroutine only.
func (a *App) showError(err error) {
	if err == nil {
		return
	}
	if a.onError != nil {
		a.onError(err)
	}
	a.errorDialog(err).Show()
}

// errorDialog builds the dialog showError shows.
func (a *App) errorDialog(err error) dialog.Dialog {
	title, sentence, details := explain(err)
	msg := widget.NewLabel(sentence)
	msg.Wrapping = fyne.TextWrapWord
	content := container.NewVBox(msg)
	var d dialog.Dialog
	if details != "" {
		text := widget.NewLabel(details)
		text.Wrapping = fyne.TextWrapWord
		text.Selectable = true
		copyBtn := widget.NewButtonWithIcon("Copy details", theme.ContentCopyIcon(), func() {
			a.fa.Clipboard().SetContent(details)
		})
		copyBtn.Importance = widget.LowImportance
		more := container.NewVBox(text, container.NewHBox(copyBtn))
		more.Hide()
		var toggle *widget.Button
		toggle = widget.NewButtonWithIcon("Show details", theme.MenuDropDownIcon(), func() {
			if more.Visible() {
				more.Hide()
				toggle.SetText("Show details")
				toggle.SetIcon(theme.MenuDropDownIcon())
			} else {
				more.Show()
				toggle.SetText("Hide details")
				toggle.SetIcon(theme.MenuDropUpIcon())
			}
			d.Resize(fyne.NewSize(520, d.MinSize().Height))
		})
		toggle.Importance = widget.LowImportance
		content.Add(container.NewHBox(toggle))
		content.Add(more)
	}
	d = dialog.NewCustom(title, "OK", content, a.win)
	d.Resize(fyne.NewSize(520, d.MinSize().Height))
	return d
}
