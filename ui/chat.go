package ui

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"github.com/goose-rwkv/goose/ui/history"
)

// Streaming cadence: how often a reply on screen and in the database is
// brought up to date.
const (
	uiInterval = 50 * time.Millisecond
	dbInterval = 400 * time.Millisecond
)

// chatView is the chat screen: the conversation list, the messages of the
// current conversation and the composer.
type chatView struct {
	a *App

	// UI-goroutine state.
	convs      []history.Conversation
	conv       *history.Conversation
	thread     []history.Message
	bubbles    []*bubble
	generating bool
	cancel     context.CancelFunc
	genDone    chan struct{} // closed when the running reply is finished and saved

	// epoch counts system prompt changes; a session state from an older
	// epoch is not continued from.
	epoch atomic.Int64

	// Engine-side state, touched only with a.engineMu held.
	session      Chat
	sessionAt    int64 // message whose state the session holds; 0 = unknown
	sessionEpoch int64

	search   *keyedEntry
	list     *widget.List
	title    *widget.Label
	headBtns *fyne.Container
	msgs     *fyne.Container
	scroll   *container.Scroll
	empty    fyne.CanvasObject
	input    *composer
	attach   *attachBar
	recChip  *recordingChip // an attached audio recording
	// thumbs caches the thumbnails of stored images by key (UI goroutine).
	thumbs  map[string]image.Image
	send    *widget.Button
	stopBtn *widget.Button
	speed   *widget.Label
	root    fyne.CanvasObject
	// follow keeps the latest message in view (see followLayout); it
	// ends when the user scrolls up.
	follow bool
	// selectedRow is the list row highlighted as the open chat, or -1.
	selectedRow int
	// settings is the chat settings dialog last opened (tests).
	settings *dialog.FormDialog
}

