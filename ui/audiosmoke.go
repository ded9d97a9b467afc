package ui

import (
	"errors"
	"fmt"
	"time"

	"github.com/goose-rwkv/goose/ui/history"
)

// SmokeAudio drives the Audio screen in SmokeTest: load the tagger Model,
// record a few seconds from the default input device, optionally import
// File, save a Screenshot of the screen, and attach the recording to a
// chat message that the model answers.
type SmokeAudio struct {
	Model, File, Screenshot string
	// Record is how long to record (0 means 3 s).
	Record time.Duration
}

// smokeAudio runs the audio part of the smoke test from a background
// goroutine.
func (a *App) smokeAudio(s SmokeAudio, onUI func(func()), waitFor func(string, func() bool) error) error {
	var errs []error
	onUI(func() {
		a.onError = func(err error) { errs = append(errs, err) }
		a.show("audio")
		a.audio.loadModel(s.Model)
	})
	failed := func() error {
		var err error
		onUI(func() { err = errors.Join(errs...) })
		return err
	}
	if err := waitFor("the tagger to load", func() bool { return !a.audio.loading }); err != nil {
		return err
	}
	var ok bool
	onUI(func() { ok = a.audio.model != nil })
	if !ok {
		return fmt.Errorf("smoke test: the tagger did not load: %w", failed())
	}
	if s.Record == 0 {
		s.Record = 3 * time.Second
	}
	onUI(func() { a.audio.startRecording() })
	onUI(func() { ok = a.audio.live != nil })
	if !ok {
		return fmt.Errorf("smoke test: recording did not start: %w", failed())
	}
	time.Sleep(s.Record)
	onUI(func() { a.audio.stopRecording() })
	tagged := func() bool {
		c := a.audio.cur
		return len(errs) > 0 || (a.audio.live == nil && c != nil && c.Tags != nil)
	}
	if err := waitFor("the recording to be saved and tagged", tagged); err != nil {
		return err
	}
	if err := failed(); err != nil {
		return fmt.Errorf("smoke test: recording: %w", err)
	}
	var rec history.Recording
	onUI(func() { rec = *a.audio.cur })
	if rec.Duration < s.Record/2 {
		return fmt.Errorf("smoke test: recorded %v in %v", rec.Duration, s.Record)
	}
	if s.File != "" {
		onUI(func() { a.audio.importFile(s.File) })
		imported := func() bool {
			c := a.audio.cur
			return len(errs) > 0 || (a.audio.importing == nil && c != nil && c.ID != rec.ID && c.Tags != nil && a.audio.spec != nil)
		}
		if err := waitFor("the import to be tagged", imported); err != nil {
			return err
		}
		if err := failed(); err != nil {
			return fmt.Errorf("smoke test: import: %w", err)
		}
	}
	if err := waitFor("the picture", func() bool { p := a.audio.pic; return p.gen > 0 && p.shown == p.gen }); err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond) // let the window paint
	var err error
	onUI(func() { err = a.capture(s.Screenshot) })
	if err != nil {
		return fmt.Errorf("smoke test: screenshot: %w", err)
	}
	// Attach the recording shown to a chat message; the model answers.
	var done chan struct{}
	onUI(func() {
		a.audio.attachToChat()
		a.chat.newChat()
		a.chat.submit("What was heard?")
		done = a.chat.genDone
	})
	if done == nil {
		return fmt.Errorf("smoke test: the message with the recording was not sent: %w", failed())
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return errors.New("smoke test: timed out waiting for the reply about the recording")
	}
	if err := waitFor("the reply", func() bool { return !a.chat.generating }); err != nil {
		return err
	}
	return failed()
}
