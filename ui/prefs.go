package ui

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/ui/settings"
)

// settingsView is the settings screen.
type settingsView struct {
	a       *App
	dir     *widget.Entry
	backend *widget.Select
	quant   *widget.Select
	threads *widget.Entry
	theme   *widget.RadioGroup
	hist    *historyPanel
	root    fyne.CanvasObject
}

func newSettingsView(a *App) *settingsView {
	v := &settingsView{a: a}
	v.dir = widget.NewEntry()
	browse := widget.NewButtonWithIcon("", theme.FolderOpenIcon(), func() {
		dialog.ShowFolderOpen(func(u fyne.ListableURI, err error) {
			if err == nil && u != nil {
				v.dir.SetText(u.Path())
			}
		}, a.win)
	})
	v.backend = widget.NewSelect(settings.Backends(), nil)
	v.quant = widget.NewSelect(settings.Quants(), nil)
	v.threads = widget.NewEntry()
	v.threads.SetPlaceHolder("automatic")
	v.theme = widget.NewRadioGroup(settings.Themes(), nil)
	v.theme.Horizontal = true
	form := widget.NewForm(
		&widget.FormItem{Text: "Models folder", Widget: container.NewBorder(nil, nil, nil, browse, v.dir),
			HintText: "Downloaded and imported models are kept here."},
		&widget.FormItem{Text: "Backend", Widget: v.backend,
			HintText: "auto uses the GPU when CUDA works and says why when it does not."},
		&widget.FormItem{Text: "Weights", Widget: v.quant,
			HintText: "int8 keeps the large matrices in 8 bits: about half the memory of bf16 and faster decoding, slightly less exact."},
		&widget.FormItem{Text: "CPU threads", Widget: v.threads,
			HintText: fmt.Sprintf("Empty or 0 uses all %d cores.", runtime.NumCPU())},
		&widget.FormItem{Text: "Theme", Widget: v.theme},
	)
	save := widget.NewButtonWithIcon("Save", theme.DocumentSaveIcon(), v.save)
	save.Importance = widget.HighImportance
	title := widget.NewLabelWithStyle("Settings", fyne.TextAlignLeading, fyne.TextStyle{Bold: true})
	title.SizeName = theme.SizeNameHeadingText
	v.hist = newHistoryPanel(a)
	hist := v.hist.root
	note := caption("Backend, weights and thread changes apply the next time a model is loaded.")
	v.root = container.NewVScroll(container.New(&columnLayout{maxWidth: 760},
		container.New(layout.NewCustomPaddedLayout(18, 18, 24, 24),
			container.NewVBox(title, card(form), note, container.NewHBox(layout.NewSpacer(), save), hist))))
	v.reset()
	return v
}

// reset shows the saved settings.
func (v *settingsView) reset() {
	c := v.a.cfg
	v.dir.SetText(c.ModelsDir)
	v.backend.SetSelected(c.Backend)
	v.quant.SetSelected(c.Quant)
	if c.Quant == "" {
		v.quant.SetSelected("none")
	}
	if c.Threads > 0 {
		v.threads.SetText(strconv.Itoa(c.Threads))
	} else {
		v.threads.SetText("")
	}
	v.theme.SetSelected(c.Theme)
	v.hist.refresh()
}

// save validates and stores the form, applying the theme at once.
func (v *settingsView) save() {
	a := v.a
	c := a.cfg
	c.ModelsDir = strings.TrimSpace(v.dir.Text)
	c.Backend = v.backend.Selected
	c.Quant = v.quant.Selected
	c.Theme = v.theme.Selected
	c.Threads = 0
	if t := strings.TrimSpace(v.threads.Text); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			a.showError(fmt.Errorf("CPU threads: %q is not a whole number", t))
			return
		}
		c.Threads = n
	}
	if err := settings.Save(a.cfgPath, c); err != nil {
		a.showError(err)
		return
	}
	themeChanged := c.Theme != a.cfg.Theme
	a.cfg = c
	if themeChanged {
		a.applyTheme()
	}
	a.status.refresh()
}
