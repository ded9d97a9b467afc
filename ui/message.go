package ui

import (
	"fmt"
	"image"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/ui/history"
)

// splitThink separates a reasoning model's "<think>…</think>" section from
// the answer. open is true while the section has not been closed yet.
func splitThink(s string) (think, answer string, open, ok bool) {
	t := strings.TrimLeft(s, " \n")
	if !strings.HasPrefix(t, "<think>") {
		return "", s, false, false
	}
	t = t[len("<think>"):]
	if i := strings.Index(t, "</think>"); i >= 0 {
		return strings.TrimSpace(t[:i]), strings.TrimLeft(t[i+len("</think>"):], " \n"), false, true
	}
	return strings.TrimSpace(t), "", true, true
}

// messageActions are what a message's buttons do.
type messageActions struct {
	copy       func(m history.Message)
	edit       func(m history.Message)
	regenerate func(m history.Message)
	sibling    func(m history.Message, delta int)
	// thumbs gets the thumbnails of a message's images (see
	// chatView.thumbsFor); nil shows none.
	thumbs func(refs []imageRef, done func([]image.Image))
}

// bubble shows one message.
type bubble struct {
	msg      history.Message
	images   *fyne.Container // a user message's thumbnails, or nil
	text     *widget.RichText
	thinkBox *fyne.Container
	thinking *widget.Accordion
	thinkRT  *widget.RichText
	caption  *canvas.Text
	root     fyne.CanvasObject
	shown    string
}

// newBubble renders m. nSiblings and index place it among its alternatives
// (edits or regenerations) for the "‹ 2/3 ›" control.
func newBubble(m history.Message, nSiblings, index int, act messageActions, busy bool) *bubble {
	b := &bubble{msg: m}
	b.text = widget.NewRichText()
	b.text.Wrapping = fyne.TextWrapWord
	b.caption = canvas.NewText("", themeColor(colorSubtle))
	b.caption.TextSize = theme.CaptionTextSize()

	var tools []fyne.CanvasObject
	if nSiblings > 1 {
		prev := widget.NewButtonWithIcon("", theme.NavigateBackIcon(), func() { act.sibling(m, -1) })
		next := widget.NewButtonWithIcon("", theme.NavigateNextIcon(), func() { act.sibling(m, +1) })
		prev.Importance, next.Importance = widget.LowImportance, widget.LowImportance
		if index == 0 || busy {
			prev.Disable()
		}
		if index == nSiblings-1 || busy {
			next.Disable()
		}
		pos := widget.NewLabel(fmt.Sprintf("%d / %d", index+1, nSiblings))
		pos.SizeName = theme.SizeNameCaptionText
		tools = append(tools, prev, pos, next)
	}
	cp := widget.NewButtonWithIcon("", theme.ContentCopyIcon(), func() { act.copy(b.msg) })
	cp.Importance = widget.LowImportance
	tools = append(tools, cp)

	if m.Role == history.RoleUser {
		ed := widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), func() { act.edit(b.msg) })
		ed.Importance = widget.LowImportance
		if busy {
			ed.Disable()
		}
		tools = append(tools, ed)
		b.setContent(m.Content, m.Status)
		bg := canvas.NewRectangle(themeColor(colorUserBubble))
		bg.CornerRadius = 14
		body := fyne.CanvasObject(b.text)
		refs, question := splitImages(m.Content)
		if len(refs) > 0 {
			// The images as thumbnails above the question.
			b.images = container.NewHBox()
			for range refs {
				ph := canvas.NewRectangle(themeColor(colorSubtle))
				ph.SetMinSize(fyne.NewSize(thumbSide, thumbSide))
				b.images.Add(ph)
			}
			if act.thumbs != nil {
				act.thumbs(refs, func(imgs []image.Image) {
					b.images.Objects = b.images.Objects[:0]
					for i, img := range imgs {
						t := canvas.NewImageFromImage(img)
						t.FillMode = canvas.ImageFillContain
						t.SetMinSize(fyne.NewSize(thumbSide, thumbSide))
						b.images.Add(container.NewVBox(t, captionLabel(refs[i].name)))
					}
					b.images.Refresh()
				})
			}
			body = container.NewVBox(b.images, b.text)
		}
		card := container.NewStack(bg, container.New(layout.NewCustomPaddedLayout(6, 6, 10, 10), body))
		text := question
		if len(refs) > 0 && len(question) < 24 {
			text = strings.Repeat("m", 24) // room for the thumbnails
		}
		row := container.New(&userLayout{text: text}, card)
		toolRow := container.NewHBox(layout.NewSpacer(), container.NewHBox(tools...))
		b.root = container.NewVBox(row, toolRow)
		return b
	}

	re := widget.NewButtonWithIcon("", theme.ViewRefreshIcon(), func() { act.regenerate(b.msg) })
	re.Importance = widget.LowImportance
	if busy {
		re.Disable()
	}
	tools = append(tools, re)
	b.thinkRT = widget.NewRichText()
	b.thinkRT.Wrapping = fyne.TextWrapWord
	b.thinking = widget.NewAccordion(widget.NewAccordionItem("Thinking", b.thinkRT))
	b.thinkBox = container.NewVBox(b.thinking)
	b.thinkBox.Hide()
	b.setContent(m.Content, m.Status)
	b.setStats(m)

	avatar := canvas.NewCircle(themeColor(theme.ColorNamePrimary))
	initial := canvas.NewText("G", themeColor(theme.ColorNameForegroundOnPrimary))
	initial.TextStyle = fyne.TextStyle{Bold: true}
	initial.Alignment = fyne.TextAlignCenter
	badge := container.NewGridWrap(fyne.NewSize(28, 28), container.NewStack(avatar, container.NewCenter(initial)))
	name := widget.NewLabelWithStyle("Goose", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	head := container.NewHBox(badge, name)
	toolRow := container.NewHBox(append(tools, container.NewCenter(b.caption))...)
	b.root = container.NewVBox(head, container.New(layout.NewCustomPaddedLayout(0, 0, 36, 0),
		container.NewVBox(b.thinkBox, b.text, toolRow)))
	return b
}