func newChatView(a *App) *chatView {
	c := &chatView{a: a, thumbs: map[string]image.Image{}}

	c.search = newKeyedEntry(a)
	c.search.SetPlaceHolder("Search chats")
	c.search.ActionItem = widget.NewIcon(theme.SearchIcon())
	c.search.OnChanged = func(string) { c.reloadList() }
	c.list = widget.NewList(
		func() int { return len(c.convs) },
		func() fyne.CanvasObject {
			t := widget.NewLabel("title")
			t.Truncation = fyne.TextTruncateEllipsis
			d := canvas.NewText("date", themeColor(colorSubtle))
			d.TextSize = theme.CaptionTextSize()
			return container.New(layout.NewCustomPaddedLayout(0, 8, 0, 0),
				container.NewBorder(nil, container.New(layout.NewCustomPaddedLayout(-6, 0, 10, 10), d), nil, nil, t))
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i >= len(c.convs) {
				return
			}
			box := o.(*fyne.Container).Objects[0].(*fyne.Container)
			box.Objects[0].(*widget.Label).SetText(c.convs[i].Title)
			d := box.Objects[1].(*fyne.Container).Objects[0].(*canvas.Text)
			d.Text = relativeTime(c.convs[i].Updated)
			d.Refresh()
		})
	c.selectedRow = -1
	c.list.OnSelected = func(i widget.ListItemID) {
		c.selectedRow = i
		if i < len(c.convs) && (c.conv == nil || c.conv.ID != c.convs[i].ID) {
			c.open(c.convs[i].ID)
		}
	}
	c.list.OnUnselected = func(i widget.ListItemID) {
		if c.selectedRow == i {
			c.selectedRow = -1
		}
	}
	newBtn := widget.NewButtonWithIcon("New chat", theme.ContentAddIcon(), c.newChat)
	newBtn.Importance = widget.HighImportance
	importBtn := widget.NewButtonWithIcon("Import", theme.FolderOpenIcon(), c.importDialog)
	importBtn.Importance = widget.LowImportance
	sideBG := canvas.NewRectangle(themeColor(colorSidebar))
	side := container.NewStack(sideBG, container.New(layout.NewCustomPaddedLayout(8, 8, 8, 8),
		container.NewBorder(container.NewVBox(newBtn, c.search), importBtn, nil, nil, c.list)))

	c.title = widget.NewLabelWithStyle("New chat", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	c.title.Truncation = fyne.TextTruncateEllipsis
	iconBtn := func(icon fyne.Resource, tip string, f func()) *widget.Button {
		b := widget.NewButtonWithIcon("", icon, f)
		b.Importance = widget.LowImportance
		return b
	}
	c.headBtns = container.NewHBox(
		iconBtn(theme.DocumentCreateIcon(), "Rename", c.renameDialog),
		iconBtn(theme.SettingsIcon(), "Chat settings", c.settingsDialog),
		iconBtn(theme.DocumentSaveIcon(), "Export", c.exportDialog),
		iconBtn(theme.DeleteIcon(), "Delete", c.deleteDialog),
	)
	header := container.New(layout.NewCustomPaddedLayout(4, 4, 12, 8), container.NewBorder(nil, nil, nil, c.headBtns, c.title))

	c.msgs = container.NewVBox()
	c.scroll = container.NewVScroll(container.New(&columnLayout{maxWidth: 860},
		container.New(layout.NewCustomPaddedLayout(16, 16, 20, 20), c.msgs)))
	c.empty = emptyChat()

	c.input = newComposer(c.submit)
	c.input.onShortcut = func(sc fyne.Shortcut) bool {
		if _, ok := sc.(*fyne.ShortcutPaste); ok && c.pasteImage() {
			return true
		}
		return a.shortcut(sc)
	}
	c.input.onKey, c.input.onUp = a.typedKey, c.editLast
	c.attach = c.newAttachBar()
	c.recChip = c.newRecordingChip()
	c.send = widget.NewButtonWithIcon("", theme.MailSendIcon(), func() { c.submit(c.input.Text) })
	c.send.Importance = widget.HighImportance
	c.stopBtn = widget.NewButtonWithIcon("Stop", theme.MediaStopIcon(), c.stop)
	c.stopBtn.Importance = widget.DangerImportance
	c.stopBtn.Hide()
	c.speed = widget.NewLabel("")
	c.speed.SizeName = theme.SizeNameCaptionText
	c.speed.Importance = widget.LowImportance
	buttons := container.NewVBox(layout.NewSpacer(), container.NewStack(c.send, c.stopBtn))
	composerRow := container.New(&columnLayout{maxWidth: 860}, container.New(layout.NewCustomPaddedLayout(4, 10, 20, 20),
		container.NewBorder(container.NewHBox(c.attach.root, c.recChip.root), c.speed, nil, buttons, c.input)))

	c.scroll.OnScrolled = func(fyne.Position) { c.follow = atBottom(c) }
	main := container.NewBorder(container.NewVBox(header, widget.NewSeparator()), composerRow, nil, nil,
		container.New(&followLayout{c}, c.scroll, c.empty))
	c.root = container.New(&sidebarLayout{width: 270}, side, main)
	c.reloadList()
	if len(c.convs) > 0 {
		c.open(c.convs[0].ID)
	} else {
		c.render()
	}
	return c
}

// emptyChat is shown when a conversation has no messages yet.
func emptyChat() fyne.CanvasObject {
	t := canvas.NewText("What can I help with?", themeColor(theme.ColorNameForeground))
	t.TextSize = 24
	t.TextStyle = fyne.TextStyle{Bold: true}
	t.Alignment = fyne.TextAlignCenter
	sub := canvas.NewText("Everything stays on this computer.", themeColor(colorSubtle))
	sub.Alignment = fyne.TextAlignCenter
	return container.NewCenter(container.NewVBox(t, sub))
}

func relativeTime(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 24*time.Hour && t.Day() == time.Now().Day():
		return t.Format("15:04")
	case d < 7*24*time.Hour:
		return t.Format("Mon 15:04")
	}
	return t.Format("2 Jan 2006")
}

// reloadList re-reads the conversation list (filtered by the search box).
func (c *chatView) reloadList() {
	convs, err := c.a.store.Conversations(c.search.Text)
	if err != nil {
		c.a.showError(err)
		return
	}
	c.convs = convs
	c.list.Refresh()
	c.highlight()
}

// highlight selects the open conversation's row in the list (none for a
// new chat).
func (c *chatView) highlight() {
	for i, x := range c.convs {
		if c.conv != nil && x.ID == c.conv.ID {
			if c.selectedRow != i {
				c.list.Select(i)
				c.list.ScrollTo(i)
			}
			return
		}
	}
	c.list.UnselectAll()
}

