package capture

// #include <stdlib.h>
import "C"

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gen2brain/malgo"
)

// BackendNull is miniaudio's null backend (silent devices that run in real
// time). malgo's BackendNull constant is off by one: it leaves out
// ma_backend_custom (13), so the null backend is 14.
const BackendNull = malgo.Backend(14)

// backends returns the miniaudio backends to try for name: "auto" (or "")
// uses the platform's native one. On Linux "auto" is ALSA alone: asking
// miniaudio to probe PulseAudio or JACK with no server running crashes the
// process, so they are tried only when named ("pulse", "jack"). "null"
// selects the null backend.
func backends(name string) ([]malgo.Backend, error) {
	switch strings.ToLower(name) {
	case "", "auto":
		switch runtime.GOOS {
		case "linux":
			return []malgo.Backend{malgo.BackendAlsa}, nil
		case "darwin":
			return []malgo.Backend{malgo.BackendCoreaudio}, nil
		case "windows":
			return []malgo.Backend{malgo.BackendWasapi, malgo.BackendDsound, malgo.BackendWinmm}, nil
		case "freebsd":
			return []malgo.Backend{malgo.BackendOss}, nil
		case "openbsd":
			return []malgo.Backend{malgo.BackendSndio}, nil
		case "netbsd":
			return []malgo.Backend{malgo.BackendAudio4}, nil
		}
		return nil, fmt.Errorf("capture: no sound backend for %s", runtime.GOOS)
	case "alsa":
		return []malgo.Backend{malgo.BackendAlsa}, nil
	case "pulse", "pulseaudio":
		return []malgo.Backend{malgo.BackendPulseaudio}, nil
	case "jack":
		return []malgo.Backend{malgo.BackendJack}, nil
	case "null":
		return []malgo.Backend{BackendNull}, nil
	}
	return nil, fmt.Errorf("capture: unknown sound backend %q (want auto, alsa, pulse, jack or null)", name)
}

// Malgo is the System of the computer's sound devices.
type Malgo struct {
	ctx *malgo.AllocatedContext
	mu  sync.Mutex
	ids map[string]malgo.DeviceID
}

// Open opens the sound system through the named backend (see backends;
// "" means $GOOSE_AUDIO_BACKEND, else "auto").
func Open(backend string) (*Malgo, error) {
	if backend == "" {
		backend = os.Getenv("GOOSE_AUDIO_BACKEND")
	}
	list, err := backends(backend)
	if err != nil {
		return nil, err
	}
	ctx, err := malgo.InitContext(list, malgo.ContextConfig{}, nil)
	if err != nil {
		return nil, fmt.Errorf("capture: cannot open the sound system: %w", err)
	}
	return &Malgo{ctx: ctx, ids: map[string]malgo.DeviceID{}}, nil
}

// Close releases the sound system.
func (m *Malgo) Close() error {
	err := m.ctx.Uninit()
	m.ctx.Free()
	return err
}

