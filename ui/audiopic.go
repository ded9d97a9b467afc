package ui

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"slices"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/goose-rwkv/goose/ui/history"
)

// The Audio screen's picture: the log-mel spectrogram (a colour map, low
// frequencies at the bottom) over a time axis in seconds, and under it the
// tag timeline: one row per top tag, each window's probability as the
// strength of the accent colour. It is rendered into an image at the
// widget's pixel size on a background goroutine.

// frameDur is the spectrogram's frame shift.
const frameDur = 10 * time.Millisecond

// timelineRows is how many tags the timeline shows.
const timelineRows = 5

// palette holds the theme colours a picture is drawn with.
type palette struct {
	bg, fg, dim, grid, accent color.NRGBA
}

// currentPalette reads the theme's colours. UI goroutine only.
func currentPalette() palette {
	c := func(n fyne.ThemeColorName) color.NRGBA { return color.NRGBAModel.Convert(themeColor(n)).(color.NRGBA) }
	return palette{bg: c(theme.ColorNameInputBackground), fg: c(theme.ColorNameForeground), dim: c(theme.ColorNamePlaceHolder),
		grid: c(theme.ColorNameSeparator), accent: c(theme.ColorNamePrimary)}
}

// pictureInput is what a picture shows.
type pictureInput struct {
	spec [][]float32 // frames × mel bins, frameDur apart
	// span is the length of the time axis (at least the spectrogram's).
	span    time.Duration
	tagging *history.Tagging
	pal     palette
}

// Layout of the picture, in pixels at scale 1.
const (
	picLabelW  = 132 // left column for tag names and frequency labels
	picAxisH   = 18
	picRowH    = 20
	picPadding = 6
)

// renderPicture draws in at w×h pixels. It never touches the UI.
func renderPicture(in pictureInput, w, h int, scale float32) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(in.pal.bg), image.Point{}, draw.Src)
	s := func(v int) int { return int(float32(v)*scale + 0.5) }
	labelW, axisH, rowH, pad := s(picLabelW), s(picAxisH), s(picRowH), s(picPadding)
	rows := timelineRows
	timelineH := rows*rowH + pad
	specTop, specBottom := pad, h-axisH-timelineH
	plotL, plotR := labelW, w-pad
	if plotR-plotL < 20 || specBottom-specTop < 10 {
		return img
	}
	face := basicfont.Face7x13
	text := func(x, y int, str string, c color.NRGBA) {
		d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: face, Dot: fixed.P(x, y)}
		d.DrawString(str)
	}
	textW := func(str string) int { return font.MeasureString(face, str).Round() }

	span := in.span
	if d := time.Duration(len(in.spec)) * frameDur; d > span {
		span = d
	}
	if span <= 0 {
		span = 10 * time.Second
	}
	xOf := func(t time.Duration) int {
		return plotL + int(float64(plotR-plotL)*float64(t)/float64(span)+0.5)
	}

	// Spectrogram.
	fill(img, image.Rect(plotL, specTop, plotR, specBottom), in.pal.grid)
	if len(in.spec) > 0 && len(in.spec[0]) > 0 {
		drawSpectrogram(img, in.spec, image.Rect(plotL, specTop, xOf(time.Duration(len(in.spec))*frameDur), specBottom))
	}
	text(plotL-textW("16 kHz")-pad, specTop+10, "16 kHz", in.pal.dim)
	text(plotL-textW("0 Hz")-pad, specBottom, "0 Hz", in.pal.dim)
	text(pad, (specTop+specBottom)/2+4, "log-mel", in.pal.dim)

	// Time axis.
	step := tickStep(span, plotR-plotL)
	for t := time.Duration(0); t <= span; t += step {
		x := xOf(t)
		fill(img, image.Rect(x, specBottom, x+1, specBottom+s(4)), in.pal.fg)
		label := formatTick(t, step)
		lx := max(plotL, min(x-textW(label)/2, plotR-textW(label)))
		text(lx, specBottom+axisH-s(4), label, in.pal.fg)
	}

	// Timeline.
	top := specBottom + axisH + pad
	var classes []history.Tag
	if in.tagging != nil {
		classes = in.tagging.Top[:min(rows, len(in.tagging.Top))]
	}
	for r := 0; r < rows; r++ {
		y0 := top + r*rowH
		y1 := y0 + rowH - max(1, s(2))
		fill(img, image.Rect(plotL, y0, plotR, y1), in.pal.grid)
		if r >= len(classes) {
			continue
		}
		c := classes[r]
		label := c.Label
		for rs := []rune(label); len(rs) > 1 && textW(label) > labelW-2*pad; {
			rs = rs[:len(rs)-1]
			label = string(rs) + "..."
		}
		text(pad, y0+rowH/2+4, label, in.pal.fg)
		for x := plotL; x < plotR; x++ {
			t := time.Duration((float64(x-plotL) + 0.5) / float64(plotR-plotL) * float64(span))
			p := probAt(in.tagging.Windows, c.Index, t)
			if p <= 0 {
				continue
			}
			fill(img, image.Rect(x, y0, x+1, y1), mix(in.pal.grid, in.pal.accent, math.Sqrt(float64(p))))
		}
	}
	if in.tagging == nil || len(classes) == 0 {
		msg := "No tags yet"
		text(plotL+pad, top+rowH/2+4, msg, in.pal.dim)
	}
	return img
}

