package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"github.com/goose-rwkv/goose/ui/capture"
	"github.com/goose-rwkv/goose/ui/history"
	"github.com/goose-rwkv/goose/ui/settings"
)

// audioView is the Audio screen: record or import audio, see its
// spectrogram, tag timeline and top tags, play it back, keep a history of
// recordings, and attach one to a chat message.
type audioView struct {
	a    *App
	root fyne.CanvasObject

	modelLabel *widget.Label
	modelBtn   *widget.Button
	devices    *widget.Select
	recBtn     *widget.Button
	importBtn  *widget.Button
	level      *levelMeter
	elapsed    *widget.Label
	status     *widget.Label
	title      *widget.Label
	info       *widget.Label
	pic        *audioPicture
	playhead   *canvas.Rectangle // where playback is, over the picture
	bars       *fyne.Container
	actions    *fyne.Container
	playBtn    *widget.Button
	tagBtn     *widget.Button
	attachBtn  *widget.Button
	exportBtn  *widget.Button
	renameBtn  *widget.Button
	deleteBtn  *widget.Button
	search     *widget.Entry
	list       *widget.List

	// engMu serializes calls to the audio engine (background goroutines).
	engMu sync.Mutex

	// UI-goroutine state.
	started   bool // the screen has been shown once
	sys       capture.System
	devList   []capture.Device
	model     *AudioModelInfo
	loading   bool
	recs      []history.Recording
	cur       *history.Recording // the recording shown; nil while recording or when none
	curPCM    []float32          // its samples at recordRate, once read
	spec      [][]float32
	live      *liveRecording // the recording in progress
	player    capture.Output
	playing   int64                        // id of the recording playing
	tagging   map[int64]context.CancelFunc // recordings being tagged
	importing context.CancelFunc           // the import running, nil when none
	// cancel stops background work of this screen (tagging, reading).
	ctx    context.Context
	cancel context.CancelFunc
}

// liveRecording is the UI side of a recording in progress.
type liveRecording struct {
	rec      *recorder
	windows  []history.WindowTag
	specN    int // samples the spectrogram covers
	stopping bool
	stopTag  chan struct{}
}

