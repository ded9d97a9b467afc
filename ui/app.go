// Package ui is Goose's desktop app, built with Fyne: chat with streaming
// replies and durable branching history, a models screen that downloads,
// imports and loads RWKV-7 models, and settings.
//
// Inference never runs on the UI goroutine: engine calls run on background
// goroutines (one at a time) and every UI update they cause goes through
// fyne.Do.
package ui

import (
	"context"
	"errors"
	"log"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/goose-rwkv/goose/assets"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/catalog"
	"github.com/goose-rwkv/goose/ui/capture"
	"github.com/goose-rwkv/goose/ui/history"
	_ "github.com/goose-rwkv/goose/ui/internal/posixlocale" // C.UTF-8 reads as English, silently
	"github.com/goose-rwkv/goose/ui/settings"
)

// Options configure the app. The zero value uses the user's real
// directories, the Goose engine and the official catalog.
type Options struct {
	// SettingsPath is the settings file; "" means settings.DefaultPath().
	SettingsPath string
	// HistoryPath is the history database; "" means history.DefaultPath().
	HistoryPath string
	// Engine runs models; nil means NewCoreEngine().
	Engine Engine
	// Downloader fetches catalog models; nil means a default one.
	Downloader *catalog.Downloader
	// Catalog lists downloadable models; nil means catalog.Official().
	Catalog []catalog.Model
	// Audio tags audio on the Audio screen; nil means NewCoreAudioEngine().
	Audio AudioEngine
	// Sound records and plays audio; nil means the computer's sound
	// devices (capture.Open).
	Sound capture.System
	// SmokeAudio, for SmokeTest only, also drives the Audio screen.
	SmokeAudio *SmokeAudio
	// Clipboard reads pictures copied as images; nil means the desktop's
	// clipboard tools (wl-paste, xclip).
	Clipboard ClipboardImages
}

// App is the running desktop app.
type App struct {
	fa   fyne.App
	win  fyne.Window
	opts Options

	store    *history.Store
	eng      Engine
	audioEng AudioEngine
	cfg      settings.Settings
	cfgPath  string
	settErr  error
	histErr  error      // how the history was recovered at start, if it was
	engineMu sync.Mutex // serializes engine calls (held by background goroutines only)
	uiMu     sync.Mutex // held while UI callbacks from background goroutines run

	// UI-goroutine state.
	model     *ModelInfo // loaded model, nil when none
	loading   bool
	loadFrac  float64
	loadName  string
	screen    string
	chat      *chatView
	models    *modelsView
	prefs     *settingsView
	audio     *audioView
	body      *fyne.Container
	nav       map[string]*widget.Button
	status    *statusBar
	closeOnce sync.Once
	// onError, when set, sees every error shown (tests, smoke test).
	onError func(error)
	// portal reaches the desktop's own file chooser; nil uses Fyne's.
	portal *xdgPortal
}

// newApp builds the app's window on fa. The caller shows it.
func newApp(fa fyne.App, opts Options) (*App, error) {
	a := &App{fa: fa, opts: opts, eng: opts.Engine, audioEng: opts.Audio}
	if a.eng == nil {
		a.eng = NewCoreEngine()
	}
	if a.audioEng == nil {
		a.audioEng = NewCoreAudioEngine()
	}
	if a.opts.Catalog == nil {
		a.opts.Catalog = catalog.Official()
	}
	if a.opts.Downloader == nil {
		a.opts.Downloader = &catalog.Downloader{UserAgent: "Goose"}
	}
	a.cfgPath = opts.SettingsPath
	if a.cfgPath == "" {
		p, err := settings.DefaultPath()
		if err != nil {
			return nil, err
		}
		a.cfgPath = p
	}
	a.cfg, a.settErr = settings.Load(a.cfgPath)
	hp := opts.HistoryPath
	if hp == "" {
		p, err := history.DefaultPath()
		if err != nil {
			return nil, err
		}
		hp = p
	}
	// A damaged history or an unusable data folder must not keep the
	// window from opening: start shows what happened.
	store, rec, err := history.OpenOrRecover(hp)
	if err != nil {
		return nil, err
	}
	a.store = store
	if rec != nil {
		a.histErr = rec
	}
	fa.Settings().SetTheme(newTheme(a.cfg.Theme))

	a.win = fa.NewWindow("Goose")
	a.win.Resize(fyne.NewSize(1180, 780))
	a.win.SetCloseIntercept(func() { a.close(); a.win.Close() })
	a.models = newModelsView(a)
	a.build()
	a.installShortcuts()
	if a.firstRun() {
		a.show("welcome")
	} else {
		a.show("chat")
	}
	return a, nil
}