// probAt is class's highest probability among the windows covering t.
func probAt(ws []history.WindowTag, class int, t time.Duration) float32 {
	ms := t.Milliseconds()
	var p float32
	for _, w := range ws {
		if ms < w.StartMS || ms >= w.EndMS {
			continue
		}
		for _, tag := range w.Tags {
			if tag.Index == class && tag.Prob > p {
				p = tag.Prob
			}
		}
	}
	return p
}

// drawSpectrogram draws frames × bins into r, averaging the frames that
// fall into one column, with the colour scale running from the 2nd
// percentile of the values to the largest.
func drawSpectrogram(img *image.RGBA, spec [][]float32, r image.Rectangle) {
	if r.Dx() <= 0 || r.Dy() <= 0 {
		return
	}
	bins := len(spec[0])
	// Colour scale from a sample of the values.
	var sample []float32
	stride := max(1, len(spec)*bins/20000)
	for i := 0; i < len(spec)*bins; i += stride {
		f := spec[i/bins]
		if len(f) == bins {
			sample = append(sample, f[i%bins])
		}
	}
	slices.Sort(sample)
	lo, hi := sample[len(sample)*2/100], sample[len(sample)-1]
	if hi-lo < 1e-6 {
		hi = lo + 1
	}
	col := make([]float32, bins)
	for x := r.Min.X; x < r.Max.X; x++ {
		f0 := (x - r.Min.X) * len(spec) / r.Dx()
		f1 := max(f0+1, (x+1-r.Min.X)*len(spec)/r.Dx())
		clear(col)
		n := 0
		for f := f0; f < f1 && f < len(spec); f++ {
			if len(spec[f]) != bins {
				continue
			}
			for b, v := range spec[f] {
				col[b] += v
			}
			n++
		}
		if n == 0 {
			continue
		}
		for y := r.Min.Y; y < r.Max.Y; y++ {
			// Low bins at the bottom; average the bins in this row.
			b0 := (r.Max.Y - 1 - y) * bins / r.Dy()
			b1 := max(b0+1, (r.Max.Y-y)*bins/r.Dy())
			var v float32
			for b := b0; b < b1 && b < bins; b++ {
				v += col[b]
			}
			v /= float32(n * (b1 - b0))
			img.SetRGBA(x, y, colormap((v-lo)/(hi-lo)))
		}
	}
}

// viridis anchor colours, evenly spaced from 0 to 1.
var viridis = [...][3]uint8{
	{68, 1, 84}, {72, 40, 120}, {62, 73, 137}, {49, 104, 142}, {38, 130, 142},
	{31, 158, 137}, {53, 183, 121}, {109, 205, 89}, {180, 222, 44}, {253, 231, 37},
}

// colormap maps v in [0, 1] (clamped) to the viridis colour map, which
// reads in light and dark themes and in greyscale.
func colormap(v float32) color.RGBA {
	v = max(0, min(1, v))
	pos := v * float32(len(viridis)-1)
	i := min(int(pos), len(viridis)-2)
	f := pos - float32(i)
	a, b := viridis[i], viridis[i+1]
	lerp := func(x, y uint8) uint8 { return uint8(float32(x) + (float32(y)-float32(x))*f + 0.5) }
	return color.RGBA{lerp(a[0], b[0]), lerp(a[1], b[1]), lerp(a[2], b[2]), 255}
}

func mix(a, b color.NRGBA, f float64) color.NRGBA {
	f = max(0, min(1, f))
	l := func(x, y uint8) uint8 { return uint8(float64(x) + (float64(y)-float64(x))*f + 0.5) }
	return color.NRGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 255}
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, image.NewUniform(c), image.Point{}, draw.Over)
}

// tickStep picks a time-axis step giving ticks at least 60 pixels apart.
func tickStep(span time.Duration, width int) time.Duration {
	for _, s := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second,
		30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour} {
		if float64(width)*float64(s)/float64(span) >= 60 {
			return s
		}
	}
	return 2 * time.Hour
}

// formatTick labels a tick: "5 s" under a minute's steps, "1:30" after.
func formatTick(t, step time.Duration) string {
	if step < time.Minute && t < time.Minute {
		return fmt.Sprintf("%d s", int(t/time.Second))
	}
	return formatDuration(t)
}

// formatDuration writes d as m:ss (h:mm:ss from an hour).
func formatDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