// selected returns the highlighted row of the conversation list, or -1.
func (c *chatView) selected() int { return c.selectedRow }

// bubbleFor returns the shown bubble of message id, or nil.
func (c *chatView) bubbleFor(id int64) *bubble {
	for _, b := range c.bubbles {
		if b.msg.ID == id {
			return b
		}
	}
	return nil
}

// newChat starts an empty conversation (stored at the first message).
func (c *chatView) newChat() {
	c.conv = nil
	c.thread = nil
	c.list.UnselectAll()
	c.render()
	c.a.show("chat")
}

// open shows conversation id.
func (c *chatView) open(id int64) {
	conv, err := c.a.store.Conversation(id)
	if err != nil {
		c.a.showError(err)
		return
	}
	c.conv = &conv
	c.loadThread()
	c.highlight()
}

// loadThread re-reads the current conversation's branch and shows it.
func (c *chatView) loadThread() {
	if c.conv == nil {
		c.thread = nil
	} else {
		conv, err := c.a.store.Conversation(c.conv.ID)
		if err != nil {
			c.a.showError(err)
			return
		}
		c.conv = &conv
		th, err := c.a.store.Branch(conv.Leaf)
		if err != nil {
			c.a.showError(err)
			return
		}
		c.thread = th
	}
	c.render()
}

// render rebuilds the message list from c.thread.
func (c *chatView) render() {
	if c.conv == nil {
		c.title.SetText("New chat")
		c.headBtns.Hide()
	} else {
		c.title.SetText(c.conv.Title)
		c.headBtns.Show()
	}
	act := messageActions{copy: c.copyMessage, edit: c.editDialog, regenerate: c.regenerate, sibling: c.switchSibling,
		thumbs: c.thumbsFor}
	c.bubbles = c.bubbles[:0]
	var objs []fyne.CanvasObject
	for _, m := range c.thread {
		sibs, idx, err := c.a.store.Siblings(m.ID)
		if err != nil {
			sibs, idx = []history.Message{m}, 0
		}
		b := newBubble(m, len(sibs), idx, act, c.generating)
		c.bubbles = append(c.bubbles, b)
		objs = append(objs, b.root)
	}
	c.msgs.Objects = objs
	c.msgs.Refresh()
	if len(objs) == 0 {
		c.empty.Show()
	} else {
		c.empty.Hide()
	}
	c.setBusy(c.generating)
	c.refreshAttach()
	c.follow = true
	c.scroll.ScrollToBottom()
}

// atBottom reports whether the chat shows its latest message.
func atBottom(c *chatView) bool {
	limit := c.scroll.Content.MinSize().Height - c.scroll.Size().Height
	return limit <= 0 || c.scroll.Offset.Y >= limit-1
}

// followLayout stacks the messages' scroll and the empty-chat notice, and
// keeps the latest message in view while c.follow holds: the messages'
// heights are known only once they are laid out at the window's width,
// after a chat is opened (or restored at start).
type followLayout struct{ c *chatView }

func (l *followLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Move(fyne.NewPos(0, 0))
		o.Resize(size)
	}
	if l.c.follow {
		l.c.scroll.ScrollToBottom()
	}
}

func (l *followLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var m fyne.Size
	for _, o := range objs {
		m = m.Max(o.MinSize())
	}
	return m
}

func (c *chatView) setBusy(busy bool) {
	if busy {
		c.send.Hide()
		c.stopBtn.Show()
	} else {
		c.stopBtn.Hide()
		c.send.Show()
	}
}

// titleFrom makes a conversation title from its first message.
func titleFrom(text string) string {
	t := strings.Join(strings.Fields(recordingTitle(text)), " ")
	if utf8.RuneCountInString(t) > 48 {
		r := []rune(t)
		t = strings.TrimSpace(string(r[:48])) + "…"
	}
	if t == "" {
		t = "New chat"
	}
	return t
}