// build (re)creates the window's widgets; the theme's colors are baked
// into some of them, so a theme change calls it again.
func (a *App) build() {
	var openConv int64
	if a.chat != nil && a.chat.conv != nil {
		openConv = a.chat.conv.ID
	}
	var session Chat
	var sessionAt int64
	if a.chat != nil {
		session, sessionAt = a.chat.session, a.chat.sessionAt
	}
	a.status = newStatusBar(a)
	a.chat = newChatView(a)
	a.chat.session, a.chat.sessionAt = session, sessionAt
	// Image files dropped on the window go to the next chat message.
	a.win.SetOnDropped(func(pos fyne.Position, uris []fyne.URI) { a.chat.dropped(pos, uris) })
	if openConv != 0 {
		a.chat.open(openConv)
	}
	a.models.rebuild()
	a.prefs = newSettingsView(a)
	if a.audio == nil {
		a.audio = newAudioView(a) // kept across theme changes: it may be recording
	} else {
		a.audio.pic.set(a.audio.pic.in) // redraw in the new theme
	}
	a.body = container.NewStack()

	a.nav = map[string]*widget.Button{}
	navBtn := func(key, label string, icon fyne.Resource) *widget.Button {
		b := widget.NewButtonWithIcon(label, icon, func() { a.show(key) })
		b.Alignment = widget.ButtonAlignLeading
		a.nav[key] = b
		return b
	}
	logo := canvas.NewText("Goose", themeColor(theme.ColorNamePrimary))
	logo.TextSize = 20
	logo.TextStyle = fyne.TextStyle{Bold: true}
	rail := container.NewVBox(
		container.New(layout.NewCustomPaddedLayout(8, 12, 10, 10), logo),
		navBtn("chat", "Chats", theme.MailComposeIcon()),
		navBtn("audio", "Audio", theme.MediaRecordIcon()),
		navBtn("models", "Models", theme.StorageIcon()),
		navBtn("settings", "Settings", theme.SettingsIcon()),
	)
	railBG := canvas.NewRectangle(themeColor(colorSidebar))
	left := container.NewStack(railBG, container.New(layout.NewCustomPaddedLayout(4, 4, 6, 6), rail))
	a.win.SetContent(container.NewBorder(nil, a.status.root, container.NewHBox(left, widget.NewSeparator()), nil, a.body))
	a.status.refresh()
}

// applyTheme switches to the theme in the settings. UI goroutine only;
// not while a reply streams (its bubble would be rebuilt under it).
func (a *App) applyTheme() {
	a.fa.Settings().SetTheme(newTheme(a.cfg.Theme))
	if a.chat.generating {
		return
	}
	screen := a.screen
	a.build()
	a.show(screen)
}

// start runs what happens after the window appears: report a damaged
// settings file or history and reload the last model.
func (a *App) start() {
	if a.settErr != nil {
		a.showError(a.settErr)
	}
	if a.histErr != nil {
		a.showProblem("The chat history could not be opened", a.histErr)
	}
	if a.cfg.LastModel != "" {
		if _, err := os.Stat(a.cfg.LastModel); err == nil {
			a.loadModel(a.cfg.LastModel)
		}
	}
}

// firstRun reports whether there is no model to use yet.
func (a *App) firstRun() bool {
	if a.cfg.LastModel != "" {
		if _, err := os.Stat(a.cfg.LastModel); err == nil {
			return false
		}
	}
	locals, _ := catalog.Scan(a.cfg.ModelsDir)
	return len(locals) == 0
}

// close stops background work and closes the database.
func (a *App) close() {
	a.closeOnce.Do(func() {
		a.chat.stop()
		if done := a.chat.genDone; done != nil {
			// Let the reply save what it has (it ends within one token).
			select {
			case <-done:
			case <-time.After(10 * time.Second):
			}
		}
		a.models.pauseAll()
		a.audio.close()
		a.engineMu.Lock()
		a.chat.closeSession()
		a.eng.Unload()
		a.engineMu.Unlock()
		a.store.Close()
	})
}

