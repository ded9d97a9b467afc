package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/ui/settings"
)

// download is the state of one catalog entry's download. UI goroutine only.
type download struct {
	model   catalog.Model
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
	prog    catalog.Progress
	err     error
	speed   float64 // bytes per second
}

// modelsView is the models screen: the loaded model, the catalog with
// downloads, and the files in the models folder.
type modelsView struct {
	a         *App
	downloads map[string]*download // by file name
	// bad holds the files that failed to load, with a short reason; they
	// are marked in the list until they load or are removed.
	bad       map[string]string
	importing bool
	body      *fyne.Container
	loadBar   *widget.ProgressBar
	root      fyne.CanvasObject
}

func newModelsView(a *App) *modelsView {
	v := &modelsView{a: a, downloads: map[string]*download{}, bad: map[string]string{}}
	v.rebuild()
	return v
}

// rebuild recreates the screen's widgets (after a theme change).
func (v *modelsView) rebuild() {
	v.body = container.NewVBox()
	v.loadBar = widget.NewProgressBar()
	v.root = container.NewVScroll(container.New(&columnLayout{maxWidth: 920},
		container.New(layout.NewCustomPaddedLayout(18, 18, 24, 24), v.body)))
}

// card draws content on a rounded panel.
func card(content ...fyne.CanvasObject) fyne.CanvasObject {
	bg := canvas.NewRectangle(themeColor(colorCard))
	bg.CornerRadius = 12
	bg.StrokeColor = themeColor(theme.ColorNameSeparator)
	bg.StrokeWidth = 1
	return container.NewStack(bg, container.New(layout.NewCustomPaddedLayout(10, 10, 14, 14), container.NewVBox(content...)))
}