// submit sends the composer's text, with the attached images if any, as a
// new user message.
func (c *chatView) submit(text string) {
	text = strings.TrimSpace(text)
	images := len(c.attach.pending)
	rec := c.recChip.rec
	if (text == "" && images == 0 && rec == nil) || c.generating {
		return
	}
	if c.attach.inflight > 0 {
		c.a.showError(errors.New("an attached image is still being read: send again in a moment"))
		return
	}
	if c.a.model == nil {
		c.a.showError(errors.New("no model is loaded: open Models to download, import or load one"))
		return
	}
	if rec != nil {
		text = recordingMessage(*rec, text)
	}
	if images > 0 {
		if !c.a.model.Vision {
			c.a.showError(errors.New("the loaded model cannot read images: load a VisualRWKV-7 model or remove the images"))
			return
		}
		lines, err := c.storePending()
		if err != nil {
			c.a.showError(err)
			return
		}
		text = lines + "\n" + text
	}
	if c.conv == nil {
		_, q := splitImages(text)
		conv, err := c.a.store.CreateConversation(titleFrom(q), "", history.DefaultSampling())
		if err != nil {
			c.a.showError(err)
			return
		}
		c.conv = &conv
	}
	u, err := c.a.store.AddMessage(history.Message{Conversation: c.conv.ID, Parent: c.conv.Leaf, Role: history.RoleUser, Content: text})
	if err != nil {
		c.a.showError(err)
		return
	}
	c.input.SetText("")
	if rec != nil {
		c.clearRecording()
	}
	if images > 0 {
		c.clearAttachment()
	}
	c.reply(u)
}

// reply generates a new assistant message answering user message u, in
// the background.
func (c *chatView) reply(u history.Message) {
	if c.a.model == nil {
		c.a.showError(errors.New("no model is loaded: open Models to load one"))
		c.loadThread()
		return
	}
	asst, err := c.a.store.AddMessage(history.Message{Conversation: u.Conversation, Parent: u.ID, Role: history.RoleAssistant, Status: history.StatusStreaming})
	if err != nil {
		c.a.showError(err)
		return
	}
	conv, err := c.a.store.Conversation(u.Conversation)
	if err != nil {
		c.a.showError(err)
		return
	}
	c.generating = true
	c.loadThread()
	c.reloadList()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	done := make(chan struct{})
	c.genDone = done
	key := c.a.model.StateKey
	c.speed.SetText("Reading the conversation…")
	go func() {
		defer close(done)
		c.generate(ctx, conv, u, asst, key)
	}()
}

// generate runs on a background goroutine: it prepares the state (feeding
// u's images, if any), streams the reply into the bubble and the database,
// and stores the final state.
func (c *chatView) generate(ctx context.Context, conv history.Conversation, u, asst history.Message, key string) {
	a := c.a
	var res GenResult
	var genErr error
	start := time.Now()

	// The engine appends pieces to cur; a ticker shows them every
	// uiInterval and saves them every dbInterval, so a slow token never
	// leaves text unshown and a crash loses at most dbInterval of it.
	var mu sync.Mutex
	var cur strings.Builder
	pieces := 0
	stopTick := make(chan struct{})
	tickDone := make(chan struct{})
	go func() {
		defer close(tickDone)
		t := time.NewTicker(uiInterval)
		defer t.Stop()
		shown, saved, lastDB := "", "", time.Now()
		for {
			select {
			case <-stopTick:
				return
			case now := <-t.C:
				mu.Lock()
				s, n := cur.String(), pieces
				mu.Unlock()
				if s != shown {
					shown = s
					rate := float64(n) / now.Sub(start).Seconds()
					a.do(func() {
						// The user may have switched chats and back: find
						// the reply's current bubble.
						if b := c.bubbleFor(asst.ID); b != nil {
							b.setContent(s, history.StatusStreaming)
							if c.follow {
								c.scroll.ScrollToBottom()
							}
						}
						c.speed.SetText(fmt.Sprintf("%.1f tok/s", rate))
					})
				}
				if s != saved && now.Sub(lastDB) >= dbInterval {
					saved, lastDB = s, now
					a.store.UpdateContent(asst.ID, s, history.StatusStreaming)
				}
			}
		}
	}()

	a.engineMu.Lock()
	epoch := c.epoch.Load()
	prompt, err := c.prepare(ctx, conv, u, key, epoch)
	if refs, _ := splitImages(u.Content); err == nil && len(refs) > 0 {
		prompt, err = c.prefillImages(ctx, prompt, u, refs)
	}
	if err != nil && ctx.Err() != nil {
		// Stopped while reading the conversation or encoding an image:
		// a stopped reply, no error; the session's state is not kept.
		res.Cancelled = true
	} else if err == nil {
		start = time.Now()
		res, genErr = c.session.Generate(ctx, prompt, GenParams{Sampling: conv.Sampling, Stop: []string{"\n\n"}}, func(piece string) {
			mu.Lock()
			cur.WriteString(piece)
			pieces++
			mu.Unlock()
		})
	} else {
		genErr = err
	}
	close(stopTick)
	<-tickDone
	status := history.StatusDone
	switch {
	case genErr != nil:
		status = history.StatusError
	case res.Cancelled:
		status = history.StatusStopped
	}
	// Store the state after the reply, ending the turn with "\n\n" if the
	// reply did not, so the next message continues from it directly.
	var blob []byte
	if c.session != nil && err == nil && genErr == nil {
		var perr error
		if !res.EndedTurn {
			perr = c.session.Prefill(context.Background(), "\n\n")
		}
		if perr == nil {
			blob, perr = c.session.Snapshot()
		}
		if perr == nil {
			c.sessionAt, c.sessionEpoch = asst.ID, epoch
		} else {
			blob, c.sessionAt = nil, 0
		}
	} else {
		c.sessionAt = 0
	}
	a.engineMu.Unlock()

	final := cur.String()
	dbErr := a.store.Finish(asst.ID, final, status, res.Tokens, res.TokensPerSec, blob, key)
	a.do(func() {
		c.generating = false
		c.cancel = nil
		c.speed.SetText("") // the reply's caption keeps its speed
		if c.conv != nil && c.conv.ID == conv.ID {
			c.loadThread()
		}
		c.reloadList()
		if genErr != nil {
			a.showError(fmt.Errorf("generation failed: %w", genErr))
		} else if dbErr != nil {
			a.showError(dbErr)
		}
	})
}