// show switches the main area to a screen: "welcome", "chat", "audio",
// "models" or "settings".
func (a *App) show(screen string) {
	a.screen = screen
	var obj fyne.CanvasObject
	switch screen {
	case "welcome":
		obj = newWelcome(a)
	case "models":
		a.models.refresh()
		obj = a.models.root
	case "settings":
		a.prefs.reset()
		obj = a.prefs.root
	case "audio":
		a.audio.shown()
		obj = a.audio.root
	default:
		a.screen = "chat"
		obj = a.chat.root
	}
	for key, b := range a.nav {
		if key == a.screen || (key == "chat" && a.screen == "welcome") {
			b.Importance = widget.HighImportance
		} else {
			b.Importance = widget.LowImportance
		}
		b.Refresh()
	}
	a.body.Objects = []fyne.CanvasObject{obj}
	a.body.Refresh()
	if a.screen == "chat" {
		a.win.Canvas().Focus(a.chat.input)
	}
}

// do runs f on the UI goroutine. Only background goroutines call it.
func (a *App) do(f func()) {
	fyne.Do(func() {
		a.uiMu.Lock()
		defer a.uiMu.Unlock()
		f()
	})
}

// loadModel loads path in the background, showing progress in the status
// bar. UI goroutine only.
func (a *App) loadModel(path string) {
	if a.loading {
		return
	}
	if a.chat.generating {
		a.showError(errors.New("a reply is being generated; stop it before loading another model"))
		return
	}
	a.loading, a.loadFrac, a.loadName = true, 0, filepath.Base(path)
	a.status.refresh()
	a.models.refresh()
	opts := LoadOptions{Backend: a.cfg.Backend, Threads: a.cfg.Threads, Quant: a.cfg.Quant}
	prev := ""
	if a.model != nil {
		prev = a.model.Path
	}
	go func() {
		a.engineMu.Lock()
		last := time.Time{}
		info, err := a.eng.Load(context.Background(), path, opts, func(f float64) {
			if time.Since(last) < 50*time.Millisecond && f < 1 {
				return
			}
			last = time.Now()
			a.do(func() {
				a.loadFrac = f
				a.status.refresh()
				a.models.setLoadProgress(f)
			})
		})
		// The engine keeps the working model when the new one fails;
		// the chat session goes with the model it was made on.
		current, ok := a.eng.Info()
		if err == nil || !ok || current.Path != prev {
			a.chat.closeSession()
		}
		a.engineMu.Unlock()
		a.do(func() {
			a.loading = false
			if err != nil {
				a.model = nil
				if ok {
					a.model = &current
				}
				a.models.markBad(path, err)
				a.status.refresh()
				a.models.refresh()
				a.chat.refreshAttach()
				a.showProblem("Could not load "+filepath.Base(path), err)
				return
			}
			delete(a.models.bad, path)
			a.model = &info
			a.verifyModel(info.Path)
			a.chat.refreshAttach()
			a.cfg.LastModel = path
			if err := settings.Save(a.cfgPath, a.cfg); err != nil {
				a.showError(err)
			}
			a.status.refresh()
			a.models.refresh()
			if a.screen == "welcome" {
				a.show("chat")
			}
		})
	}()
}

// verifyModel checks the loaded model's file whole in the background when
// the engine can (checksums, NaN weights: a damaged download or disk) and
// says so if it is damaged. UI goroutine only.
func (a *App) verifyModel(path string) {
	v, ok := a.eng.(interface{ Verify(context.Context) error })
	if !ok {
		return
	}
	go func() {
		err := v.Verify(context.Background())
		if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, core.ErrClosed) {
			return
		}
		a.do(func() {
			a.showProblem("The model file "+filepath.Base(path)+" is damaged", err)
		})
	}()
}

// unloadModel frees the loaded model. UI goroutine only.
func (a *App) unloadModel() {
	if a.chat.generating || a.loading {
		return
	}
	a.model = nil
	a.status.refresh()
	a.models.refresh()
	a.chat.refreshAttach()
	go func() {
		a.engineMu.Lock()
		a.chat.closeSession()
		err := a.eng.Unload()
		a.engineMu.Unlock()
		if err != nil {
			a.do(func() { a.showError(err) })
		}
	}()
}

// Run opens the app's window and blocks until it is closed.
func Run(opts Options) error {
	fa := app.NewWithID("io.github.goose-rwkv.goose")
	fa.SetIcon(fyne.NewStaticResource("goose.svg", assets.Icon()))
	a, err := newApp(fa, opts)
	if err != nil {
		return err
	}
	defer a.close()
	a.portal = newPortal()
	go a.portal.available()                // ask the session bus now, off the UI goroutine
	log.SetOutput(&quietLog{w: os.Stderr}) // the toolkit logs through the standard logger
	a.win.SetMaster()
	a.win.Show()
	a.start()
	fa.Run()
	return nil
}
