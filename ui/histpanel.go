package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core/catalog"
)

// historyPanel is the settings' chat history line: where it is, how much
// disk it takes (model states are most of it), and a button that removes
// the saved states and gives their space back.
type historyPanel struct {
	a     *App
	text  *widget.RichText
	clear *widget.Button
	root  fyne.CanvasObject
}

func newHistoryPanel(a *App) *historyPanel {
	p := &historyPanel{a: a, text: caption("")}
	p.clear = widget.NewButtonWithIcon("Remove saved states", theme.DeleteIcon(), p.confirm)
	p.clear.Importance = widget.LowImportance
	p.root = container.NewBorder(nil, nil, nil, p.clear, p.text)
	p.refresh()
	return p
}

// refresh shows the current disk use. UI goroutine only.
func (p *historyPanel) refresh() {
	s := p.a.store
	if s.InMemory() {
		p.text.Segments = caption("Chat history: not saved (the data folder cannot be written); this session's chats are lost on quit.").Segments
		p.text.Refresh()
		p.clear.Hide()
		return
	}
	msg := "Chat history: " + s.Path()
	if u, err := s.Usage(); err == nil {
		msg += fmt.Sprintf(" — %s on disk, of which %s are saved model states (%d), which let chats continue without re-reading them",
			catalog.FormatBytes(u.FileBytes), catalog.FormatBytes(u.StateBytes), u.States)
		p.clear.Show()
		if u.States == 0 {
			p.clear.Disable()
		} else {
			p.clear.Enable()
		}
	}
	p.text.Segments = caption(msg + ".").Segments
	p.text.Refresh()
}

// confirm asks, then removes every saved state and compacts the file in
// the background.
func (p *historyPanel) confirm() {
	a := p.a
	dialog.ShowConfirm("Remove saved states?",
		"Conversations are kept; continuing an old one reads it again from the start, which takes longer.",
		func(ok bool) {
			if !ok {
				return
			}
			p.clear.Disable()
			go func() {
				err := a.store.ClearStates()
				if err == nil {
					err = a.store.Compact()
				}
				a.do(func() {
					p.refresh()
					if err != nil {
						a.showProblem("Could not remove the saved states", err)
					}
				})
			}()
		}, a.win)
}