// prepare makes the session hold the state just before user message u and
// returns the prompt to feed: only u's turn when a stored state can be
// used, the whole branch otherwise. engineMu is held.
func (c *chatView) prepare(ctx context.Context, conv history.Conversation, u history.Message, key string, epoch int64) (string, error) {
	a := c.a
	if c.session == nil {
		s, err := a.eng.NewChat()
		if err != nil {
			return "", err
		}
		c.session, c.sessionAt = s, 0
	}
	turn := core.ChatTurn(u.Content)
	if u.Parent == 0 {
		if err := c.session.Reset(); err != nil {
			return "", err
		}
		c.sessionAt = 0
		var msgs []core.Message
		if conv.SystemPrompt != "" {
			msgs = append(msgs, core.Message{Role: "system", Content: conv.SystemPrompt})
		}
		return core.ChatPrompt(append(msgs, core.Message{Role: "user", Content: u.Content})), nil
	}
	if c.sessionAt == u.Parent && c.sessionEpoch == epoch {
		return turn, nil
	}
	if blob, k, err := a.store.State(u.Parent); err == nil && blob != nil && k == key {
		if err := c.session.Restore(blob); err == nil {
			c.sessionAt = u.Parent
			return turn, nil
		}
	}
	// No usable state (another model, an imported conversation): read the
	// branch from the start.
	branch, err := a.store.Branch(u.ID)
	if err != nil {
		return "", err
	}
	if err := c.session.Reset(); err != nil {
		return "", err
	}
	c.sessionAt = 0
	for _, m := range branch[:len(branch)-1] {
		if refs, _ := splitImages(m.Content); len(refs) > 0 {
			return c.replayImages(ctx, conv, branch)
		}
	}
	var msgs []core.Message
	if conv.SystemPrompt != "" {
		msgs = append(msgs, core.Message{Role: "system", Content: conv.SystemPrompt})
	}
	for _, m := range branch {
		msgs = append(msgs, core.Message{Role: m.Role, Content: m.Content})
	}
	return core.ChatPrompt(msgs), nil
}

