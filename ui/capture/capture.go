// Package capture records from and plays to the computer's sound devices
// through miniaudio (github.com/gen2brain/malgo, cgo). Engine code never
// imports it; the app does.
//
// A System lists input devices, starts recordings at the device's own
// rate and channel count, and plays mono clips back. Open returns the real
// one; Synth is a pure-Go stand-in that produces a test signal in real
// time, for tests and screenshots on machines without a sound card.
package capture

import (
	"errors"
	"time"
)

// Device is a sound device.
type Device struct {
	// ID identifies the device to Record; "" is the system default.
	ID string
	// Name is what people see.
	Name string
	// Default marks the system's default device.
	Default bool
}

// An Input is a running recording.
type Input interface {
	// Rate is the capture rate in Hz (the device's own).
	Rate() int
	// Channels per frame of the samples passed to onData.
	Channels() int
	// Stop ends the recording; onData is not called after it returns.
	Stop() error
}

// An Output is clip playing back.
type Output interface {
	// Position is how much of the clip has been played.
	Position() time.Duration
	// Stop ends playback early; onEnd is not called then.
	Stop() error
}

// A System is access to sound devices.
type System interface {
	// Inputs lists the input devices.
	Inputs() ([]Device, error)
	// Record starts capturing from the input device id ("" for the
	// default). onData receives interleaved float32 frames on the audio
	// thread: it must copy what it keeps and return quickly.
	Record(id string, onData func(samples []float32)) (Input, error)
	// Play plays mono samples at rate on the default output device and
	// calls onEnd (on another goroutine) when they have all been played.
	Play(samples []float32, rate int, onEnd func()) (Output, error)
	// Close releases the system.
	Close() error
}

// ErrNoInput is wrapped by Record's error when the computer has no input
// device.
var ErrNoInput = errors.New("no input device (microphone) was found")
