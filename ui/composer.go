package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
	"fyne.io/fyne/v2/widget"
)

// composer is the message input: a multi-line entry where Enter sends and
// Shift+Enter inserts a newline.
type composer struct {
	widget.Entry
	onSend func(text string)
	shift  int // shift keys held
	// onShortcut and onKey, when set, see shortcuts and keys first and
	// report whether they used them (the app's shortcuts, Esc).
	onShortcut func(fyne.Shortcut) bool
	onKey      func(*fyne.KeyEvent) bool
	// onUp runs when Up is pressed in the empty box (edit the last
	// message) and reports whether it did something.
	onUp func() bool
}

func newComposer(onSend func(string)) *composer {
	c := &composer{onSend: onSend}
	c.MultiLine = true
	c.Wrapping = fyne.TextWrapWord
	c.SetPlaceHolder("Message Goose…  (Enter to send, Shift+Enter for a new line)")
	c.SetMinRowsVisible(2)
	c.ExtendBaseWidget(c)
	return c
}

// KeyDown tracks the shift keys (desktop drivers deliver Shift+Enter as a
// plain Enter key press).
func (c *composer) KeyDown(ev *fyne.KeyEvent) {
	if ev.Name == desktop.KeyShiftLeft || ev.Name == desktop.KeyShiftRight {
		c.shift++
	}
	c.Entry.KeyDown(ev)
}

// KeyUp tracks the shift keys.
func (c *composer) KeyUp(ev *fyne.KeyEvent) {
	if (ev.Name == desktop.KeyShiftLeft || ev.Name == desktop.KeyShiftRight) && c.shift > 0 {
		c.shift--
	}
	c.Entry.KeyUp(ev)
}

// TypedKey sends on Enter and inserts a newline on Shift+Enter.
func (c *composer) TypedKey(ev *fyne.KeyEvent) {
	if c.onKey != nil && c.onKey(ev) {
		return
	}
	if ev.Name == fyne.KeyUp && c.Text == "" && c.onUp != nil && c.onUp() {
		return
	}
	if (ev.Name == fyne.KeyReturn || ev.Name == fyne.KeyEnter) && c.shift == 0 {
		if c.onSend != nil {
			c.onSend(c.Text)
		}
		return
	}
	c.Entry.TypedKey(ev)
}

// TypedShortcut treats Shift+Enter delivered as a shortcut (some drivers)
// as a newline.
func (c *composer) TypedShortcut(s fyne.Shortcut) {
	if cs, ok := s.(*desktop.CustomShortcut); ok && (cs.KeyName == fyne.KeyReturn || cs.KeyName == fyne.KeyEnter) && cs.Modifier == fyne.KeyModifierShift {
		c.Entry.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
		return
	}
	if c.onShortcut != nil && c.onShortcut(s) {
		return
	}
	c.Entry.TypedShortcut(s)
}