// replayImages feeds a branch whose earlier user messages carry images
// into the (reset) session: text as core.ChatPrompt renders it, each image
// message through PrefillImages, so the model sees the images again (after
// a restart, another model, an imported conversation). It returns the
// prompt of the last message's turn, which the caller feeds. engineMu is
// held.
func (c *chatView) replayImages(ctx context.Context, conv history.Conversation, branch []history.Message) (string, error) {
	var text strings.Builder
	if conv.SystemPrompt != "" {
		text.WriteString(core.ChatMessage("system", conv.SystemPrompt))
	}
	afterImage := false
	for _, m := range branch[:len(branch)-1] {
		refs, question := splitImages(m.Content)
		switch {
		case m.Role == history.RoleUser && len(refs) > 0:
			if text.Len() > 0 {
				if err := c.session.Prefill(ctx, text.String()); err != nil {
					return "", err
				}
				text.Reset()
			}
			imgs, err := c.loadImages(refs)
			if err != nil {
				return "", err
			}
			if err := c.session.PrefillImages(ctx, imgs, question); err != nil {
				return "", err
			}
			afterImage = true
		case m.Role == history.RoleAssistant && afterImage:
			// "Assistant:" was fed with the image turn.
			text.WriteString(" " + core.CleanTurn(m.Content) + "\n\n")
			afterImage = false
		case m.Role == history.RoleAssistant:
			text.WriteString(core.ChatMessage("assistant", m.Content))
		default:
			text.WriteString(core.ChatMessage("user", m.Content))
		}
	}
	return text.String() + core.ChatTurn(branch[len(branch)-1].Content), nil
}

// closeSession frees the engine session. engineMu is held.
func (c *chatView) closeSession() {
	if c.session != nil {
		c.session.Close()
		c.session, c.sessionAt = nil, 0
	}
}

// stop cancels the reply being generated; it ends within one token.
func (c *chatView) stop() {
	if c.cancel != nil {
		c.cancel()
	}
}

// regenerate answers m's user message again; m stays as a sibling.
func (c *chatView) regenerate(m history.Message) {
	if c.generating {
		return
	}
	u, err := c.a.store.Message(m.Parent)
	if err != nil {
		c.a.showError(err)
		return
	}
	c.reply(u)
}

// edit sends text as a new version of user message m; the old version and
// its replies stay reachable with the sibling arrows.
func (c *chatView) edit(m history.Message, text string) {
	text = strings.TrimSpace(text)
	if text == "" || c.generating || c.conv == nil {
		return
	}
	if c.a.model == nil {
		c.a.showError(errors.New("no model is loaded: open Models to load one"))
		return
	}
	u, err := c.a.store.AddMessage(history.Message{Conversation: m.Conversation, Parent: m.Parent, Role: history.RoleUser, Content: text})
	if err != nil {
		c.a.showError(err)
		return
	}
	c.reply(u)
}

func (c *chatView) editDialog(m history.Message) {
	e := widget.NewMultiLineEntry()
	e.SetText(m.Content)
	e.Wrapping = fyne.TextWrapWord
	e.SetMinRowsVisible(5)
	d := dialog.NewCustomConfirm("Edit message", "Send", "Cancel", e, func(ok bool) {
		if ok {
			c.edit(m, e.Text)
		}
	}, c.a.win)
	d.Resize(fyne.NewSize(560, 300))
	d.Show()
	c.a.win.Canvas().Focus(e)
}

// switchSibling shows the branch of m's previous or next sibling.
func (c *chatView) switchSibling(m history.Message, delta int) {
	if c.generating || c.conv == nil {
		return
	}
	sibs, i, err := c.a.store.Siblings(m.ID)
	if err != nil {
		c.a.showError(err)
		return
	}
	j := i + delta
	if j < 0 || j >= len(sibs) {
		return
	}
	leaf, err := c.a.store.LatestLeaf(sibs[j].ID)
	if err == nil {
		err = c.a.store.SetLeaf(c.conv.ID, leaf)
	}
	if err != nil {
		c.a.showError(err)
		return
	}
	c.loadThread()
}

func (c *chatView) copyMessage(m history.Message) {
	c.a.fa.Clipboard().SetContent(m.Content)
}

func (c *chatView) renameDialog() {
	if c.conv == nil {
		return
	}
	e := widget.NewEntry()
	e.SetText(c.conv.Title)
	id := c.conv.ID
	dialog.ShowForm("Rename chat", "Rename", "Cancel", []*widget.FormItem{widget.NewFormItem("Title", e)}, func(ok bool) {
		if ok {
			c.rename(id, e.Text)
		}
	}, c.a.win)
}

