package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/ui/history"
)

// The app's keyboard shortcuts (Ctrl is Cmd on macOS):
//
//	Ctrl+N   new chat
//	Ctrl+F   search the chats
//	Ctrl+,   settings
//	Esc      stop the reply being written
//	Up       edit the last message (in an empty message box)

// installShortcuts registers the shortcuts with the window. Text boxes
// (which take shortcuts first) forward the ones they do not use.
func (a *App) installShortcuts() {
	c := a.win.Canvas()
	for _, k := range []fyne.KeyName{fyne.KeyN, fyne.KeyF, fyne.KeyComma} {
		c.AddShortcut(&desktop.CustomShortcut{KeyName: k, Modifier: fyne.KeyModifierShortcutDefault},
			func(s fyne.Shortcut) { a.shortcut(s) })
	}
	c.SetOnTypedKey(func(ev *fyne.KeyEvent) { a.typedKey(ev) })
}

// shortcut runs the app's action for s and reports whether it has one.
// UI goroutine only.
func (a *App) shortcut(s fyne.Shortcut) bool {
	cs, ok := s.(*desktop.CustomShortcut)
	if !ok || cs.Modifier != fyne.KeyModifierShortcutDefault {
		return false
	}
	switch cs.KeyName {
	case fyne.KeyN:
		a.chat.newChat()
		a.win.Canvas().Focus(a.chat.input)
	case fyne.KeyF:
		if a.screen != "chat" {
			a.show("chat")
		}
		a.win.Canvas().Focus(a.chat.search)
	case fyne.KeyComma:
		a.show("settings")
	default:
		return false
	}
	return true
}

// typedKey handles a key that no text box used: Esc stops a reply.
// UI goroutine only.
func (a *App) typedKey(ev *fyne.KeyEvent) bool {
	if ev.Name == fyne.KeyEscape && a.chat.generating {
		a.chat.stop()
		return true
	}
	return false
}

// editLast opens the last user message of the open chat for editing.
func (c *chatView) editLast() bool {
	if c.generating {
		return false
	}
	for i := len(c.thread) - 1; i >= 0; i-- {
		if c.thread[i].Role == history.RoleUser {
			c.editDialog(c.thread[i])
			return true
		}
	}
	return false
}

// keyedEntry is a text box that passes the app's shortcuts and Esc on to
// the app instead of swallowing them.
type keyedEntry struct {
	widget.Entry
	a *App
}

func newKeyedEntry(a *App) *keyedEntry {
	e := &keyedEntry{a: a}
	e.ExtendBaseWidget(e)
	return e
}

func (e *keyedEntry) TypedShortcut(s fyne.Shortcut) {
	if !e.a.shortcut(s) {
		e.Entry.TypedShortcut(s)
	}
}

func (e *keyedEntry) TypedKey(ev *fyne.KeyEvent) {
	if !e.a.typedKey(ev) {
		e.Entry.TypedKey(ev)
	}
}