func newAudioView(a *App) *audioView {
	v := &audioView{a: a, tagging: map[int64]context.CancelFunc{}}
	v.ctx, v.cancel = context.WithCancel(context.Background())

	v.modelLabel = widget.NewLabel("No tagger model loaded")
	v.modelLabel.Truncation = fyne.TextTruncateEllipsis
	v.modelBtn = widget.NewButtonWithIcon("Choose tagger model…", theme.FolderOpenIcon(), v.chooseModel)
	v.devices = widget.NewSelect(nil, nil)
	v.devices.PlaceHolder = "Default input"
	v.recBtn = widget.NewButtonWithIcon("Record", theme.MediaRecordIcon(), v.toggleRecord)
	v.recBtn.Importance = widget.HighImportance
	v.importBtn = widget.NewButtonWithIcon("Import…", theme.UploadIcon(), func() {
		if v.importing != nil {
			v.importing() // Stop import
			return
		}
		v.importDialog()
	})
	v.level = newLevelMeter()
	v.elapsed = widget.NewLabel("0:00")
	v.elapsed.TextStyle = fyne.TextStyle{Monospace: true}
	v.status = widget.NewLabel("")
	v.status.Importance = widget.LowImportance
	v.status.Truncation = fyne.TextTruncateEllipsis

	v.title = widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	v.title.Truncation = fyne.TextTruncateEllipsis
	v.info = widget.NewLabel("")
	v.info.Truncation = fyne.TextTruncateEllipsis
	v.pic = newAudioPicture(a.do)
	v.playhead = canvas.NewRectangle(themeColor(theme.ColorNameError))
	v.playhead.Hide()
	v.bars = container.NewVBox()

	v.playBtn = widget.NewButtonWithIcon("Play", theme.MediaPlayIcon(), v.togglePlay)
	v.tagBtn = widget.NewButtonWithIcon("Tag", theme.SearchIcon(), func() {
		if v.cur == nil {
			return
		}
		if cancel := v.tagging[v.cur.ID]; cancel != nil {
			cancel() // Stop tagging
			return
		}
		v.tag(*v.cur, v.curPCM)
	})
	v.attachBtn = widget.NewButtonWithIcon("Attach to chat", theme.MailAttachmentIcon(), v.attachToChat)
	v.renameBtn = widget.NewButtonWithIcon("", theme.DocumentCreateIcon(), v.renameDialog)
	v.deleteBtn = widget.NewButtonWithIcon("", theme.DeleteIcon(), v.deleteDialog)
	v.exportBtn = widget.NewButtonWithIcon("Export tags", theme.DocumentSaveIcon(), v.exportDialog)
	v.actions = container.NewHBox(v.playBtn, v.tagBtn, v.attachBtn, v.exportBtn, v.renameBtn, v.deleteBtn)

	v.search = widget.NewEntry()
	v.search.SetPlaceHolder("Search recordings")
	v.search.OnChanged = func(string) { v.reloadList() }
	v.list = widget.NewList(func() int { return len(v.recs) }, func() fyne.CanvasObject {
		name := widget.NewLabelWithStyle("", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
		name.Truncation = fyne.TextTruncateEllipsis
		sub := widget.NewLabel("")
		sub.Truncation = fyne.TextTruncateEllipsis
		sub.SizeName = theme.SizeNameCaptionText
		return container.NewVBox(name, sub)
	}, func(id widget.ListItemID, o fyne.CanvasObject) {
		if id >= len(v.recs) {
			return
		}
		r := v.recs[id]
		box := o.(*fyne.Container)
		box.Objects[0].(*widget.Label).SetText(r.Name)
		sub := formatDuration(r.Duration) + " · " + relativeTime(r.Created)
		if r.Tags != nil && len(r.Tags.Top) > 0 {
			sub += " · " + r.Tags.Top[0].Label
		} else if v.tagging[r.ID] != nil {
			sub += " · tagging…"
		}
		box.Objects[1].(*widget.Label).SetText(sub)
	})
	v.list.OnSelected = func(id widget.ListItemID) {
		if id < len(v.recs) && (v.cur == nil || v.cur.ID != v.recs[id].ID) {
			v.open(v.recs[id])
		}
	}

	top := container.NewBorder(nil, nil, nil, container.NewHBox(v.modelBtn), v.modelLabel)
	meter := container.NewBorder(nil, nil, nil, v.elapsed, v.level)
	controls := container.NewBorder(nil, nil, container.NewHBox(v.recBtn, v.importBtn), nil,
		container.NewGridWithColumns(2, v.devices, meter))
	head := container.NewVBox(v.title, v.info, v.actions)
	barsTitle := widget.NewLabelWithStyle("Top tags", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	credits := widget.NewButtonWithIcon("AudioSet labels", theme.InfoIcon(), v.showCredits)
	credits.Importance = widget.LowImportance
	main := container.NewBorder(container.NewVBox(top, controls, widget.NewSeparator(), head), nil, nil, nil,
		container.NewVSplit(container.NewStack(v.pic, container.NewWithoutLayout(v.playhead)), container.NewBorder(container.NewBorder(nil, nil, barsTitle, credits, v.status), nil, nil, nil, container.NewVScroll(v.bars))))
	side := container.NewBorder(container.NewVBox(widget.NewLabelWithStyle("Recordings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true}), v.search), nil, nil, nil, v.list)
	split := container.NewHSplit(side, container.NewPadded(main))
	split.Offset = 0.24
	v.root = split
	v.refresh()
	return v
}

// showCredits shows the attribution of the AudioSet class names.
func (v *audioView) showCredits() {
	text := widget.NewLabel(audio.LabelsNotice())
	text.Wrapping = fyne.TextWrapWord
	scroll := container.NewVScroll(text)
	scroll.SetMinSize(fyne.NewSize(560, 320))
	dialog.ShowCustom("AudioSet labels", "Close", scroll, v.a.win)
}

// recordingsDir is where recordings are kept: beside the history database,
// or, when the history lives in memory (its folder could not be used), in
// the system's temporary folder, like that history for this session only
// (never the folder Goose was started from).
func (v *audioView) recordingsDir() string {
	if p := v.a.store.Path(); p != "" {
		return filepath.Join(filepath.Dir(p), "recordings")
	}
	return filepath.Join(os.TempDir(), "goose-recordings")
}

// engine returns the audio engine.
func (v *audioView) engine() AudioEngine { return v.a.audioEng }

// shown is called each time the screen is shown. The first time it
// recovers recordings a crash interrupted, lists devices and loads the
// last tagger model. UI goroutine only.
func (v *audioView) shown() {
	v.reloadList()
	if v.started {
		v.refreshDevices()
		return
	}
	v.started = true
	added, err := recoverRecordings(v.a.store, v.recordingsDir())
	if len(added) > 0 {
		v.reloadList()
		dialog.ShowInformation("Recordings recovered", fmt.Sprintf("%d recording(s) interrupted when Goose stopped were kept up to the last second written, and are in the list as “Recovered recording”.", len(added)), v.a.win)
	}
	if err != nil {
		v.a.showProblem("Could not recover interrupted recordings", err)
	}
	v.refreshDevices()
	if p := v.a.cfg.AudioModel; p != "" && v.model == nil {
		if _, err := os.Stat(p); err == nil {
			v.loadModel(p)
		}
	}
}

// system opens the sound system on first use.
func (v *audioView) system() (capture.System, error) {
	if v.sys != nil {
		return v.sys, nil
	}
	if v.a.opts.Sound != nil {
		v.sys = v.a.opts.Sound
		return v.sys, nil
	}
	sys, err := capture.Open("")
	if err != nil {
		return nil, err
	}
	v.sys = sys
	return sys, nil
}

// refreshDevices lists the input devices in the selector; the sound
// system is asked on a background goroutine (enumerating can be slow).
func (v *audioView) refreshDevices() {
	sys, err := v.system()
	if err != nil {
		v.setDevices(nil, err)
		return
	}
	go func() {
		devs, err := sys.Inputs()
		v.a.do(func() { v.setDevices(devs, err) })
	}()
}

// setDevices shows the input devices found, or why there are none.
func (v *audioView) setDevices(devs []capture.Device, err error) {
	if err != nil {
		v.status.SetText(err.Error())
	}
	v.devList = devs
	var names []string
	def := ""
	for _, d := range devs {
		names = append(names, d.Name)
		if d.Default && def == "" {
			def = d.Name
		}
	}
	v.devices.Options = names
	switch {
	case err != nil && len(names) == 0:
		v.devices.PlaceHolder = "No sound system"
	case len(names) == 0:
		v.devices.PlaceHolder = "No input device"
	default:
		v.devices.PlaceHolder = "Default input"
	}
	if sel := v.devices.Selected; sel == "" || !slices.Contains(names, sel) {
		v.devices.Selected = def
	}
	v.devices.Refresh()
}

// refresh updates the controls to the state. UI goroutine only.
func (v *audioView) refresh() {
	switch {
	case v.loading:
		v.modelLabel.SetText("Loading the tagger model…")
		v.modelBtn.Disable()
	case v.model != nil:
		v.modelLabel.SetText("Tagger: " + v.model.Name + " — " + v.model.Summary)
		v.modelBtn.Enable()
	default:
		v.modelLabel.SetText("No tagger model loaded: choose an A-RWKV model to tag audio (recording works without one)")
		v.modelBtn.Enable()
	}
	rec := v.live != nil
	switch {
	case rec && v.live.stopping:
		v.recBtn.SetText("Saving…")
		v.recBtn.Disable()
	case rec:
		v.recBtn.SetText("Stop")
		v.recBtn.SetIcon(theme.MediaStopIcon())
		v.recBtn.Enable()
	default:
		v.recBtn.SetText("Record")
		v.recBtn.SetIcon(theme.MediaRecordIcon())
		v.recBtn.Enable()
	}
	switch {
	case v.importing != nil:
		v.importBtn.SetText("Stop import")
		v.importBtn.Enable()
	case rec:
		v.importBtn.Disable()
	default:
		v.importBtn.SetText("Import…")
		v.importBtn.Enable()
	}
	if rec || v.importing != nil {
		v.devices.Disable()
	} else {
		v.devices.Enable()
	}
	if !rec {
		v.level.SetValue(0)
	}
	if v.cur == nil {
		if !rec {
			v.title.SetText("No recording")
			v.info.SetText("Record with the microphone or import a WAV, FLAC or MP3 file.")
		}
		for _, b := range []*widget.Button{v.playBtn, v.tagBtn, v.attachBtn, v.exportBtn, v.renameBtn, v.deleteBtn} {
			b.Disable()
		}
	} else {
		for _, b := range []*widget.Button{v.exportBtn, v.renameBtn, v.deleteBtn} {
			b.Enable()
		}
		v.title.SetText(v.cur.Name)
		info := formatDuration(v.cur.Duration) + " · " + v.cur.Created.Format("2006-01-02 15:04") + " · " + v.cur.Source
		if v.cur.Model != "" {
			info += " · tagged by " + v.cur.Model
		}
		v.info.SetText(info)
		if v.playing == v.cur.ID && v.player != nil {
			v.playBtn.SetText("Stop")
			v.playBtn.SetIcon(theme.MediaStopIcon())
		} else {
			v.playBtn.SetText("Play")
			v.playBtn.SetIcon(theme.MediaPlayIcon())
		}
		if v.curPCM == nil {
			v.playBtn.Disable()
		} else {
			v.playBtn.Enable()
		}
		switch {
		case v.tagging[v.cur.ID] != nil:
			v.tagBtn.SetText("Stop tagging")
			v.tagBtn.SetIcon(theme.MediaStopIcon())
			v.tagBtn.Enable()
		case v.model == nil || v.curPCM == nil:
			v.tagBtn.Disable()
		default:
			v.tagBtn.Enable()
		}
		if v.tagging[v.cur.ID] == nil {
			v.tagBtn.SetIcon(theme.SearchIcon())
			if v.cur.Tags == nil {
				v.tagBtn.SetText("Tag")
			} else {
				v.tagBtn.SetText("Tag again")
			}
		}
		if v.cur.Tags == nil {
			v.attachBtn.Disable()
		} else {
			v.attachBtn.Enable()
		}
	}
	v.actions.Refresh() // button texts change their widths
}

// setBars shows tags as probability bars.
func (v *audioView) setBars(tags []history.Tag) {
	v.bars.Objects = nil
	for _, t := range tags[:min(10, len(tags))] {
		name := widget.NewLabel(t.Label)
		name.Truncation = fyne.TextTruncateEllipsis
		bar := widget.NewProgressBar()
		p := float64(t.Prob)
		bar.SetValue(p)
		bar.TextFormatter = func() string { return fmt.Sprintf("%.0f%%", 100*p) }
		v.bars.Add(container.NewGridWithColumns(2, name, bar))
	}
	if len(tags) == 0 {
		msg := "No tags yet."
		switch {
		case v.live != nil && v.model != nil:
			msg = "Tags appear after the first 10 seconds."
		case v.model == nil:
			msg = "Load a tagger model to see tags."
		case v.cur != nil && v.tagging[v.cur.ID] != nil:
			msg = "Tagging…"
		}
		l := widget.NewLabel(msg)
		l.Importance = widget.LowImportance
		v.bars.Add(l)
	}
	v.bars.Refresh()
}

// showPicture draws the current recording's spectrogram and tags.
func (v *audioView) showPicture() {
	in := pictureInput{spec: v.spec}
	switch {
	case v.live != nil:
		pcm, _, _ := v.live.rec.snapshot()
		in.span = max(10*time.Second, pcmDuration(pcm))
		top := liveTop(v.live.windows)
		in.tagging = &history.Tagging{Top: top, Windows: v.live.windows}
	case v.cur != nil:
		in.span = v.cur.Duration
		in.tagging = v.cur.Tags
	}
	v.pic.set(in)
	if in.tagging != nil {
		v.setBars(in.tagging.Top)
	} else {
		v.setBars(nil)
	}
}

func (v *audioView) reloadList() {
	recs, err := v.a.store.Recordings(strings.TrimSpace(v.search.Text))
	if err != nil {
		v.a.showError(err)
		return
	}
	v.recs = recs
	v.list.UnselectAll()
	if v.cur != nil {
		for i, r := range recs {
			if r.ID == v.cur.ID {
				v.list.Select(i)
			}
		}
	}
	v.list.Refresh()
}

// open shows recording r: its tags at once, its picture once the file is
// read (in the background).
func (v *audioView) open(r history.Recording) {
	if v.live != nil {
		return
	}
	v.stopPlayback()
	v.cur, v.curPCM, v.spec = &r, nil, nil
	v.refresh()
	v.showPicture()
	v.reloadList()
	id := r.ID
	go func() {
		pcm, err := readRecording(r.Path)
		var spec [][]float32
		if err == nil {
			v.engMu.Lock()
			spec, err = v.engine().Spectrogram(pcm, recordRate)
			v.engMu.Unlock()
		}
		v.a.do(func() {
			if v.cur == nil || v.cur.ID != id {
				return
			}
			if err != nil {
				v.a.showProblem("Cannot show “"+r.Name+"”", err)
				return
			}
			v.curPCM, v.spec = pcm, spec
			v.refresh()
			v.showPicture()
		})
	}()
}

// chooseModel lets the user pick an A-RWKV checkpoint.
func (v *audioView) chooseModel() {
	v.a.openFile("Choose an A-RWKV tagger", fileFilter{"A-RWKV checkpoints", []string{".pth", ".pt", ".safetensors", ".bin"}}, v.loadModel)
}

// loadModel loads a tagger model in the background.
func (v *audioView) loadModel(path string) {
	if v.loading || v.live != nil {
		return
	}
	v.loading = true
	v.refresh()
	opts := LoadOptions{Backend: v.a.cfg.Backend, Threads: v.a.cfg.Threads}
	go func() {
		v.engMu.Lock()
		info, err := v.engine().Load(v.ctx, path, opts)
		v.engMu.Unlock()
		v.a.do(func() {
			v.loading = false
			if err != nil {
				v.model = nil
				v.refresh()
				v.a.showProblem("Could not load the tagger model "+filepath.Base(path), err)
				return
			}
			v.model = &info
			v.a.cfg.AudioModel = path
			if err := settings.Save(v.a.cfgPath, v.a.cfg); err != nil {
				v.a.showError(err)
			}
			v.refresh()
			v.showPicture()
		})
	}()
}

// toggleRecord starts or stops recording.
func (v *audioView) toggleRecord() {
	if v.live != nil {
		v.stopRecording()
		return
	}
	v.startRecording()
}

// startRecording starts capturing from the selected device.
func (v *audioView) startRecording() {
	if v.importing != nil {
		return
	}
	sys, err := v.system()
	if err != nil {
		v.a.showProblem("Cannot record", err)
		return
	}
	if v.devList == nil { // not listed yet
		devs, err := sys.Inputs()
		v.setDevices(devs, err)
	}
	if len(v.devList) == 0 {
		v.a.showError(fmt.Errorf("cannot record: %w. Connect a microphone (or check that the system sees it) and try again", capture.ErrNoInput))
		return
	}
	id, name := "", "default input"
	for _, d := range v.devList {
		if d.Name == v.devices.Selected {
			id, name = d.ID, d.Name
		}
	}
	v.stopPlayback()
	live := &liveRecording{stopTag: make(chan struct{})}
	rec, err := startRecorder(sys, v.recordingsDir(), id, name, nil)
	if err != nil {
		v.a.showProblem("Cannot record from "+name, err)
		return
	}
	live.rec = rec
	v.live = live
	v.cur, v.curPCM, v.spec = nil, nil, nil
	v.list.UnselectAll()
	v.title.SetText("Recording from " + name)
	v.info.SetText("Tags update every window while recording; Stop saves the recording.")
	v.status.SetText("")
	v.refresh()
	v.showPicture()
	go v.follow(live)
}

// follow runs while a recording is in progress: it updates the level
// meter and the elapsed time ten times a second, and starts liveTags.
// Background goroutine.
func (v *audioView) follow(live *liveRecording) {
	go v.liveTags(live)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastLen, lastGrowth, warned := 0, time.Now(), false
	for {
		select {
		case <-live.stopTag:
			return
		case <-tick.C:
		}
		pcm, level, werr := live.rec.snapshot()
		elapsed := pcmDuration(pcm)
		// A device that stops delivering (unplugged, or taken by the
		// system) leaves the recording still; say so once.
		stalled := false
		if len(pcm) != lastLen {
			lastLen, lastGrowth = len(pcm), time.Now()
		} else if !warned && time.Since(lastGrowth) > stallAfter {
			stalled, warned = true, true
		}
		v.a.do(func() {
			if v.live != live {
				return
			}
			if stalled {
				v.status.SetText(fmt.Sprintf("No sound from the input device for %d s: is it unplugged, or in use by another program? Stop keeps what was recorded.", int(stallAfter/time.Second)))
			}
			if werr != nil {
				v.status.SetText("Writing the recording failed: " + werr.Error())
			}
			v.level.SetValue(float64(level))
			v.elapsed.SetText(formatDuration(elapsed))
		})
	}
}

// liveTags extends the spectrogram with the new whole frames (25 ms
// windows 10 ms apart) and feeds the tagger's stream, so the picture grows
// and tags appear as each window completes, at most four times a second.
// It runs beside follow so that a window's inference never holds up the
// meter. Background goroutine.
func (v *audioView) liveTags(live *liveRecording) {
	var stream AudioStream
	var labels []string
	v.a.do(func() {
		if v.model != nil {
			labels = v.model.Labels
		}
	})
	if labels != nil {
		v.engMu.Lock()
		s, err := v.engine().NewStream(recordRate)
		v.engMu.Unlock()
		if err != nil {
			v.a.do(func() { v.status.SetText("Live tags unavailable: " + err.Error()) })
		}
		stream = s
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	fed := 0     // samples given to the stream
	specPos := 0 // samples the spectrogram covers
	for {
		select {
		case <-live.stopTag:
			return
		case <-tick.C:
		}
		pcm, _, _ := live.rec.snapshot()
		var windows []AudioWindow
		var frames [][]float32
		var tagErr error
		if hop, win := recordRate/100, recordRate/40; len(pcm)-specPos >= win {
			v.engMu.Lock()
			f, err := v.engine().Spectrogram(pcm[specPos:], recordRate)
			v.engMu.Unlock()
			if err == nil {
				frames = f
				specPos += len(f) * hop
			}
		}
		if stream != nil && len(pcm) > fed {
			v.engMu.Lock()
			windows, tagErr = stream.Write(v.ctx, pcm[fed:])
			v.engMu.Unlock()
			fed = len(pcm)
			if tagErr != nil {
				stream = nil
			}
		}
		if len(frames) == 0 && len(windows) == 0 && tagErr == nil {
			continue
		}
		v.a.do(func() {
			if v.live != live {
				return
			}
			if tagErr != nil {
				v.status.SetText("Live tagging stopped: " + tagErr.Error())
			}
			v.spec = append(v.spec, frames...)
			live.windows = append(live.windows, windowTags(windows, labels)...)
			v.showPicture()
		})
	}
}

// stallAfter is how long a recording may get no samples before the
// screen says the device stopped.
const stallAfter = 3 * time.Second

// stopRecording stops capturing, saves the file and the history entry in
// the background, and tags the whole recording.
func (v *audioView) stopRecording() {
	live := v.live
	if live == nil || live.stopping {
		return
	}
	live.stopping = true
	v.refresh()
	close(live.stopTag)
	go func() {
		path, pcm, err := live.rec.stop()
		dropped := live.rec.dropped.Load()
		v.a.do(func() {
			v.live = nil
			if path == "" {
				v.refresh()
				v.a.showProblem("The recording could not be saved", err)
				return
			}
			r, aerr := v.a.store.AddRecording(live.rec.entry(path, pcm))
			if aerr != nil {
				v.refresh()
				v.a.showError(aerr)
				return
			}
			v.cur, v.curPCM = &r, pcm
			v.refresh()
			v.reloadList()
			v.showPicture()
			if err != nil {
				v.a.showError(fmt.Errorf("the recording was saved up to the last second written, but: %w", err))
			}
			if dropped > 0 {
				v.status.SetText(fmt.Sprintf("The computer fell behind and %.1f s of audio were skipped.", float64(dropped)/float64(max(1, live.rec.channels))/recordRate))
			}
			v.tag(r, pcm)
		})
	}()
}

// tag tags recording r (samples pcm at recordRate) in the background and
// stores the result.
func (v *audioView) tag(r history.Recording, pcm []float32) {
	if v.model == nil || pcm == nil || v.tagging[r.ID] != nil {
		return
	}
	ctx, cancel := context.WithCancel(v.ctx)
	v.tagging[r.ID] = cancel
	model := v.model
	v.status.SetText("Tagging “" + r.Name + "”…")
	v.refresh()
	v.setBars(nil)
	go func() {
		v.engMu.Lock()
		res, err := v.engine().Tag(ctx, pcm, recordRate)
		v.engMu.Unlock()
		var t *history.Tagging
		dur := pcmDuration(pcm)
		if err == nil {
			t = tagging(res, model.Labels)
			err = v.a.store.SetRecordingTags(r.ID, filepath.Base(model.Path), dur, t)
		}
		v.a.do(func() {
			cancel()
			delete(v.tagging, r.ID)
			v.status.SetText("")
			if err != nil {
				if errors.Is(err, context.Canceled) {
					v.status.SetText("Tagging stopped.")
				} else {
					v.a.showProblem("Tagging “"+r.Name+"” failed", err)
				}
				v.refresh()
				return
			}
			if v.cur != nil && v.cur.ID == r.ID {
				v.cur.Tags, v.cur.Model, v.cur.Duration = t, filepath.Base(model.Path), dur
				v.showPicture()
			}
			v.refresh()
			v.reloadList()
		})
	}()
}

// importDialog lets the user choose an audio file to import.
func (v *audioView) importDialog() {
	v.a.openFile("Import a recording", fileFilter{"Audio (WAV, FLAC, MP3)", []string{".wav", ".flac", ".mp3"}}, v.importFile)
}

// importFile imports the audio file at path in the background.
func (v *audioView) importFile(path string) {
	if v.importing != nil || v.live != nil {
		return
	}
	ctx, cancel := context.WithCancel(v.ctx)
	v.importing = cancel
	v.status.SetText("Importing " + filepath.Base(path) + "…")
	v.refresh()
	go func() {
		out, pcm, format, err := importAudio(ctx, path, v.recordingsDir())
		v.a.do(func() {
			cancel()
			v.importing = nil
			v.status.SetText("")
			v.refresh()
			if errors.Is(err, context.Canceled) {
				v.status.SetText("Import stopped.")
				return
			}
			if err != nil {
				v.a.showProblem("Could not import "+filepath.Base(path), err)
				return
			}
			r, err := v.a.store.AddRecording(history.Recording{
				Name:     strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
				Path:     out,
				Duration: pcmDuration(pcm),
				Source:   "imported from " + filepath.Base(path) + " (" + format + ")",
			})
			if err != nil {
				os.Remove(out)
				v.a.showError(err)
				return
			}
			v.search.SetText("")
			v.open(r)
			v.tag(r, pcm)
		})
	}()
}

// togglePlay plays the current recording or stops it.
func (v *audioView) togglePlay() {
	if v.cur == nil || v.curPCM == nil {
		return
	}
	if v.player != nil && v.playing == v.cur.ID {
		v.stopPlayback()
		v.refresh()
		return
	}
	v.stopPlayback()
	sys, err := v.system()
	if err != nil {
		v.a.showProblem("Cannot play", err)
		return
	}
	id := v.cur.ID
	var out capture.Output
	out, err = sys.Play(v.curPCM, recordRate, func() {
		v.a.do(func() {
			if v.player == out {
				v.player, v.playing = nil, 0
				v.refresh()
			}
		})
	})
	if err != nil {
		v.a.showProblem("Cannot play", err)
		return
	}
	v.player, v.playing = out, id
	v.refresh()
	go v.followPlayback(out, v.cur.Duration)
}

// followPlayback moves the playhead over the picture while out plays.
// Background goroutine.
func (v *audioView) followPlayback(out capture.Output, dur time.Duration) {
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		playing := true
		v.a.do(func() {
			if v.player != out {
				playing = false
				v.playhead.Hide()
				return
			}
			v.movePlayhead(out.Position(), dur)
		})
		if !playing {
			return
		}
	}
}

// movePlayhead puts the playhead at time t of a recording of length dur,
// on the picture's time axis. UI goroutine only.
func (v *audioView) movePlayhead(t, dur time.Duration) {
	if dur <= 0 {
		return
	}
	size := v.pic.Size()
	left, right := float32(picLabelW), size.Width-picPadding
	x := left + (right-left)*float32(min(1, float64(t)/float64(dur)))
	v.playhead.Move(fyne.NewPos(x-1, 0))
	v.playhead.Resize(fyne.NewSize(2, size.Height))
	v.playhead.Show()
}

func (v *audioView) stopPlayback() {
	if v.player != nil {
		p := v.player
		v.player, v.playing = nil, 0
		go p.Stop()
	}
}

// attachToChat attaches the current recording's tags to the next chat
// message and switches to the chat.
func (v *audioView) attachToChat() {
	if v.cur == nil || v.cur.Tags == nil {
		return
	}
	v.a.chat.attachRecording(*v.cur)
	v.a.show("chat")
}

func (v *audioView) renameDialog() {
	if v.cur == nil {
		return
	}
	e := widget.NewEntry()
	e.SetText(v.cur.Name)
	id := v.cur.ID
	dialog.ShowForm("Rename recording", "Rename", "Cancel", []*widget.FormItem{widget.NewFormItem("Name", e)}, func(ok bool) {
		if ok {
			v.rename(id, e.Text)
		}
	}, v.a.win)
}

func (v *audioView) rename(id int64, name string) {
	name = strings.TrimSpace(name)
	if name == "" {
		return
	}
	if err := v.a.store.RenameRecording(id, name); err != nil {
		v.a.showError(err)
		return
	}
	if v.cur != nil && v.cur.ID == id {
		v.cur.Name = name
		v.refresh()
	}
	v.reloadList()
}

func (v *audioView) deleteDialog() {
	if v.cur == nil {
		return
	}
	r := *v.cur
	dialog.ShowConfirm("Delete recording", fmt.Sprintf("Delete “%s”, its tags and its audio file? This cannot be undone.", r.Name), func(ok bool) {
		if ok {
			v.remove(r)
		}
	}, v.a.win)
}

func (v *audioView) remove(r history.Recording) {
	if err := v.a.store.DeleteRecording(r.ID); err != nil {
		v.a.showError(err)
		return
	}
	if v.playing == r.ID {
		v.stopPlayback()
	}
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		v.a.showProblem("The recording was removed from the list, but its file could not be deleted", err)
	}
	if v.cur != nil && v.cur.ID == r.ID {
		v.cur, v.curPCM, v.spec = nil, nil, nil
		v.showPicture()
	}
	v.refresh()
	v.reloadList()
}

// exportDialog saves the current recording's tags as CSV or JSON.
func (v *audioView) exportDialog() {
	if v.cur == nil {
		return
	}
	r := *v.cur
	v.a.exportFile("Export tags", safeFileName(r.Name)+"-tags",
		[]exportChoice{{"CSV (one row per tag and window)", ".csv"}, {"JSON", ".json"}},
		"Could not export the tags", func(path, _ string) error { return exportTags(path, r) })
}

// exportTags writes r's tags to path, as JSON when it ends in .json and
// CSV otherwise, atomically (the file is whole or untouched).
func exportTags(path string, r history.Recording) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if strings.EqualFold(filepath.Ext(path), ".json") {
			return writeTagsJSON(w, r)
		}
		return writeTagsCSV(w, r)
	})
}

// closeSystem releases the sound system the view opened.
func (v *audioView) closeSystem() {
	if v.sys != nil && v.a.opts.Sound == nil {
		v.sys.Close()
	}
	v.sys = nil
}

// close stops recording, playback and background work (the app is
// closing). UI goroutine only.
func (v *audioView) close() {
	v.cancel()
	v.stopPlayback()
	live := v.live
	switch {
	case live == nil:
		v.closeSystem()
	case !live.stopping:
		// Finish the file and keep it in the history, untagged.
		live.stopping = true
		close(live.stopTag)
		if path, pcm, _ := live.rec.stop(); path != "" {
			v.a.store.AddRecording(live.rec.entry(path, pcm))
		}
		v.closeSystem()
	}
	// A recording that Stop is saving keeps its sound system. Tagging
	// stops within one batch once cancelled.
	v.engMu.Lock()
	v.engine().Unload()
	v.engMu.Unlock()
}