// Inputs lists the capture devices.
func (m *Malgo) Inputs() ([]Device, error) {
	infos, err := m.ctx.Devices(malgo.Capture)
	if err != nil {
		return nil, fmt.Errorf("capture: listing input devices: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Device
	for _, in := range infos {
		id := hex.EncodeToString(in.ID[:])
		m.ids[id] = in.ID
		out = append(out, Device{ID: id, Name: in.Name(), Default: in.IsDefault != 0})
	}
	return out, nil
}

// malgoInput is a running capture device.
type malgoInput struct {
	dev      *malgo.Device
	rate     int
	channels int
	stopped  atomic.Bool
	once     sync.Once
}

func (in *malgoInput) Rate() int     { return in.rate }
func (in *malgoInput) Channels() int { return in.channels }
func (in *malgoInput) Stop() error {
	in.once.Do(func() {
		in.stopped.Store(true)
		in.dev.Uninit() // stops the device and waits for its thread
	})
	return nil
}

// Record starts capturing float32 frames at the device's native rate and
// channel count.
func (m *Malgo) Record(id string, onData func([]float32)) (Input, error) {
	if id == "" {
		devs, err := m.Inputs()
		if err != nil {
			return nil, err
		}
		if len(devs) == 0 {
			return nil, ErrNoInput
		}
	}
	cfg := malgo.DefaultDeviceConfig(malgo.Capture)
	cfg.Capture.Format = malgo.FormatF32
	cfg.Capture.Channels = 0 // native
	cfg.SampleRate = 0       // native
	cfg.PeriodSizeInMilliseconds = 50
	if id != "" {
		m.mu.Lock()
		devID, ok := m.ids[id]
		m.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("capture: the input device is gone (unplugged?); choose another")
		}
		p := C.CBytes(devID[:])
		defer C.free(p)
		cfg.Capture.DeviceID = p
	}
	in := &malgoInput{}
	var buf []float32
	cb := malgo.DeviceCallbacks{Data: func(_, input []byte, frames uint32) {
		if in.stopped.Load() || len(input) < 4 {
			return
		}
		n := len(input) / 4
		src := unsafe.Slice((*float32)(unsafe.Pointer(&input[0])), n)
		buf = append(buf[:0], src...)
		onData(buf)
	}}
	dev, err := malgo.InitDevice(m.ctx.Context, cfg, cb)
	if err != nil {
		return nil, deviceError("open the input device", err)
	}
	in.dev = dev
	in.rate = int(dev.SampleRate())
	in.channels = int(dev.CaptureChannels())
	if in.rate <= 0 || in.channels <= 0 {
		dev.Uninit()
		return nil, fmt.Errorf("capture: the input device reports %d channels at %d Hz", in.channels, in.rate)
	}
	if err := dev.Start(); err != nil {
		dev.Uninit()
		return nil, deviceError("start recording", err)
	}
	return in, nil
}

// deviceError explains miniaudio's failures people can act on.
func deviceError(what string, err error) error {
	switch {
	case errors.Is(err, malgo.ErrAccessDenied):
		return fmt.Errorf("capture: cannot %s: access to the microphone was denied (check the system's privacy settings or your user's audio group): %w", what, err)
	case errors.Is(err, malgo.ErrNoDevice):
		return fmt.Errorf("capture: cannot %s: %w: %w", what, ErrNoInput, err)
	case errors.Is(err, malgo.ErrBusy), errors.Is(err, malgo.ErrDeviceAlreadyInitialized):
		return fmt.Errorf("capture: cannot %s: the device is busy (another program is using it): %w", what, err)
	}
	return fmt.Errorf("capture: cannot %s: %w", what, err)
}

// malgoOutput is a clip playing.
type malgoOutput struct {
	dev     *malgo.Device
	rate    int
	pos     atomic.Int64 // frames played
	stopped atomic.Bool
	once    sync.Once
}

func (o *malgoOutput) Position() time.Duration {
	return time.Duration(o.pos.Load()) * time.Second / time.Duration(o.rate)
}

func (o *malgoOutput) Stop() error {
	o.once.Do(func() {
		o.stopped.Store(true)
		o.dev.Uninit()
	})
	return nil
}

// Play plays mono samples at rate on the default output device.
func (m *Malgo) Play(samples []float32, rate int, onEnd func()) (Output, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("capture: play at %d Hz", rate)
	}
	cfg := malgo.DefaultDeviceConfig(malgo.Playback)
	cfg.Playback.Format = malgo.FormatF32
	cfg.Playback.Channels = 1
	cfg.SampleRate = uint32(rate)
	o := &malgoOutput{rate: rate}
	var ended atomic.Bool
	cb := malgo.DeviceCallbacks{Data: func(output, _ []byte, frames uint32) {
		n := len(output) / 4
		if n == 0 {
			return
		}
		dst := unsafe.Slice((*float32)(unsafe.Pointer(&output[0])), n)
		pos := int(o.pos.Load())
		k := copy(dst, samples[min(pos, len(samples)):])
		clear(dst[k:])
		o.pos.Add(int64(k))
		if pos+k >= len(samples) && !o.stopped.Load() && ended.CompareAndSwap(false, true) {
			// Stop from another goroutine: the device cannot stop
			// itself from its own callback.
			go func() {
				if o.stopped.Swap(true) {
					return // Stop came first
				}
				o.once.Do(func() { o.dev.Uninit() })
				if onEnd != nil {
					onEnd()
				}
			}()
		}
	}}
	dev, err := malgo.InitDevice(m.ctx.Context, cfg, cb)
	if err != nil {
		return nil, deviceError("open the output device", err)
	}
	o.dev = dev
	if err := dev.Start(); err != nil {
		dev.Uninit()
		return nil, deviceError("start playback", err)
	}
	return o, nil
}