// setContent shows text (Markdown), folding a <think> section.
func (b *bubble) setContent(text, status string) {
	shown := text + "\x00" + status
	if shown == b.shown {
		return
	}
	b.shown = shown
	answer := text
	if b.msg.Role == history.RoleAssistant {
		think, ans, open, ok := splitThink(text)
		if ok {
			answer = ans
			title := fmt.Sprintf("Thought (%d words)", len(strings.Fields(think)))
			if open && status == history.StatusStreaming {
				title = "Thinking…"
			}
			b.thinking.Items[0].Title = title
			b.thinkRT.ParseMarkdown(think)
			b.thinkBox.Show()
			b.thinking.Refresh()
		} else {
			b.thinkBox.Hide()
		}
		if strings.TrimSpace(answer) == "" && status == history.StatusStreaming && !ok {
			answer = "*…*"
		}
	}
	if b.msg.Role == history.RoleUser {
		if refs, question := splitImages(text); len(refs) > 0 {
			text = question
		}
		b.text.Segments = []widget.RichTextSegment{&widget.TextSegment{Text: text, Style: widget.RichTextStyleInline}}
		b.text.Refresh()
		return
	}
	b.text.ParseMarkdown(answer)
}

// setStats fills the caption: speed, token count, status.
func (b *bubble) setStats(m history.Message) {
	var parts []string
	switch m.Status {
	case history.StatusStreaming:
		parts = append(parts, "generating…")
	case history.StatusStopped:
		parts = append(parts, "stopped")
	case history.StatusInterrupted:
		parts = append(parts, "interrupted")
	case history.StatusError:
		parts = append(parts, "failed")
	}
	if m.Tokens > 0 {
		parts = append(parts, fmt.Sprintf("%d tokens", m.Tokens))
	}
	if m.TokensPerSec > 0 {
		parts = append(parts, fmt.Sprintf("%.1f tok/s", m.TokensPerSec))
	}
	b.caption.Text = strings.Join(parts, " · ")
	b.caption.Refresh()
}

// userLayout right-aligns a user's bubble, as wide as its longest line but
// at most three quarters of the row.
type userLayout struct{ text string }

func (l *userLayout) width(avail float32) float32 {
	longest := float32(0)
	size := theme.TextSize()
	for _, line := range strings.Split(l.text, "\n") {
		longest = max(longest, fyne.MeasureText(line, size, fyne.TextStyle{}).Width)
	}
	w := longest + 2*theme.InnerPadding() + 20 + 8
	return min(max(w, 60), avail*0.75)
}

func (l *userLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		w := l.width(size.Width)
		o.Resize(fyne.NewSize(w, size.Height))
		o.Move(fyne.NewPos(size.Width-w, 0))
	}
}

func (l *userLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var h float32
	for _, o := range objs {
		h = max(h, o.MinSize().Height)
	}
	return fyne.NewSize(60, h)
}

// columnLayout centers its content in a column of at most maxWidth, the
// comfortable reading width of chat apps, or as wide as the content needs
// when that is wider (a form with a long hint).
type columnLayout struct{ maxWidth float32 }

func (l *columnLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	w := min(size.Width, max(l.maxWidth, l.MinSize(objs).Width))
	for _, o := range objs {
		o.Resize(fyne.NewSize(w, size.Height))
		o.Move(fyne.NewPos((size.Width-w)/2, 0))
	}
}

func (l *columnLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var s fyne.Size
	for _, o := range objs {
		s = s.Max(o.MinSize())
	}
	return s
}

// captionLabel is a small truncated label under a thumbnail.
func captionLabel(s string) fyne.CanvasObject {
	l := widget.NewLabel(s)
	l.SizeName = theme.SizeNameCaptionText
	l.Truncation = fyne.TextTruncateEllipsis
	return container.NewGridWrap(fyne.NewSize(thumbSide, 22), l)
}