func (c *chatView) rename(id int64, title string) {
	title = strings.TrimSpace(title)
	if title == "" {
		return
	}
	if err := c.a.store.Rename(id, title); err != nil {
		c.a.showError(err)
		return
	}
	if c.conv != nil && c.conv.ID == id {
		c.conv.Title = title
		c.title.SetText(title)
	}
	c.reloadList()
}

func (c *chatView) deleteDialog() {
	if c.conv == nil || c.generating {
		return
	}
	id, title := c.conv.ID, c.conv.Title
	dialog.ShowConfirm("Delete chat", fmt.Sprintf("Delete “%s” and all its messages? This cannot be undone.", title), func(ok bool) {
		if ok {
			c.remove(id)
		}
	}, c.a.win)
}

func (c *chatView) remove(id int64) {
	if err := c.a.store.DeleteConversation(id); err != nil {
		c.a.showError(err)
		return
	}
	if c.conv != nil && c.conv.ID == id {
		c.conv, c.thread = nil, nil
		c.render()
	}
	c.reloadList()
}

// samplingField is one number of the chat settings form, with its limits
// (those of package sample, which the terminal and the API share).
type samplingField struct {
	name, hint string
	lo, hi     float64
	whole      bool // a whole number
}

// samplingFields returns the chat settings form's numbers, in the order
// of parseSampling's arguments.
func samplingFields() [7]samplingField {
	return [...]samplingField{
		{"Temperature", fmt.Sprintf("0 to %d; 0 = always the most likely word, 1 = default", sample.MaxTemperature), 0, sample.MaxTemperature, false},
		{"Top-p", "0 to 1; lower is more focused", 0, 1, false},
		{"Top-k", "0 = off; else keep only the k most likely words", 0, 65536, true},
		{"Presence penalty", fmt.Sprintf("%d to %d; higher avoids repeating words", sample.MinPenalty, sample.MaxPenalty), sample.MinPenalty, sample.MaxPenalty, false},
		{"Frequency penalty", fmt.Sprintf("%d to %d; higher avoids repeating words often", sample.MinPenalty, sample.MaxPenalty), sample.MinPenalty, sample.MaxPenalty, false},
		{"Penalty decay", "0 to 1; how fast penalties fade (0 = never)", 0, 1, false},
		{"Max tokens", "1 to 1048576; the longest reply", 1, 1 << 20, true},
	}
}

// parse reads the field's text.
func (f samplingField) parse(text string) (float64, error) {
	x, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	switch {
	case err != nil || math.IsNaN(x):
		return 0, fmt.Errorf("%s must be a number", strings.ToLower(f.name))
	case x < f.lo || x > f.hi:
		return 0, fmt.Errorf("%s must be from %g to %g", strings.ToLower(f.name), f.lo, f.hi)
	case f.whole && x != math.Trunc(x):
		return 0, fmt.Errorf("%s must be a whole number", strings.ToLower(f.name))
	}
	return x, nil
}

// settingsDialog edits the conversation's system prompt and sampling. Each
// number is checked as it is typed, the problem shown under it, and Save
// stays disabled until all are valid: nothing typed is lost.
func (c *chatView) settingsDialog() {
	if c.conv == nil {
		return
	}
	conv := *c.conv
	sys := widget.NewMultiLineEntry()
	sys.SetText(conv.SystemPrompt)
	sys.Wrapping = fyne.TextWrapWord
	sys.SetPlaceHolder("e.g. You are a concise assistant who answers in English.")
	sys.SetMinRowsVisible(3)
	s := conv.Sampling
	values := []float64{s.Temperature, s.TopP, float64(s.TopK), s.PresencePenalty, s.FrequencyPenalty, s.PenaltyDecay, float64(s.MaxTokens)}
	items := []*widget.FormItem{widget.NewFormItem("System prompt", sys)}
	var entries []*widget.Entry
	for i, f := range samplingFields() {
		e := widget.NewEntry()
		e.SetText(strconv.FormatFloat(values[i], 'g', -1, 64))
		e.Validator = func(text string) error { _, err := f.parse(text); return err }
		entries = append(entries, e)
		items = append(items, &widget.FormItem{Text: f.name, Widget: e, HintText: f.hint})
	}
	d := dialog.NewForm("Chat settings", "Save", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		texts := make([]string, len(entries))
		for i, e := range entries {
			texts[i] = e.Text
		}
		ns, err := parseSampling(texts...)
		if err != nil {
			c.a.showError(err) // not reached: Save is disabled while a field is invalid
			return
		}
		conv.SystemPrompt = strings.TrimSpace(sys.Text)
		conv.Sampling = ns
		c.saveSettings(conv)
	}, c.a.win)
	d.Resize(fyne.NewSize(560, 600))
	c.settings = d
	d.Show()
}