func heading(text string) fyne.CanvasObject {
	l := widget.NewLabelWithStyle(text, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	l.SizeName = theme.SizeNameSubHeadingText
	return l
}

// caption is small secondary text in the theme's subtle color.
func caption(text string) *widget.RichText { return captionIn(text, colorSubtle) }

// captionIn is small text in a theme color.
func captionIn(text string, c fyne.ThemeColorName) *widget.RichText {
	rt := widget.NewRichText(&widget.TextSegment{Text: text, Style: widget.RichTextStyle{
		ColorName: c, SizeName: theme.SizeNameCaptionText}})
	rt.Wrapping = fyne.TextWrapWord
	return rt
}

// setLoadProgress updates the load bar. UI goroutine only.
func (v *modelsView) setLoadProgress(f float64) { v.loadBar.SetValue(f) }

// refresh rebuilds the screen from the app's state. UI goroutine only.
func (v *modelsView) refresh() {
	a := v.a
	var objs []fyne.CanvasObject
	title := widget.NewLabelWithStyle("Models", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameHeadingText
	importBtn := widget.NewButtonWithIcon("Import a model file…", theme.FolderOpenIcon(), v.importDialog)
	if v.importing {
		importBtn.Disable()
	}
	objs = append(objs, container.NewBorder(nil, nil, nil, importBtn, title),
		caption("Models folder: "+a.cfg.ModelsDir))

	// The loaded model and the device it runs on.
	objs = append(objs, heading("Loaded"))
	switch {
	case a.loading:
		objs = append(objs, card(widget.NewLabel("Loading "+a.loadName+"…"), v.loadBar))
	case a.model == nil:
		objs = append(objs, card(widget.NewLabel("No model loaded."), caption("Load one below, or download one from the catalog.")))
	default:
		m := a.model
		unload := widget.NewButtonWithIcon("Unload", theme.MediaStopIcon(), a.unloadModel)
		if a.chat.generating {
			unload.Disable()
		}
		rows := []fyne.CanvasObject{
			container.NewBorder(nil, nil, nil, unload, widget.NewLabelWithStyle(m.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})),
			widget.NewLabel("Running on " + deviceText(*m)),
			caption(m.Summary + "\n" + memoryText(*m)),
		}
		// Why the GPU is not used is in the status bar, always in view.
		objs = append(objs, card(rows...))
	}

	// Files on disk.
	locals, err := catalog.Scan(a.cfg.ModelsDir)
	if err != nil {
		objs = append(objs, caption(err.Error()))
	}
	if len(locals) > 0 {
		objs = append(objs, heading("On this computer"))
		var rows []fyne.CanvasObject
		for i, l := range locals {
			if i > 0 {
				rows = append(rows, widget.NewSeparator())
			}
			rows = append(rows, v.localRow(l))
		}
		objs = append(objs, card(rows...))
	}

	// The catalog.
	objs = append(objs, heading("Download"), caption("Official RWKV-7 World models by BlinkDL, fetched from Hugging Face. Downloads resume where they stopped."))
	for _, m := range a.opts.Catalog {
		objs = append(objs, v.catalogCard(m))
	}
	v.body.Objects = objs
	v.body.Refresh()
}

func backendName(b string) string {
	switch b {
	case "cuda":
		return "GPU (CUDA)"
	case "cpu":
		return "CPU"
	}
	return b
}

func (v *modelsView) localRow(l catalog.Local) fyne.CanvasObject {
	a := v.a
	name := filepath.Base(l.Path)
	label := widget.NewLabelWithStyle(name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	label.Truncation = fyne.TextTruncateEllipsis
	info := catalog.FormatBytes(l.Size)
	if l.Official != nil {
		info = l.Official.Name + " · " + info
	}
	text := []fyne.CanvasObject{label, caption(info)}
	loaded := a.model != nil && a.model.Path == l.Path
	busy := a.loading || a.chat.generating
	var buttons []fyne.CanvasObject
	if reason, bad := v.bad[l.Path]; bad {
		text = append(text, captionIn("Cannot be loaded: "+reason, theme.ColorNameError))
		b := widget.NewButtonWithIcon("Remove", theme.DeleteIcon(), func() { v.deleteDialog(l) })
		b.Importance = widget.DangerImportance
		buttons = append(buttons, b)
	} else {
		if loaded {
			b := widget.NewButtonWithIcon("Loaded", theme.ConfirmIcon(), nil)
			b.Disable()
			buttons = append(buttons, b)
		} else {
			b := widget.NewButtonWithIcon("Load", theme.MediaPlayIcon(), func() { a.loadModel(l.Path) })
			b.Importance = widget.HighImportance
			if busy {
				b.Disable()
			}
			buttons = append(buttons, b)
		}
		del := widget.NewButtonWithIcon("", theme.DeleteIcon(), func() { v.deleteDialog(l) })
		del.Importance = widget.LowImportance
		if loaded || busy {
			del.Disable() // unload it first
		}
		buttons = append(buttons, del)
	}
	return container.NewBorder(nil, nil, nil, topRight(buttons...), container.NewVBox(text...))
}

// topRight lines buttons up in a row at their natural height, at the top
// (a Border's side would stretch them to the row's height).
func topRight(buttons ...fyne.CanvasObject) fyne.CanvasObject {
	return container.NewVBox(container.NewHBox(buttons...))
}

// markBad records that the model file at path failed to load with err.
func (v *modelsView) markBad(path string, err error) {
	reason := advice(err)
	if i := strings.Index(reason, ":"); i > 0 {
		reason = reason[:i] // "The file is damaged or is not an RWKV-7 model"
	} else if reason == "" {
		// The innermost part of the error, without the paths before it.
		msg := err.Error()
		reason = sentenceCase(msg[strings.LastIndex(msg, ": ")+1:])
	}
	v.bad[path] = reason
}

// deleteDialog asks before deleting the model file of l from the models
// folder.
func (v *modelsView) deleteDialog(l catalog.Local) {
	a := v.a
	msg := fmt.Sprintf("Delete %s (%s) from the models folder? A file you imported stays where it was; a downloaded one must be downloaded again.",
		filepath.Base(l.Path), catalog.FormatBytes(l.Size))
	dialog.ShowConfirm("Delete model", msg, func(ok bool) {
		if ok {
			v.deleteModel(l.Path)
		}
	}, a.win)
}

// deleteModel removes the model file at path (never the loaded one).
func (v *modelsView) deleteModel(path string) {
	a := v.a
	if a.model != nil && a.model.Path == path {
		a.showError(errors.New("this model is loaded: unload it before deleting it"))
		return
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		a.showProblem("Could not delete "+filepath.Base(path), err)
		return
	}
	os.Remove(path + ".part")
	os.Remove(path + ".part.json")
	delete(v.bad, path)
	if a.cfg.LastModel == path {
		a.cfg.LastModel = ""
		if err := settings.Save(a.cfgPath, a.cfg); err != nil {
			a.showError(err)
		}
	}
	v.refresh()
}

func (v *modelsView) catalogCard(m catalog.Model) fyne.CanvasObject {
	a := v.a
	dest := filepath.Join(a.cfg.ModelsDir, m.File)
	name := widget.NewLabelWithStyle(m.Name, fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	facts := fmt.Sprintf("%s parameters · %s · %d layers × %d", catalog.FormatParams(m.Params), catalog.FormatBytes(m.Size), m.Layers, m.Embd)
	verify := caption(m.Verification())
	if !m.Verified() {
		verify = captionIn(m.Verification(), theme.ColorNameWarning)
	}
	rows := []fyne.CanvasObject{name, caption(m.Note + "\n" + facts), verify}

	d := v.downloads[m.File]
	_, statErr := os.Stat(dest)
	var buttons []fyne.CanvasObject
	switch {
	case statErr == nil && (d == nil || !d.running):
		loaded := a.model != nil && a.model.Path == dest
		b := widget.NewButtonWithIcon("Load", theme.MediaPlayIcon(), func() { a.loadModel(dest) })
		if loaded {
			b.SetText("Loaded")
			b.Disable()
		} else {
			b.Importance = widget.HighImportance
			if a.loading || a.chat.generating {
				b.Disable()
			}
		}
		rows = append(rows, caption("Downloaded to "+dest))
		buttons = append(buttons, b)
	case d != nil && d.running:
		bar := widget.NewProgressBar()
		if d.prog.Total > 0 {
			bar.SetValue(float64(d.prog.Done) / float64(d.prog.Total))
		}
		rows = append(rows, bar, caption(progressText(d)))
		pause := widget.NewButtonWithIcon("Pause", theme.MediaPauseIcon(), func() { v.pause(m.File) })
		buttons = append(buttons, pause)
	default:
		label, icon := "Download", theme.DownloadIcon()
		if part, err := os.Stat(dest + ".part"); err == nil && part.Size() > 0 {
			label, icon = "Resume", theme.MediaPlayIcon()
			bar := widget.NewProgressBar()
			bar.SetValue(float64(part.Size()) / float64(max(m.Size, part.Size())))
			rows = append(rows, bar, caption(fmt.Sprintf("Paused at %s of %s", catalog.FormatBytes(part.Size()), catalog.FormatBytes(m.Size))))
		}
		if d != nil && d.err != nil && !errors.Is(d.err, context.Canceled) {
			rows = append(rows, captionIn("Last attempt failed: "+shortReason(d.err), theme.ColorNameError))
			label = "Retry"
		}
		b := widget.NewButtonWithIcon(label, icon, func() { v.startDownload(m) })
		b.Importance = widget.HighImportance
		buttons = append(buttons, b)
	}
	return card(container.NewBorder(nil, nil, nil, topRight(buttons...), container.NewVBox(rows...)))
}

func progressText(d *download) string {
	s := d.prog.Phase.String()
	switch d.prog.Phase {
	case catalog.Connecting:
		s = "Connecting…"
	case catalog.Checking:
		s = "Checking the partial file…"
	}
	if d.prog.Phase == catalog.Downloading {
		s = catalog.FormatBytes(d.prog.Done)
		if d.prog.Total > 0 {
			s += " of " + catalog.FormatBytes(d.prog.Total)
		}
		if d.speed > 0 {
			s += fmt.Sprintf(" · %s/s", catalog.FormatBytes(int64(d.speed)))
			if d.prog.Total > 0 {
				left := time.Duration(float64(d.prog.Total-d.prog.Done) / d.speed * float64(time.Second))
				s += " · " + left.Round(time.Second).String() + " left"
			}
		}
		if d.prog.Attempt > 1 {
			s += fmt.Sprintf(" · attempt %d", d.prog.Attempt)
		}
	}
	return s
}

// startDownload downloads (or resumes) m into the models folder.
func (v *modelsView) startDownload(m catalog.Model) {
	a := v.a
	if d := v.downloads[m.File]; d != nil && d.running {
		return
	}
	if err := os.MkdirAll(a.cfg.ModelsDir, 0o755); err != nil {
		a.showError(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &download{model: m, running: true, cancel: cancel, done: make(chan struct{}), prog: catalog.Progress{Phase: catalog.Connecting}}
	v.downloads[m.File] = d
	v.refresh()
	req := catalog.Request{URL: m.URL, Dest: filepath.Join(a.cfg.ModelsDir, m.File), SHA256: m.SHA256}
	if m.SizeExact {
		req.Size = m.Size
	}
	var lastUI time.Time
	var lastBytes int64
	lastT := time.Now()
	speed := 0.0
	req.Progress = func(p catalog.Progress) {
		now := time.Now()
		if dt := now.Sub(lastT).Seconds(); dt >= 0.5 && p.Phase == catalog.Downloading {
			inst := float64(p.Done-lastBytes) / dt
			if speed == 0 || inst < 0 {
				speed = max(inst, 0)
			} else {
				speed = 0.7*speed + 0.3*inst
			}
			lastBytes, lastT = p.Done, now
		}
		if now.Sub(lastUI) < 100*time.Millisecond && p.Done != p.Total {
			return
		}
		lastUI = now
		sp := speed
		a.do(func() {
			d.prog, d.speed = p, sp
			if a.screen == "models" {
				v.refresh()
			}
		})
	}
	go func() {
		defer close(d.done)
		err := a.opts.Downloader.Download(ctx, req)
		if err == nil && m.SHA256 == "" {
			// No digest to check against: at least make sure the file is
			// a complete RWKV-7 checkpoint.
			if _, ierr := catalog.Inspect(req.Dest); ierr != nil {
				os.Remove(req.Dest)
				err = fmt.Errorf("the downloaded file is not a usable model and was deleted: %w", ierr)
			}
		}
		a.do(func() {
			d.running, d.err = false, err
			v.refresh()
			if err != nil && !errors.Is(err, context.Canceled) {
				a.showProblem("Could not download "+m.Name, err)
			}
			if err == nil && a.screen == "welcome" {
				a.loadModel(req.Dest)
			}
		})
	}()
}

// pause stops a download, keeping what was received for a resume.
func (v *modelsView) pause(file string) {
	if d := v.downloads[file]; d != nil && d.running {
		d.cancel()
	}
}

func (v *modelsView) pauseAll() {
	for _, d := range v.downloads {
		if d.running {
			d.cancel()
		}
	}
}

func (v *modelsView) importDialog() {
	v.a.openFile("Import a model file", fileFilter{"RWKV-7 checkpoints", []string{".pth", ".safetensors"}}, v.importFile)
}

// importFile validates the model file at path and links or copies it into
// the models folder (the user's file is never modified), then loads it.
func (v *modelsView) importFile(path string) {
	a := v.a
	if v.importing {
		return
	}
	v.importing = true
	v.refresh()
	dir := a.cfg.ModelsDir
	go func() {
		dest, _, err := catalog.Import(context.Background(), path, dir, nil)
		a.do(func() {
			v.importing = false
			v.refresh()
			if err != nil {
				a.showProblem("Could not import "+filepath.Base(path), err)
				return
			}
			a.loadModel(dest)
		})
	}()
}

// shortReason is the first sentence of what to do about err, or err.
func shortReason(err error) string {
	if s := advice(err); s != "" {
		return s
	}
	return err.Error()
}
