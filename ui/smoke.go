package ui

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/driver/software"

	"github.com/goose-rwkv/goose/assets"
	"github.com/goose-rwkv/goose/ui/history"
)

// SmokeTest opens the real window, loads the model at modelPath, sends one
// message, waits for the reply, saves a PNG screenshot of the window to
// screenshotPath and closes. Settings and history go to a temporary folder
// unless opts names them, so the user's own are not touched.
//
// Each of screens ("models", "settings", "import": the file chooser,
// "shortcuts": Up editing the last message) is then shown and saved
// beside the screenshot, as OUT-NAME.png.
func SmokeTest(opts Options, modelPath, screenshotPath string, screens ...string) error {
	tmp, err := os.MkdirTemp("", "goose-smoke-")
	if err != nil {
		return fmt.Errorf("smoke test: %w", err)
	}
	defer os.RemoveAll(tmp)
	if opts.SettingsPath == "" {
		opts.SettingsPath = filepath.Join(tmp, "settings.json")
	}
	if opts.HistoryPath == "" {
		opts.HistoryPath = filepath.Join(tmp, "history.db")
	}
	log.SetOutput(&quietLog{w: os.Stderr}) // as Run does
	fa := app.NewWithID("io.github.goose-rwkv.goose.smoketest")
	fa.SetIcon(fyne.NewStaticResource("goose.svg", assets.Icon()))
	a, err := newApp(fa, opts)
	if err != nil {
		return fmt.Errorf("smoke test: %w", err)
	}
	a.win.Resize(fyne.NewSize(1100, 720))
	a.win.Show()
	errc := make(chan error, 1)
	go func() {
		errc <- a.smoke(modelPath, screenshotPath, screens, 10*time.Minute)
		fyne.Do(fa.Quit)
	}()
	fa.Run()
	a.close()
	return <-errc
}

