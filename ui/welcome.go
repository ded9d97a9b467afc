package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core/catalog"
)

// newWelcome is the first-run screen: no model yet, so it leads to a
// download or an import.
func newWelcome(a *App) fyne.CanvasObject {
	title := canvas.NewText("Welcome to Goose", themeColor(theme.ColorNameForeground))
	title.TextSize = 30
	title.TextStyle = fyne.TextStyle{Bold: true}
	title.Alignment = fyne.TextAlignCenter
	sub := widget.NewLabel("Chat with RWKV-7 language models, entirely on this computer.\nTo start, get a model: download one, or import a file you already have.")
	sub.Alignment = fyne.TextAlignCenter
	sub.Wrapping = fyne.TextWrapWord

	var rec catalog.Model
	for _, m := range a.opts.Catalog {
		if rec.File == "" || m.Params > rec.Params && m.Params < 1e9 {
			rec = m
		}
	}
	var dl fyne.CanvasObject = layout.NewSpacer()
	if rec.File != "" {
		b := widget.NewButtonWithIcon("Download "+rec.Name+" ("+catalog.FormatBytes(rec.Size)+")", theme.DownloadIcon(), func() {
			a.models.startDownload(rec)
			a.show("models")
		})
		b.Importance = widget.HighImportance
		dl = container.NewVBox(heading("Download a model"),
			caption("Recommended to start: "+rec.Note+" Downloads can be paused and resume where they stopped."),
			b, widget.NewButton("See all models", func() { a.show("models") }))
	}
	imp := widget.NewButtonWithIcon("Import a model file…", theme.FolderOpenIcon(), a.models.importDialog)
	imp.Importance = widget.HighImportance
	importCard := card(heading("Use a file you have"),
		caption("An RWKV-7 .pth or .safetensors file. Goose checks it and never changes it."), imp)
	cards := container.NewGridWithColumns(2, card(dl), importCard)
	content := container.NewVBox(layout.NewSpacer(), title, sub, widget.NewLabel(""), cards, layout.NewSpacer())
	return container.New(&columnLayout{maxWidth: 780}, container.New(layout.NewCustomPaddedLayout(24, 24, 24, 24), content))
}
