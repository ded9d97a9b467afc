package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/audio/wav"
)

// testTag runs the tag command on the A-RWKV fixture: the first window of
// mm.wav is the reference input, so its five best classes are the
// fixture's top5, in order; the text output names classes.
func testTag(t *testing.T, bin string) {
	t.Run("files", func(t *testing.T) { testARWKVFiles(t, bin) })
	dir := "../../testdata/arwkv/"
	model := []string{"tag", "--model", dir + "mm.arwkv.pth", "--config", dir + "mm.arwkv.json", "--backend", "cpu"}
	out, err := exec.Command(bin, append(model, "--json", dir+"mm.wav")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Top5 []int `json:"top5"`
	}
	raw, _ := os.ReadFile(dir + "mm.arwkv.json")
	if err := json.Unmarshal(raw, &fx); err != nil || len(fx.Top5) != 5 {
		t.Fatalf("fixture top5: %v", err)
	}
	var got audio.Summary
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tag --json printed %q: %v", out, err)
	}
	if len(got.Tags) != 5 || len(got.Windows) != 2 || got.Duration < 1.39 || got.Duration > 1.41 {
		t.Fatalf("tag --json: %d tags, %d windows, %.3f s", len(got.Tags), len(got.Windows), got.Duration)
	}
	for i, tg := range got.Windows[0].Tags {
		if tg.Index != fx.Top5[i] || tg.Label != "class "+strconv.Itoa(fx.Top5[i]) || tg.Prob <= 0 || tg.Prob >= 1 {
			t.Errorf("window 0 tag %d = %+v, want class %d", i, tg, fx.Top5[i])
		}
	}
	for i := 1; i < len(got.Tags); i++ {
		if got.Tags[i].Prob > got.Tags[i-1].Prob {
			t.Errorf("tags not best first: %+v", got.Tags)
		}
	}

	out, err = exec.Command(bin, append(model, "--top", "2", "--timeline", dir+"mm.wav")...).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "  class ") || !strings.HasPrefix(lines[2], "0:00.0–0:01.3  class ") {
		t.Errorf("tag --top 2 --timeline printed:\n%s", out)
	}

	out, err = exec.Command(bin, append(model, "--threshold", "0.999", dir+"mm.wav")...).Output()
	if err != nil || !strings.Contains(string(out), "no tag reaches") {
		t.Errorf("tag --threshold 0.999: %v\n%s", err, out)
	}

	// Bad flags and inputs are errors that say why, never a panic
	// (--top -1 used to panic) or a hang (a FIFO used to block open).
	fifo := filepath.Join(t.TempDir(), "fifo.wav")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(model, "--top", "-1", dir+"mm.wav"), "--top -1"},
		{append(model, "--top", "0", dir+"mm.wav"), "--top 0"},
		{append(model, "--threshold", "1.5", dir+"mm.wav"), "--threshold 1.5"},
		{append(model, "--threshold", "NaN", dir+"mm.wav"), "--threshold NaN"},
		{append(model, "--hop", "1h", dir+"mm.wav"), "hop 1h0m0s"},
		{append(model, fifo), "not a regular file"},
		{append(model, "/dev/zero"), "not a regular file"},
		{append(model, dir+"mm.arwkv.json"), "not a RIFF/WAVE"},
		{[]string{"tag", "--model", dir + "mm.arwkv.pth", dir + "mm.wav"}, "pos_embed"},
	} {
		cmd := exec.Command(bin, tc.args...)
		done := make(chan struct{})
		var msg []byte
		go func() { msg, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%v hung", tc.args[len(tc.args)-3:])
			continue
		}
		if err == nil || !strings.Contains(string(msg), tc.want) || strings.Contains(string(msg), "goroutine") {
			t.Errorf("%v: %v\n%s\nwant an error mentioning %q", tc.args[len(tc.args)-3:], err, msg, tc.want)
		}
	}
}

// testARWKVFiles writes a random A-RWKV-T checkpoint with testmodel, has
// info name its kind, tags a 12 s stereo 44.1 kHz WAV with it (the released
// configuration, resampled, two windows) and runs bench --audio --json.
func testARWKVFiles(t *testing.T, bin string) {
	dir := t.TempDir()
	model := filepath.Join(dir, "arwkv-t.safetensors")
	if out, err := exec.Command(bin, "testmodel", "--kind", "arwkv", "--shape", "t", "--out", model).CombinedOutput(); err != nil {
		t.Fatalf("testmodel: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "info", model).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "kind:        A-RWKV-T audio tagger") || !strings.Contains(string(out), "classes:     527") {
		t.Errorf("info: %v\n%s", err, out)
	}
	rec := filepath.Join(dir, "rec.wav")
	w, err := wav.Create(rec, 44100, 2)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]float32, 2*44100*12)
	for i := range 44100 * 12 {
		v := float32(8000.0 / 32768 * math.Sin(float64(i)*0.05))
		pcm[2*i], pcm[2*i+1] = v, v
	}
	if err := w.Write(pcm); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, "tag", "--model", model, "--backend", "cpu", "--json", rec).Output()
	var sum audio.Summary
	if err != nil || json.Unmarshal(out, &sum) != nil || len(sum.Windows) != 2 || sum.Windows[1].End != 12 || sum.Model != "A-RWKV-T" || len(sum.Tags) != 5 {
		t.Errorf("tag: %v\n%s", err, out)
	} else if sum.Tags[0].Label == "" || strings.HasPrefix(sum.Tags[0].Label, "class ") {
		t.Errorf("tag printed no AudioSet name: %+v", sum.Tags[0])
	}
	out, err = exec.Command(bin, "bench", "--audio", "--shape", "t", "--backend", "cpu", "--runs", "1", "--minutes", "0.25", "--json").Output()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		ClipMS  float64 `json:"clip_ms"`
		FloorMS float64 `json:"floor_ms"`
		Windows int     `json:"windows"`
	}
	if err != nil || json.Unmarshal([]byte(lines[len(lines)-1]), &res) != nil || res.ClipMS <= 0 || res.FloorMS <= 0 || res.Windows != 2 {
		t.Errorf("bench --audio --json: %v\n%s", err, out)
	}
}
