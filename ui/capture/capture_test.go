package capture

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestNullBackend records and plays through miniaudio's null backend,
// which runs in real time without a sound card (as in CI).
func TestNullBackend(t *testing.T) {
	sys, err := Open("null")
	if err != nil {
		t.Fatalf("open the null backend: %v", err)
	}
	defer sys.Close()
	devs, err := sys.Inputs()
	if err != nil || len(devs) == 0 {
		t.Fatalf("null backend inputs: %v, %v", devs, err)
	}
	var mu sync.Mutex
	frames := 0
	var in Input
	in, err = sys.Record(devs[0].ID, func(s []float32) {
		mu.Lock()
		frames += len(s)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("record: %v", err)
	}
	if in.Rate() <= 0 || in.Channels() <= 0 {
		t.Fatalf("rate %d, channels %d", in.Rate(), in.Channels())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := frames
		mu.Unlock()
		if got > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no samples from the null capture device in 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := in.Stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	after := frames
	mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if frames != after {
		t.Errorf("samples arrived after Stop returned")
	}
	mu.Unlock()
	in.Stop() // twice is fine

	ended := make(chan struct{})
	out, err := sys.Play(make([]float32, 3200), 32000, func() { close(ended) })
	if err != nil {
		t.Fatalf("play: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("0.1 s of playback did not end within 5 s")
	}
	if p := out.Position(); p != 100*time.Millisecond {
		t.Errorf("position after the end %v, want 100ms", p)
	}
	out.Stop()
}

func TestBackends(t *testing.T) {
	for _, name := range []string{"", "auto", "alsa", "pulse", "jack", "null", "NULL"} {
		if _, err := backends(name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
	if b, _ := backends("null"); b[0] != 14 {
		t.Errorf("null backend %d, want 14", b[0])
	}
	if _, err := backends("oss4"); err == nil || !strings.Contains(err.Error(), "unknown sound backend") {
		t.Errorf("unknown backend: %v", err)
	}
}

func TestSynth(t *testing.T) {
	s := &Synth{Rate: 16000, Channels: 2, Period: 5 * time.Millisecond, Signal: func(t float64) float32 { return float32(math.Sin(2 * math.Pi * 100 * t)) }}
	var mu sync.Mutex
	var got []float32
	in, err := s.Record("", func(b []float32) {
		mu.Lock()
		got = append(got, b...)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	in.Stop()
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 || len(got)%2 != 0 {
		t.Fatalf("%d samples", len(got))
	}
	for i := 0; i < len(got)/2; i++ {
		want := math.Sin(2 * math.Pi * 100 * float64(i) / 16000)
		if math.Abs(float64(got[2*i])-want) > 1e-6 || got[2*i+1] != got[2*i] {
			t.Fatalf("frame %d: %v %v, want %v", i, got[2*i], got[2*i+1], want)
		}
	}
	if _, err := (&Synth{NoDevice: true}).Record("", func([]float32) {}); !errors.Is(err, ErrNoInput) {
		t.Errorf("no device: %v", err)
	}
	if _, err := (&Synth{Denied: true}).Record("", func([]float32) {}); err == nil || !strings.Contains(err.Error(), "denied") {
		t.Errorf("denied: %v", err)
	}
}
