package capture

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Synth is a System without hardware: its one input device produces a
// signal in real time (in blocks of Period), and playback only keeps
// time. Tests and screenshots on machines without a sound card use it.
type Synth struct {
	// Rate and Channels of the input; 0 means 48000 Hz stereo.
	Rate, Channels int
	// Period between blocks; 0 means 20 ms.
	Period time.Duration
	// Signal returns the sample at time t (seconds); nil is Demo.
	Signal func(t float64) float32
	// NoDevice makes Inputs empty and Record fail as on a computer
	// without a microphone; Denied makes Record fail as when access is
	// denied.
	NoDevice, Denied bool
	// StopAfter, when not 0, stops the input delivering samples after
	// that much audio, as when a device is unplugged.
	StopAfter time.Duration
}

// Demo is a test signal: a tone gliding between 300 Hz and 3 kHz with
// bursts of noise, so the spectrogram shows something.
func Demo(t float64) float32 {
	// Frequency 1650 − 1350·cos(2πt/4) Hz; the phase is its integral.
	phase := 2 * math.Pi * (1650*t - 1350*4/(2*math.Pi)*math.Sin(2*math.Pi*t/4))
	v := 0.3 * math.Sin(phase)
	if math.Mod(t, 3) > 2.5 {
		// Deterministic noise burst.
		x := math.Sin(t*12345.678) * 43758.5453
		v += 0.2 * (x - math.Floor(x) - 0.5)
	}
	return float32(v)
}

func (s *Synth) defaults() (rate, ch int, period time.Duration, sig func(float64) float32) {
	rate, ch, period, sig = s.Rate, s.Channels, s.Period, s.Signal
	if rate == 0 {
		rate = 48000
	}
	if ch == 0 {
		ch = 2
	}
	if period == 0 {
		period = 20 * time.Millisecond
	}
	if sig == nil {
		sig = Demo
	}
	return
}

// Inputs lists the synthetic device.
func (s *Synth) Inputs() ([]Device, error) {
	if s.NoDevice {
		return nil, nil
	}
	return []Device{{ID: "synth", Name: "Test signal", Default: true}}, nil
}

// Record starts producing the signal.
func (s *Synth) Record(id string, onData func([]float32)) (Input, error) {
	if s.NoDevice {
		return nil, ErrNoInput
	}
	if s.Denied {
		return nil, fmt.Errorf("capture: cannot open the input device: access to the microphone was denied: %w", errors.New("permission denied"))
	}
	if id != "" && id != "synth" {
		return nil, fmt.Errorf("capture: the input device is gone (unplugged?); choose another")
	}
	rate, ch, period, sig := s.defaults()
	in := &synthInput{rate: rate, ch: ch, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(in.done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		block := int(int64(rate) * int64(period) / int64(time.Second))
		buf := make([]float32, block*ch)
		var n int64
		for {
			select {
			case <-in.stop:
				return
			case <-tick.C:
			}
			for i := 0; i < block; i++ {
				v := sig(float64(n+int64(i)) / float64(rate))
				for c := 0; c < ch; c++ {
					buf[i*ch+c] = v
				}
			}
			if s.StopAfter > 0 && time.Duration(n)*time.Second/time.Duration(rate) >= s.StopAfter {
				continue
			}
			n += int64(block)
			onData(buf)
		}
	}()
	return in, nil
}

type synthInput struct {
	rate, ch   int
	stop, done chan struct{}
	once       sync.Once
}

func (in *synthInput) Rate() int     { return in.rate }
func (in *synthInput) Channels() int { return in.ch }
func (in *synthInput) Stop() error {
	in.once.Do(func() { close(in.stop); <-in.done })
	return nil
}

// Play keeps time as if the samples were played.
func (s *Synth) Play(samples []float32, rate int, onEnd func()) (Output, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("capture: play at %d Hz", rate)
	}
	o := &synthOutput{start: time.Now(), dur: time.Duration(len(samples)) * time.Second / time.Duration(rate)}
	o.timer = time.AfterFunc(o.dur, func() {
		if o.stopped.CompareAndSwap(false, true) && onEnd != nil {
			onEnd()
		}
	})
	return o, nil
}

type synthOutput struct {
	start   time.Time
	dur     time.Duration
	timer   *time.Timer
	stopped atomic.Bool
}

func (o *synthOutput) Position() time.Duration { return min(time.Since(o.start), o.dur) }
func (o *synthOutput) Stop() error {
	o.stopped.Store(true)
	o.timer.Stop()
	return nil
}

// Close does nothing.
func (s *Synth) Close() error { return nil }