// audioPicture shows a rendered picture and re-renders it, off the UI
// goroutine, when its size or content changes.
type audioPicture struct {
	widget.BaseWidget
	img *canvas.Image

	// UI-goroutine state.
	in    pictureInput
	size  fyne.Size
	gen   int
	shown int // gen of the picture shown
	do    func(func())

	mu      sync.Mutex
	pending bool // a render is running; another one is wanted after it
	busy    bool
}

// newAudioPicture returns an empty picture; do runs a function on the UI
// goroutine (App.do).
func newAudioPicture(do func(func())) *audioPicture {
	p := &audioPicture{do: do, img: canvas.NewImageFromImage(image.NewRGBA(image.Rect(0, 0, 1, 1)))}
	p.img.FillMode = canvas.ImageFillStretch
	p.img.ScaleMode = canvas.ImageScaleFastest
	p.ExtendBaseWidget(p)
	return p
}

func (p *audioPicture) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(p.img)
}

// MinSize leaves room for a readable spectrogram and the timeline.
func (p *audioPicture) MinSize() fyne.Size {
	return fyne.NewSize(420, float32(picPadding*3+picAxisH+timelineRows*picRowH+140))
}

// Resize re-renders at the new size.
func (p *audioPicture) Resize(s fyne.Size) {
	p.BaseWidget.Resize(s)
	if s != p.size {
		p.size = s
		p.render()
	}
}

// set shows in. UI goroutine only.
func (p *audioPicture) set(in pictureInput) {
	in.pal = currentPalette()
	p.in = in
	p.render()
}

// render starts a background render of the current content; renders are
// coalesced so a burst of updates while recording draws at most one
// picture at a time. UI goroutine only.
func (p *audioPicture) render() {
	if p.size.Width < 1 || p.size.Height < 1 {
		return
	}
	p.gen++
	p.mu.Lock()
	if p.busy {
		p.pending = true
		p.mu.Unlock()
		return
	}
	p.busy = true
	p.mu.Unlock()
	p.start()
}

// start renders the current content in the background. UI goroutine only.
func (p *audioPicture) start() {
	scale := float32(1)
	if c := fyne.CurrentApp().Driver().CanvasForObject(p); c != nil {
		scale = c.Scale()
	}
	in, size, gen := p.in, p.size, p.gen
	w, h := int(size.Width*scale+0.5), int(size.Height*scale+0.5)
	go func() {
		img := renderPicture(in, w, h, scale)
		p.do(func() {
			p.img.Image = img
			p.shown = gen
			p.img.Refresh()
			p.mu.Lock()
			again := p.pending
			p.pending = false
			p.busy = again
			p.mu.Unlock()
			if again {
				p.start()
			}
		})
	}()
}

// levelMeter shows the input's peak level: a bar on a track, amber above
// -6 dBFS and red at clipping.
type levelMeter struct {
	widget.BaseWidget
	level float64 // 0..1, linear peak
}

func newLevelMeter() *levelMeter {
	m := &levelMeter{}
	m.ExtendBaseWidget(m)
	return m
}

// SetValue sets the peak level (0..1). UI goroutine only.
func (m *levelMeter) SetValue(v float64) {
	m.level = max(0, min(1, v))
	m.Refresh()
}

func (m *levelMeter) CreateRenderer() fyne.WidgetRenderer {
	r := &levelRenderer{m: m, track: canvas.NewRectangle(themeColor(theme.ColorNameInputBackground)), bar: canvas.NewRectangle(themeColor(theme.ColorNameSuccess))}
	r.track.CornerRadius = 4
	r.bar.CornerRadius = 4
	return r
}

type levelRenderer struct {
	m          *levelMeter
	track, bar *canvas.Rectangle
}

func (r *levelRenderer) Layout(s fyne.Size) {
	h := float32(10)
	y := (s.Height - h) / 2
	r.track.Move(fyne.NewPos(0, y))
	r.track.Resize(fyne.NewSize(s.Width, h))
	// A dB scale from -60 dBFS: quiet sounds still move the bar.
	f := float32(0)
	if r.m.level > 0 {
		f = float32(max(0, min(1, 1+20*math.Log10(r.m.level)/60)))
	}
	r.bar.Move(fyne.NewPos(0, y))
	r.bar.Resize(fyne.NewSize(s.Width*f, h))
}

func (r *levelRenderer) MinSize() fyne.Size { return fyne.NewSize(80, 16) }

func (r *levelRenderer) Refresh() {
	r.track.FillColor = themeColor(theme.ColorNameInputBackground)
	switch {
	case r.m.level >= 0.99:
		r.bar.FillColor = themeColor(theme.ColorNameError)
	case r.m.level >= 0.5:
		r.bar.FillColor = themeColor(theme.ColorNameWarning)
	default:
		r.bar.FillColor = themeColor(theme.ColorNameSuccess)
	}
	r.Layout(r.m.Size())
	r.track.Refresh()
	r.bar.Refresh()
}

func (r *levelRenderer) Objects() []fyne.CanvasObject { return []fyne.CanvasObject{r.track, r.bar} }
func (r *levelRenderer) Destroy()                     {}
