package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core"
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

	search   *widget.Entry
	list     *widget.List
	title    *widget.Label
	headBtns *fyne.Container
	msgs     *fyne.Container
	scroll   *container.Scroll
	empty    fyne.CanvasObject
	input    *composer
	attach   *attachBar
	recChip  *recordingChip // an attached audio recording
	// images maps user messages sent with an image, in this run of the
	// app, to the image file, so regenerating re-reads the image.
	images  map[int64]string
	send    *widget.Button
	stopBtn *widget.Button
	speed   *widget.Label
	root    fyne.CanvasObject
}

func newChatView(a *App) *chatView {
	c := &chatView{a: a, images: map[int64]string{}}

	c.search = widget.NewEntry()
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
	c.list.OnSelected = func(i widget.ListItemID) {
		if i < len(c.convs) && (c.conv == nil || c.conv.ID != c.convs[i].ID) {
			c.open(c.convs[i].ID)
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

	main := container.NewBorder(container.NewVBox(header, widget.NewSeparator()), composerRow, nil, nil,
		container.NewStack(c.scroll, c.empty))
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
	c.list.UnselectAll()
	if c.conv != nil {
		for i, x := range c.convs {
			if x.ID == c.conv.ID {
				c.list.Select(i)
			}
		}
	}
}

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
	act := messageActions{copy: c.copyMessage, edit: c.editDialog, regenerate: c.regenerate, sibling: c.switchSibling}
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
	c.scroll.ScrollToBottom()
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

// submit sends the composer's text, with the attached image if any, as a
// new user message.
func (c *chatView) submit(text string) {
	text = strings.TrimSpace(text)
	imgPath := c.attach.path
	rec := c.recChip.rec
	if (text == "" && imgPath == "" && rec == nil) || c.generating {
		return
	}
	if c.a.model == nil {
		c.a.showError(errors.New("no model is loaded: open Models to download, import or load one"))
		return
	}
	if rec != nil {
		text = recordingMessage(*rec, text)
	}
	if imgPath != "" {
		if !c.a.model.Vision {
			c.a.showError(errors.New("the loaded model cannot read images: load a VisualRWKV-7 model or remove the image"))
			return
		}
		text = imageMarker(filepath.Base(imgPath)) + "\n" + text
	}
	if c.conv == nil {
		conv, err := c.a.store.CreateConversation(titleFrom(text), "", history.DefaultSampling())
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
	if imgPath != "" {
		c.images[u.ID] = imgPath
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
	imgPath := c.images[u.ID]
	c.speed.SetText("Reading the conversation…")
	go func() {
		defer close(done)
		c.generate(ctx, conv, u, asst, key, imgPath)
	}()
}

// generate runs on a background goroutine: it prepares the state, streams
// the reply into the bubble and the database, and stores the final state.
// imgPath, when not empty, is the image sent with u.
func (c *chatView) generate(ctx context.Context, conv history.Conversation, u, asst history.Message, key, imgPath string) {
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
							c.scroll.ScrollToBottom()
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
	if err == nil && imgPath != "" {
		prompt, err = c.prefillImage(ctx, prompt, u, imgPath)
	}
	if err == nil {
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
	var msgs []core.Message
	if conv.SystemPrompt != "" {
		msgs = append(msgs, core.Message{Role: "system", Content: conv.SystemPrompt})
	}
	for _, m := range branch {
		msgs = append(msgs, core.Message{Role: m.Role, Content: m.Content})
	}
	return core.ChatPrompt(msgs), nil
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

// settingsDialog edits the conversation's system prompt and sampling.
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
	num := func(v float64) *widget.Entry {
		e := widget.NewEntry()
		e.SetText(strconv.FormatFloat(v, 'g', -1, 64))
		return e
	}
	temp, topP, pres, freq, decay := num(s.Temperature), num(s.TopP), num(s.PresencePenalty), num(s.FrequencyPenalty), num(s.PenaltyDecay)
	topK, maxTok := num(float64(s.TopK)), num(float64(s.MaxTokens))
	items := []*widget.FormItem{
		widget.NewFormItem("System prompt", sys),
		{Text: "Temperature", Widget: temp, HintText: "0 = always the most likely word; 1 = default"},
		{Text: "Top-p", Widget: topP, HintText: "0–1; lower is more focused"},
		{Text: "Top-k", Widget: topK, HintText: "0 = off"},
		widget.NewFormItem("Presence penalty", pres),
		widget.NewFormItem("Frequency penalty", freq),
		widget.NewFormItem("Penalty decay", decay),
		widget.NewFormItem("Max tokens", maxTok),
	}
	d := dialog.NewForm("Chat settings", "Save", "Cancel", items, func(ok bool) {
		if !ok {
			return
		}
		ns, err := parseSampling(temp.Text, topP.Text, topK.Text, pres.Text, freq.Text, decay.Text, maxTok.Text)
		if err != nil {
			c.a.showError(err)
			return
		}
		conv.SystemPrompt = strings.TrimSpace(sys.Text)
		conv.Sampling = ns
		c.saveSettings(conv)
	}, c.a.win)
	d.Resize(fyne.NewSize(560, 560))
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

// parseSampling checks the chat settings form.
func parseSampling(temp, topP, topK, pres, freq, decay, maxTok string) (history.Sampling, error) {
	var s history.Sampling
	var errs []error
	f := func(name, v string, lo, hi float64) float64 {
		x, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || x < lo || x > hi {
			errs = append(errs, fmt.Errorf("%s must be a number from %g to %g", name, lo, hi))
		}
		return x
	}
	s.Temperature = f("temperature", temp, 0, 5)
	s.TopP = f("top-p", topP, 0, 1)
	s.TopK = int(f("top-k", topK, 0, 65536))
	s.PresencePenalty = f("presence penalty", pres, -5, 5)
	s.FrequencyPenalty = f("frequency penalty", freq, -5, 5)
	s.PenaltyDecay = f("penalty decay", decay, 0, 1)
	s.MaxTokens = int(f("max tokens", maxTok, 1, 1<<20))
	return s, errors.Join(errs...)
}

// exportDialog saves the conversation as Markdown or JSON.
func (c *chatView) exportDialog() {
	if c.conv == nil {
		return
	}
	id, title := c.conv.ID, c.conv.Title
	format := widget.NewRadioGroup([]string{"Markdown", "JSON (all branches, can be imported)"}, nil)
	format.SetSelected("Markdown")
	dialog.ShowCustomConfirm("Export chat", "Choose file…", "Cancel", format, func(ok bool) {
		if !ok {
			return
		}
		ext := ".md"
		if format.Selected != "Markdown" {
			ext = ".json"
		}
		save := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
			if err != nil {
				c.a.showError(err)
				return
			}
			if w == nil {
				return
			}
			defer w.Close()
			if err := c.export(id, ext, w); err != nil {
				c.a.showError(err)
			}
		}, c.a.win)
		save.SetFileName(safeFileName(title) + ext)
		save.Show()
	}, c.a.win)
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
	open := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil {
			c.a.showError(err)
			return
		}
		if r == nil {
			return
		}
		defer r.Close()
		c.importFrom(r)
	}, c.a.win)
	open.SetFilter(storage.NewExtensionFileFilter([]string{".json"}))
	open.Show()
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
