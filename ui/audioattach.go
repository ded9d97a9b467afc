package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/ui/history"
)

// A recording attached to a chat message goes into the message as text:
// the recording's name and length and its top tags with the times they
// were heard (audioPrompt), then the question. The language model reads
// it like any message, and the history keeps it as it was sent.

// defaultAudioQuestion is asked when a recording is sent without text.
const defaultAudioQuestion = "What can you tell me about this recording?"

// recordingChip shows the recording attached to the next message.
type recordingChip struct {
	rec  *history.Recording // nil when none; UI goroutine only
	name *widget.Label
	root *fyne.Container
}

func (c *chatView) newRecordingChip() *recordingChip {
	r := &recordingChip{name: widget.NewLabel("")}
	r.name.Truncation = fyne.TextTruncateEllipsis
	remove := widget.NewButtonWithIcon("", theme.CancelIcon(), c.clearRecording)
	remove.Importance = widget.LowImportance
	r.root = container.NewHBox(widget.NewIcon(theme.MediaRecordIcon()), r.name, remove)
	r.root.Hide()
	return r
}

// attachRecording attaches r's tags to the next message. UI goroutine only.
func (c *chatView) attachRecording(r history.Recording) {
	c.recChip.rec = &r
	c.recChip.name.SetText(r.Name + " (" + formatDuration(r.Duration) + ", tags)")
	c.recChip.root.Show()
}

// clearRecording removes the attached recording.
func (c *chatView) clearRecording() {
	c.recChip.rec = nil
	c.recChip.root.Hide()
}

// recordingMessage is the text of a message sent with recording r.
func recordingMessage(r history.Recording, question string) string {
	if question == "" {
		question = defaultAudioQuestion
	}
	return audioPrompt(r) + "\n\n" + question
}

// recordingTitle turns a message sent with a recording into "question
// (recording name)" for a chat title; other text is returned as it is.
func recordingTitle(text string) string {
	first, _, _ := strings.Cut(text, "\n")
	name, ok := strings.CutPrefix(first, "[recording: ")
	if !ok {
		return text
	}
	if i := strings.LastIndex(name, " ("); i >= 0 {
		name = name[:i]
	}
	_, question, ok := strings.Cut(text, "\n\n")
	if !ok {
		return text
	}
	return strings.TrimSpace(question) + " (" + name + ")"
}