// smoke drives the app from a background goroutine.
func (a *App) smoke(modelPath, screenshotPath string, screens []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	onUI := func(f func()) {
		fyne.DoAndWait(func() {
			a.uiMu.Lock()
			defer a.uiMu.Unlock()
			f()
		})
	}
	waitFor := func(what string, cond func() bool) error {
		for {
			var ok bool
			onUI(func() { ok = cond() })
			if ok {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("smoke test: timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	var loadErr error
	onUI(func() {
		a.onError = func(err error) { loadErr = err }
		a.loadModel(modelPath)
	})
	if err := waitFor("the model to load", func() bool { return !a.loading }); err != nil {
		return err
	}
	var loaded bool
	onUI(func() { loaded = a.model != nil; a.show("chat") })
	if !loaded {
		return fmt.Errorf("smoke test: model did not load: %w", loadErr)
	}
	// A VisualRWKV-7 model gets a picture with its message.
	question := "Hello! What is a goose?"
	var visual bool
	onUI(func() { visual = a.model.Vision })
	if visual {
		question = "What is in the image?"
		onUI(func() {
			if err := a.chat.attachData("pond.png", smokePicture()); err != nil {
				loadErr = err
			}
		})
		if err := waitFor("the picture to be attached", func() bool { return a.chat.attach.inflight == 0 }); err != nil {
			return err
		}
	}
	var done chan struct{}
	onUI(func() {
		// A short reply keeps the test quick on any model.
		smp := history.DefaultSampling()
		smp.MaxTokens = 64
		conv, err := a.store.CreateConversation("Smoke test", "", smp)
		if err != nil {
			loadErr = err
			return
		}
		a.chat.open(conv.ID)
		a.chat.input.SetText(question)
		a.chat.submit(a.chat.input.Text)
		done = a.chat.genDone
	})
	if done == nil {
		return fmt.Errorf("smoke test: the message was not sent: %v", loadErr)
	}
	select {
	case <-done:
	case <-time.After(time.Until(deadline)):
		return errors.New("smoke test: timed out waiting for the reply")
	}
	if err := waitFor("the reply to be shown", func() bool { return !a.chat.generating }); err != nil {
		return err
	}
	var reply history.Message
	onUI(func() {
		if n := len(a.chat.thread); n > 0 {
			reply = a.chat.thread[n-1]
		}
	})
	if reply.Role != history.RoleAssistant || reply.Status != history.StatusDone {
		return fmt.Errorf("smoke test: no finished reply (last message %+v): %v", reply, loadErr)
	}
	time.Sleep(500 * time.Millisecond) // let the window paint the reply
	var shot error
	onUI(func() { shot = a.capture(screenshotPath) })
	if shot != nil {
		return fmt.Errorf("smoke test: screenshot: %w", shot)
	}
	ext := filepath.Ext(screenshotPath)
	for _, name := range screens {
		onUI(func() {
			switch name {
			case "models", "settings", "chat":
				a.show(name)
			case "import":
				a.show("models")
				a.models.importDialog()
			case "shortcuts":
				a.show("chat")
				a.chat.input.SetText("")
				a.chat.input.TypedKey(&fyne.KeyEvent{Name: fyne.KeyUp})
			default:
				shot = fmt.Errorf("unknown screen %q (want models, settings, import or shortcuts)", name)
			}
		})
		if shot != nil {
			return fmt.Errorf("smoke test: %w", shot)
		}
		time.Sleep(500 * time.Millisecond)
		onUI(func() {
			shot = a.capture(strings.TrimSuffix(screenshotPath, ext) + "-" + name + ext)
			for _, o := range a.win.Canvas().Overlays().List() {
				a.win.Canvas().Overlays().Remove(o)
			}
		})
		if shot != nil {
			return fmt.Errorf("smoke test: screenshot of %s: %w", name, shot)
		}
	}
	if a.opts.SmokeAudio != nil {
		return a.smokeAudio(*a.opts.SmokeAudio, onUI, waitFor)
	}
	return nil
}

// capture saves the window as a PNG at path. UI goroutine only.
func (a *App) capture(path string) error {
	img := a.win.Canvas().Capture()
	if blank(img) {
		// Some GL stacks (Xvfb with software Mesa) do not let the front
		// buffer be read back. Paint the same widget tree, overlays
		// included, with Fyne's software painter instead.
		size := a.win.Canvas().Size()
		content := a.win.Content()
		overlays := a.win.Canvas().Overlays().List()
		sc := software.NewCanvas()
		sc.SetPadded(false)
		sc.SetContent(content)
		for _, o := range overlays {
			sc.Overlays().Add(o)
		}
		// Lay out twice: wrapped text knows its height only once it has
		// its width, and its container must see that height.
		sc.Resize(size.Subtract(fyne.NewSize(1, 1)))
		sc.Resize(size)
		img = sc.Capture()
		sc.SetContent(canvas.NewRectangle(color.Transparent))
		for _, o := range overlays {
			sc.Overlays().Remove(o)
		}
		a.win.SetContent(content)
		for _, o := range overlays {
			a.win.Canvas().Overlays().Add(o)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// blank reports whether img is a single color (an unreadable capture).
func blank(img image.Image) bool {
	b := img.Bounds()
	if b.Empty() {
		return true
	}
	first := img.At(b.Min.X, b.Min.Y)
	r0, g0, b0, a0 := first.RGBA()
	for y := b.Min.Y; y < b.Max.Y; y += 5 {
		for x := b.Min.X; x < b.Max.X; x += 5 {
			r, g, bl, al := img.At(x, y).RGBA()
			if r != r0 || g != g0 || bl != b0 || al != a0 {
				return false
			}
		}
	}
	return true
}

// smokePicture draws a small PNG for the smoke test: a goose-white oval on
// a pond under a sky.
func smokePicture() []byte {
	const w, h = 320, 240
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{R: 120, G: uint8(170 + y/6), B: 235, A: 255} // sky
			if y > h/2 {
				c = color.NRGBA{R: 40, G: uint8(90 + y/8), B: 150, A: 255} // water
			}
			dx, dy := float64(x-160)/70, float64(y-130)/32
			if dx*dx+dy*dy < 1 {
				c = color.NRGBA{R: 245, G: 245, B: 240, A: 255} // body
			}
			hx, hy := float64(x-215)/14, float64(y-88)/14
			if hx*hx+hy*hy < 1 || (x > 205 && x < 218 && y > 95 && y < 120) {
				c = color.NRGBA{R: 245, G: 245, B: 240, A: 255} // head and neck
			}
			if x >= 228 && x < 244 && y >= 84 && y < 92 {
				c = color.NRGBA{R: 240, G: 150, B: 30, A: 255} // beak
			}
			img.SetNRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err) // an in-memory NRGBA always encodes
	}
	return buf.Bytes()
}