func (c *chatView) saveSettings(conv history.Conversation) {
	old, err := c.a.store.Conversation(conv.ID)
	if err == nil {
		err = c.a.store.UpdateConversation(conv)
	}
	if err != nil {
		c.a.showError(err)
		return
	}
	if old.SystemPrompt != conv.SystemPrompt {
		// Stored states hold the old system prompt: re-read from now on.
		c.epoch.Add(1)
		if err := c.a.store.ClearConversationStates(conv.ID); err != nil {
			c.a.showError(err)
		}
	}
	if c.conv != nil && c.conv.ID == conv.ID {
		c.conv = &conv
	}
}

// parseSampling checks the chat settings form's numbers, given in the
// order of samplingFields.
func parseSampling(texts ...string) (history.Sampling, error) {
	fields := samplingFields()
	if len(texts) != len(fields) {
		return history.Sampling{}, fmt.Errorf("parseSampling: %d values, want %d", len(texts), len(fields))
	}
	var x [len(fields)]float64
	var errs []error
	for i, f := range fields {
		v, err := f.parse(texts[i])
		errs = append(errs, err)
		x[i] = v
	}
	s := history.Sampling{Temperature: x[0], TopP: x[1], TopK: int(x[2]), PresencePenalty: x[3],
		FrequencyPenalty: x[4], PenaltyDecay: x[5], MaxTokens: int(x[6])}
	return s, errors.Join(errs...)
}

// exportDialog saves the conversation as Markdown or JSON.
func (c *chatView) exportDialog() {
	if c.conv == nil {
		return
	}
	id := c.conv.ID
	c.a.exportFile("Export chat", safeFileName(c.conv.Title),
		[]exportChoice{{"Markdown", ".md"}, {"JSON (all branches, can be imported)", ".json"}},
		"Could not export the chat", func(path, ext string) error {
			return atomicfile.Write(path, 0o644, func(w io.Writer) error { return c.export(id, ext, w) })
		})
}

// export writes conversation id as Markdown (ext ".md") or JSON.
func (c *chatView) export(id int64, ext string, w io.Writer) error {
	if ext == ".md" {
		return c.a.store.ExportMarkdown(id, w)
	}
	return c.a.store.ExportJSON(id, w)
}

func safeFileName(s string) string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune(`/\:*?"<>|`, r) || r < ' ' {
			return '-'
		}
		return r
	}, s)
	if s == "" {
		return "chat"
	}
	return s
}

func (c *chatView) importDialog() {
	c.a.openFile("Import a chat", fileFilter{"Goose chats (JSON)", []string{".json"}}, c.importFile)
}

// importFrom adds a conversation exported as JSON and opens it.
func (c *chatView) importFrom(r io.Reader) {
	conv, err := c.a.store.ImportJSON(r)
	if err != nil {
		c.a.showError(err)
		return
	}
	c.reloadList()
	c.open(conv.ID)
}

// importFile imports the conversation file at path.
func (c *chatView) importFile(path string) {
	f, err := os.Open(path)
	if err != nil {
		c.a.showError(err)
		return
	}
	defer f.Close()
	c.importFrom(f)
}

// sidebarLayout gives its first object a fixed width on the left and the
// rest of the space to the second.
type sidebarLayout struct{ width float32 }

func (l *sidebarLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	w := min(l.width, size.Width/2)
	objs[0].Move(fyne.NewPos(0, 0))
	objs[0].Resize(fyne.NewSize(w, size.Height))
	objs[1].Move(fyne.NewPos(w, 0))
	objs[1].Resize(fyne.NewSize(size.Width-w, size.Height))
}

func (l *sidebarLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	a, b := objs[0].MinSize(), objs[1].MinSize()
	return fyne.NewSize(l.width+b.Width, max(a.Height, b.Height))
}
