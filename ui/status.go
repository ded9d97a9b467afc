package ui

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/core/catalog"
)

// statusBar is the strip at the bottom of the window that always shows the
// model, the backend and device in use, memory, and why the GPU is not
// used when it is not.
type statusBar struct {
	a        *App
	model    *widget.Label
	device   *widget.Label
	memory   *widget.Label
	fallback *widget.Label
	progress *widget.ProgressBar
	root     fyne.CanvasObject
}

func newStatusBar(a *App) *statusBar {
	s := &statusBar{a: a}
	small := func() *widget.Label {
		l := widget.NewLabel("")
		l.SizeName = theme.SizeNameCaptionText
		l.Truncation = fyne.TextTruncateEllipsis
		return l
	}
	s.model, s.device, s.memory, s.fallback = small(), small(), small(), small()
	s.model.TextStyle = fyne.TextStyle{Bold: true}
	s.fallback.Importance = widget.WarningImportance
	s.progress = widget.NewProgressBar()
	s.progress.Hide()
	bg := canvas.NewRectangle(themeColor(colorSidebar))
	row := container.New(&fracLayout{fracs: []float32{0.2, 0.24, 0.25, 0.31}}, s.model, s.device, s.memory, s.fallback)
	s.root = container.NewStack(bg, container.NewVBox(widget.NewSeparator(),
		container.New(layout.NewCustomPaddedLayout(0, 0, 8, 8), container.NewBorder(nil, nil, nil, container.NewGridWrap(fyne.NewSize(180, 20), s.progress), row))))
	return s
}

// refresh shows the app's current model state. UI goroutine only.
func (s *statusBar) refresh() {
	a := s.a
	switch {
	case a.loading:
		s.model.SetText("Loading " + a.loadName + "…")
		s.progress.SetValue(a.loadFrac)
		s.progress.Show()
	case a.model == nil:
		s.model.SetText("No model loaded")
		s.progress.Hide()
	default:
		s.model.SetText(a.model.Name)
		s.progress.Hide()
	}
	if a.model == nil {
		s.device.SetText("Backend: " + a.cfg.Backend)
		s.memory.SetText("")
		s.fallback.SetText("")
		return
	}
	m := a.model
	s.device.SetText(deviceText(*m))
	s.memory.SetText(memoryText(*m))
	if m.Fallback != "" {
		s.fallback.SetText("GPU not used: " + m.Fallback)
	} else {
		s.fallback.SetText("")
	}
}

// deviceText names the device a model runs on, once: "CPU (2 threads,
// amd64)", "GPU (CUDA): NVIDIA H100".
func deviceText(m ModelInfo) string {
	switch {
	case m.Backend == "cuda":
		return "GPU (CUDA): " + m.Device
	case strings.Contains(strings.ToUpper(m.Device), strings.ToUpper(m.Backend)):
		return m.Device
	case m.Device == "":
		return backendName(m.Backend)
	}
	return backendName(m.Backend) + ": " + m.Device
}

// memoryText renders the memory a model takes.
func memoryText(m ModelInfo) string {
	s := "Model " + catalog.FormatBytes(m.WeightBytes)
	if m.Quant != "" {
		s += fmt.Sprintf(" (%s, %s saved)", m.Quant, catalog.FormatBytes(m.SavedBytes))
	}
	if m.DeviceTotal > 0 {
		s += fmt.Sprintf(" · GPU %s / %s used", catalog.FormatBytes(m.DeviceTotal-m.DeviceFree), catalog.FormatBytes(m.DeviceTotal))
	} else if m.StateBytes > 0 {
		s += " · state " + catalog.FormatBytes(m.StateBytes)
	}
	return s
}

func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func isOutOfMemory(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "out of memory") || strings.Contains(s, "cuda_error_out_of_memory")
}

// fracLayout places its objects side by side, each taking a fixed share of
// the width (so changing text never shifts the others).
type fracLayout struct{ fracs []float32 }

func (l *fracLayout) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	x := float32(0)
	for i, o := range objs {
		w := size.Width * l.fracs[i]
		o.Move(fyne.NewPos(x, 0))
		o.Resize(fyne.NewSize(w, size.Height))
		x += w
	}
}

func (l *fracLayout) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var h float32
	for _, o := range objs {
		h = max(h, o.MinSize().Height)
	}
	return fyne.NewSize(0, h)
}
