package ui

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/ui/capture"
	"github.com/goose-rwkv/goose/ui/history"
)

// fakeAudio is a deterministic tagger with a short clip (1 s windows every
// 0.5 s), so a test records a few windows in a few seconds. Its classes
// depend on the window: "Speech" everywhere, "Dog barking" from the
// second window on, "Music" only in the first.
type fakeAudio struct {
	// hold, when not nil, makes Tag wait for ctx to end.
	hold    chan struct{}
	mu      sync.Mutex
	loaded  bool
	tagged  int // Tag calls
	streams int
	loadErr error
}

var fakeLabels = []string{"Speech", "Dog barking", "Music", "Siren", "Silence"}

const (
	fakeClip = time.Second
	fakeHop  = 500 * time.Millisecond
)

func (f *fakeAudio) Load(ctx context.Context, path string, opts LoadOptions) (AudioModelInfo, error) {
	if f.loadErr != nil {
		return AudioModelInfo{}, f.loadErr
	}
	if _, err := os.Stat(path); err != nil {
		return AudioModelInfo{}, err
	}
	f.mu.Lock()
	f.loaded = true
	f.mu.Unlock()
	return AudioModelInfo{Path: path, Name: strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), Summary: "fake tagger, 5 classes", Labels: fakeLabels}, nil
}

func (f *fakeAudio) Unload() error { return nil }

// probs is window i's class probabilities.
func fakeProbs(i int) []float32 {
	p := []float32{0.9, 0, 0, 0.005, 0.02}
	if i >= 1 {
		p[1] = 0.6
	}
	if i == 0 {
		p[2] = 0.3
	}
	return p
}

func (f *fakeAudio) Tag(ctx context.Context, pcm []float32, rate int) (AudioResult, error) {
	f.mu.Lock()
	f.tagged++
	f.mu.Unlock()
	if f.hold != nil {
		close(f.hold)
		<-ctx.Done()
		return AudioResult{}, ctx.Err()
	}
	dur := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
	res := AudioResult{Duration: dur}
	top := make([]float32, len(fakeLabels))
	for i := 0; i == 0 || time.Duration(i)*fakeHop+fakeClip <= dur+fakeHop-time.Millisecond; i++ {
		start := time.Duration(i) * fakeHop
		p := fakeProbs(i)
		res.Windows = append(res.Windows, AudioWindow{Start: start, End: min(start+fakeClip, max(dur, fakeClip)), Probs: p})
		for c := range p {
			top[c] = max(top[c], p[c])
		}
	}
	res.Top = topTags(top, fakeLabels, 20, 0.01)
	return res, nil
}

type fakeStream struct {
	rate, n, next int
}

func (s *fakeStream) Write(ctx context.Context, pcm []float32) ([]AudioWindow, error) {
	s.n += len(pcm)
	var out []AudioWindow
	clip, hop := int(fakeClip)*s.rate/int(time.Second), int(fakeHop)*s.rate/int(time.Second)
	for s.next*hop+clip <= s.n {
		start := time.Duration(s.next) * fakeHop
		out = append(out, AudioWindow{Start: start, End: start + fakeClip, Probs: fakeProbs(s.next)})
		s.next++
	}
	return out, nil
}

func (f *fakeAudio) NewStream(rate int) (AudioStream, error) {
	f.mu.Lock()
	f.streams++
	f.mu.Unlock()
	return &fakeStream{rate: rate}, nil
}

func (f *fakeAudio) Spectrogram(pcm []float32, rate int) ([][]float32, error) {
	return logMel(pcm, rate)
}

// audioHarness is an app with the fake LM, the fake tagger and sound
// system sys, its Audio screen shown.
func audioHarness(t *testing.T, dir string, sys capture.System) (*harness, *fakeAudio) {
	fa := &fakeAudio{}
	h := newHarness(t, newFakeEngine(), dir, nil, func(o *Options) {
		o.Audio = fa
		o.Sound = sys
	})
	h.ui(func() { h.a.show("audio") })
	return h, fa
}

// loadTagger loads the fake tagger from a file in the harness's folder.
func (h *harness) loadTagger() {
	h.t.Helper()
	path := filepath.Join(h.dir, "arwkv-t.pth")
	if err := os.WriteFile(path, []byte("fake"), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.ui(func() { h.a.audio.loadModel(path) })
	h.waitFor("the tagger to load", func() bool { return h.a.audio.model != nil })
}

// picShown waits until the picture shows the latest content.
func (h *harness) picShown() {
	h.t.Helper()
	h.waitFor("the picture", func() bool { p := h.a.audio.pic; return p.gen > 0 && p.shown == p.gen })
}

// TestAudioRecordTagTimelineHistoryChat records from an injected source,
// sees live tags every window, stops, finds the recording tagged in the
// history with its timeline, and attaches it to a chat message.
func TestAudioRecordTagTimelineHistoryChat(t *testing.T) {
	sys := &capture.Synth{Rate: 48000, Channels: 2, Period: 10 * time.Millisecond}
	h, fa := audioHarness(t, "", sys)
	h.load(tinyModel(t, h.dir))
	h.loadTagger()
	v := h.a.audio
	h.waitFor("the input devices", func() bool { return v.devList != nil })
	h.ui(func() {
		if len(v.devices.Options) != 1 || v.devices.Selected != "Test signal" {
			t.Errorf("devices %v, selected %q", v.devices.Options, v.devices.Selected)
		}
		test.Tap(v.recBtn)
	})
	h.waitFor("recording to start", func() bool { return v.live != nil })
	h.ui(func() {
		if v.recBtn.Text != "Stop" || !v.importBtn.Disabled() {
			t.Errorf("while recording: button %q, import enabled %v", v.recBtn.Text, !v.importBtn.Disabled())
		}
	})
	// Tags update every window while recording: three windows need 2 s.
	h.waitFor("three live windows", func() bool { return v.live != nil && len(v.live.windows) >= 3 })
	h.ui(func() {
		if v.level.level <= 0.1 || v.elapsed.Text == "0:00" && len(v.spec) < 150 {
			t.Errorf("level %v, elapsed %q, %d spectrogram frames", v.level.level, v.elapsed.Text, len(v.spec))
		}
		if got := liveTop(v.live.windows); len(got) < 2 || got[0].Label != "Speech" || got[1].Label != "Dog barking" {
			t.Errorf("live top tags %+v", got)
		}
		if len(v.bars.Objects) < 2 {
			t.Errorf("%d tag bars while recording", len(v.bars.Objects))
		}
	})
	h.picShown()
	shot(t, h, filepath.Join("testdata", "screens", "audio-recording.png"))
	h.ui(func() { test.Tap(v.recBtn) })
	h.waitFor("the recording to be saved and tagged", func() bool { return v.live == nil && v.cur != nil && v.cur.Tags != nil })

	var rec history.Recording
	h.ui(func() { rec = *v.cur })
	if rec.Duration < 2*time.Second || rec.Duration > 20*time.Second {
		t.Errorf("duration %v", rec.Duration)
	}
	// The file: 32 kHz mono WAV with every sample, no partial file left.
	f, err := os.Open(rec.Path)
	if err != nil {
		t.Fatal(err)
	}
	pcm, format, err := wav.ReadAll(f, 0)
	f.Close()
	if err != nil || format.Rate != 32000 || format.Channels != 1 {
		t.Fatalf("recording file: %v, %v", format, err)
	}
	if got := time.Duration(len(pcm)) * time.Second / 32000; got != rec.Duration {
		t.Errorf("file holds %v, history says %v", got, rec.Duration)
	}
	// The Synth's signal, resampled from 48 kHz: the same tone, not silence.
	var peak float32
	for _, x := range pcm {
		peak = max(peak, x)
	}
	if peak < 0.25 || peak > 0.55 {
		t.Errorf("recording peak %g, want about 0.3 to 0.5", peak)
	}
	if parts, _ := filepath.Glob(filepath.Join(h.dir, "recordings", "*.part")); len(parts) != 0 {
		t.Errorf("partial files left: %v", parts)
	}
	// The history: one recording, tagged, with the timeline of the whole recording.
	recs, err := h.a.store.Recordings("")
	if err != nil || len(recs) != 1 || recs[0].Tags == nil {
		t.Fatalf("history: %+v, %v", recs, err)
	}
	tg := recs[0].Tags
	if tg.Top[0].Label != "Speech" || tg.Top[1].Label != "Dog barking" || tg.Top[2].Label != "Music" || len(tg.Windows) < 3 {
		t.Errorf("stored tags %+v", tg)
	}
	if tg.Windows[0].StartMS != 0 || tg.Windows[1].StartMS != 500 {
		t.Errorf("timeline %+v", tg.Windows)
	}
	if fa.streams != 1 || fa.tagged != 1 {
		t.Errorf("%d streams, %d Tag calls", fa.streams, fa.tagged)
	}
	h.picShown()
	h.ui(func() {
		if v.list.Length() != 1 {
			t.Errorf("list shows %d recordings", v.list.Length())
		}
		if v.attachBtn.Disabled() || v.playBtn.Disabled() {
			t.Error("attach or play disabled on a tagged recording")
		}
	})

	// Playback through the sound system: the playhead moves; Stop works.
	h.ui(func() { test.Tap(v.playBtn) })
	h.ui(func() {
		if v.player == nil || v.playBtn.Text != "Stop" {
			t.Errorf("not playing: %v %q", v.player, v.playBtn.Text)
		}
	})
	var x0 float32
	h.waitFor("the playhead", func() bool { x0 = v.playhead.Position().X; return v.playhead.Visible() })
	h.waitFor("the playhead to move", func() bool { return v.playhead.Position().X > x0 })
	h.ui(func() {
		test.Tap(v.playBtn)
		if v.player != nil {
			t.Error("still playing after Stop")
		}
	})
	h.waitFor("the playhead to hide", func() bool { return !v.playhead.Visible() })

	// Attach to chat: the tags with their times go into the prompt.
	h.ui(func() {
		test.Tap(v.attachBtn)
		if h.a.screen != "chat" || !h.a.chat.recChip.root.Visible() {
			t.Errorf("after attach: screen %q, chip shown %v", h.a.screen, h.a.chat.recChip.root.Visible())
		}
	})
	h.send("What animal was that?")
	msgs := h.messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	u := msgs[0].Content
	for _, want := range []string{"[recording: " + rec.Name + " (0:0", "- Speech: 90% at 0:00–", "- Dog barking: 60% at 0:0", "- Music: 30% at 0:00–0:01", "What animal was that?"} {
		if !strings.Contains(u, want) {
			t.Errorf("message lacks %q:\n%s", want, u)
		}
	}
	if p := h.eng.(*fakeEngine).allPrompts(); len(p) == 0 || !strings.Contains(p[len(p)-1], "Dog barking: 60%") {
		t.Errorf("the model was not given the tags: %q", p)
	}
	h.ui(func() {
		if h.a.chat.recChip.root.Visible() || h.a.chat.recChip.rec != nil {
			t.Error("the recording stays attached after sending")
		}
	})

	// Rename, export, delete.
	h.ui(func() {
		h.a.show("audio")
		v.rename(rec.ID, "Dog in the garden")
	})
	recs, _ = h.a.store.Recordings("garden")
	if len(recs) != 1 {
		t.Fatalf("renamed recording not found: %+v", recs)
	}
	csvPath := filepath.Join(h.dir, "out", "tags.csv")
	os.MkdirAll(filepath.Dir(csvPath), 0o755)
	if err := exportTags(csvPath, recs[0]); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(mustOpen(t, csvPath)).ReadAll()
	if err != nil || len(rows) < 1+3+3 || strings.Join(rows[0], ",") != "start_s,end_s,rank,index,label,prob" || rows[1][4] != "Speech" || rows[1][5] != "0.9000" {
		t.Errorf("CSV: %v, %v", rows, err)
	}
	jsonPath := filepath.Join(h.dir, "out", "tags.json")
	if err := exportTags(jsonPath, recs[0]); err != nil {
		t.Fatal(err)
	}
	var js tagsExport
	if err := json.NewDecoder(mustOpen(t, jsonPath)).Decode(&js); err != nil || js.Name != "Dog in the garden" || len(js.Tags) < 3 || len(js.Timeline) != len(tg.Windows) {
		t.Errorf("JSON: %+v, %v", js, err)
	}
	if left, _ := filepath.Glob(filepath.Join(h.dir, "out", ".*tmp")); len(left) != 0 {
		t.Errorf("temporary files left by the export: %v", left)
	}
	h.ui(func() { v.remove(recs[0]) })
	if _, err := os.Stat(rec.Path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there after delete: %v", err)
	}
	if recs, _ := h.a.store.Recordings(""); len(recs) != 0 {
		t.Errorf("history after delete: %+v", recs)
	}
	if errs := h.errs(); len(errs) != 0 {
		t.Errorf("errors shown: %v", errs)
	}
}

func mustOpen(t *testing.T, path string) *bytes.Reader {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b)
}

// TestAudioErrors: no input device, denied access, corrupt and unsupported
// files each get a dialog saying which and why, and nothing else is lost.
func TestAudioErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		sys  *capture.Synth
		want string
	}{
		{"no device", &capture.Synth{NoDevice: true}, "no input device"},
		{"denied", &capture.Synth{Denied: true}, "denied"},
	} {
		h, _ := audioHarness(t, dir, tc.sys)
		h.ui(func() { h.a.audio.toggleRecord() })
		errs := h.errs()
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) || !h.dialogShown() {
			t.Errorf("%s: errors %v (dialog %v), want one containing %q", tc.name, errs, h.dialogShown(), tc.want)
		}
		h.ui(func() {
			if h.a.audio.live != nil || h.a.audio.recBtn.Text != "Record" {
				t.Errorf("%s: recording state after the error", tc.name)
			}
		})
		if parts, _ := filepath.Glob(filepath.Join(dir, "recordings", "*")); len(parts) != 0 {
			t.Errorf("%s: files left: %v", tc.name, parts)
		}
		h.close()
	}

	h, _ := audioHarness(t, dir, &capture.Synth{})
	h.loadTagger()
	flac, err := os.ReadFile(filepath.Join("..", "audio", "decode", "testdata", "tone1k-48k-stereo.flac"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"notes.mp3":      []byte("this is a text file with the wrong name"),
		"song.ogg":       []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00"),
		"truncated.flac": flac[:len(flac)/3],
		"tone.flac":      flac,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ file, want string }{
		{"notes.mp3", "Could not import notes.mp3: notes.mp3: unsupported audio format"},
		{"song.ogg", "Goose reads WAV, FLAC and MP3"},
		{"truncated.flac", "truncated.flac (FLAC, 16-bit, stereo, 48000 Hz) is damaged"},
		{"missing.wav", "no such file"},
	} {
		before := len(h.errs())
		h.ui(func() { h.a.audio.importFile(filepath.Join(dir, tc.file)) })
		h.waitFor("the import to end", func() bool { return h.a.audio.importing == nil })
		errs := h.errs()
		if len(errs) != before+1 || !strings.Contains(errs[len(errs)-1].Error(), tc.want) {
			t.Errorf("import %s: errors %v, want one containing %q", tc.file, errs[before:], tc.want)
		} else if title, sentence, _ := explain(errs[len(errs)-1]); title != "Could not import "+tc.file {
			t.Errorf("import %s: the dialog's title is %q, want it to say what failed", tc.file, title)
		} else if tc.file == "song.ogg" && !strings.Contains(sentence, "WAV, FLAC and MP3") {
			t.Errorf("import %s: the dialog says %q, want the formats Goose reads", tc.file, sentence)
		}
	}
	if recs, _ := h.a.store.Recordings(""); len(recs) != 0 {
		t.Errorf("failed imports added recordings: %+v", recs)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "recordings", "*")); len(left) != 0 {
		t.Errorf("failed imports left files: %v", left)
	}
	// A good file imports, is resampled to 32 kHz and tagged.
	h.ui(func() { h.a.audio.importFile(filepath.Join(dir, "tone.flac")) })
	h.waitFor("the import to be tagged", func() bool { c := h.a.audio.cur; return c != nil && c.Tags != nil })
	recs, _ := h.a.store.Recordings("")
	if len(recs) != 1 || recs[0].Name != "tone" || recs[0].Duration != 500*time.Millisecond || !strings.Contains(recs[0].Source, "FLAC") {
		t.Errorf("imported: %+v", recs)
	}
	h.close()
}

// TestAudioCloseWhileRecording: closing the app while recording keeps
// the recording, finished, in the history.
func TestAudioCloseWhileRecording(t *testing.T) {
	dir := t.TempDir()
	h, _ := audioHarness(t, dir, &capture.Synth{})
	h.ui(func() { h.a.audio.toggleRecord() })
	h.waitFor("some audio", func() bool {
		pcm, _, _ := h.a.audio.live.rec.snapshot()
		return len(pcm) > recordRate/10
	})
	h.close()
	s, err := history.Open(filepath.Join(dir, "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.Recordings("")
	if err != nil || len(recs) != 1 || recs[0].Duration < 100*time.Millisecond || recs[0].Tags != nil {
		t.Fatalf("recordings after closing: %+v %v", recs, err)
	}
	if _, err := os.Stat(recs[0].Path); err != nil || !strings.HasSuffix(recs[0].Path, ".wav") {
		t.Errorf("the recording's file %s: %v", recs[0].Path, err)
	}
}

// TestAudioRecovery: a recording interrupted by a crash keeps what was
// flushed and appears in the history at the next start.
func TestAudioRecovery(t *testing.T) {
	dir := t.TempDir()
	recDir := filepath.Join(dir, "recordings")
	os.MkdirAll(recDir, 0o755)
	w, err := wav.Create(filepath.Join(recDir, "rec-20260101-120000.000"+partSuffix), 32000, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(make([]float32, 48000)) // 1.5 s flushed
	w.Flush()
	w.Write(make([]float32, 32000)) // lost in the crash
	w.Abort()
	os.WriteFile(filepath.Join(recDir, "junk"+partSuffix), []byte("not a wav"), 0o644)

	h, _ := audioHarness(t, dir, &capture.Synth{})
	recs, _ := h.a.store.Recordings("")
	if len(recs) != 1 || recs[0].Duration != 1500*time.Millisecond || !strings.HasPrefix(recs[0].Name, "Recovered recording") || !strings.HasSuffix(recs[0].Path, "rec-20260101-120000.000.wav") {
		t.Fatalf("recovered: %+v", recs)
	}
	if !h.dialogShown() {
		t.Error("no dialog about the recovered recording")
	}
	if _, err := os.Stat(filepath.Join(recDir, "junk"+partSuffix)); err != nil {
		t.Errorf("a file without a valid header was touched: %v", err)
	}
}

// TestRenderPicture checks the picture's geometry: a loud band of mel bins
// is bright at its height, and a tag's timeline row is lit where its
// windows are.
func TestRenderPicture(t *testing.T) {
	spec := make([][]float32, 500) // 5 s
	for i := range spec {
		spec[i] = make([]float32, 128)
		for b := range spec[i] {
			spec[i][b] = -10
			if b >= 96 && b < 112 && i >= 250 {
				spec[i][b] = 5 // loud, high bins, second half
			}
		}
	}
	pal := palette{bg: color.NRGBA{255, 255, 255, 255}, fg: color.NRGBA{0, 0, 0, 255}, dim: color.NRGBA{128, 128, 128, 255},
		grid: color.NRGBA{230, 230, 230, 255}, accent: color.NRGBA{200, 0, 0, 255}}
	tg := &history.Tagging{Top: []history.Tag{{Index: 3, Label: "Siren", Prob: 1}},
		Windows: []history.WindowTag{{StartMS: 0, EndMS: 2500}, {StartMS: 2500, EndMS: 5000, Tags: []history.Tag{{Index: 3, Label: "Siren", Prob: 1}}}}}
	const w, h = 800, 400
	img := renderPicture(pictureInput{spec: spec, span: 5 * time.Second, tagging: tg, pal: pal}, w, h, 1)
	specBottom := h - picAxisH - (timelineRows*picRowH + picPadding)
	plotW := w - picPadding - picLabelW
	xAt := func(frac float64) int { return picLabelW + int(frac*float64(plotW)) }
	yBin := func(b int) int { return specBottom - 1 - b*(specBottom-picPadding)/128 }
	bright := colormap(1)
	dark := colormap(0)
	if got := img.RGBAAt(xAt(0.75), yBin(104)); got != bright {
		t.Errorf("loud band: %v, want %v", got, bright)
	}
	if got := img.RGBAAt(xAt(0.25), yBin(104)); got != dark {
		t.Errorf("quiet first half: %v, want %v", got, dark)
	}
	if got := img.RGBAAt(xAt(0.75), yBin(20)); got != dark {
		t.Errorf("quiet low bins: %v, want %v", got, dark)
	}
	rowY := specBottom + picAxisH + picPadding + picRowH/2
	accent := color.RGBA{200, 0, 0, 255}
	if got := img.RGBAAt(xAt(0.75), rowY); got != accent {
		t.Errorf("timeline where the siren is: %v, want %v", got, accent)
	}
	if got := img.RGBAAt(xAt(0.25), rowY); got != (color.RGBA{230, 230, 230, 255}) {
		t.Errorf("timeline before the siren: %v, want the grid colour", got)
	}
	// Degenerate sizes and inputs draw without panicking.
	renderPicture(pictureInput{pal: pal}, 10, 10, 1)
	renderPicture(pictureInput{spec: spec[:1], pal: pal}, 300, 300, 2)
	if tickStep(10*time.Minute, 600) != time.Minute || formatDuration(3725*time.Second) != "1:02:05" || formatTick(5*time.Second, 5*time.Second) != "5 s" {
		t.Error("axis labels")
	}
}

func TestAudioPromptSpans(t *testing.T) {
	r := history.Recording{Name: "Street", Duration: 25 * time.Second, Tags: &history.Tagging{
		Top: []history.Tag{{Index: 1, Label: "Car", Prob: 0.8}, {Index: 2, Label: "Horn", Prob: 0.4}, {Index: 3, Label: "Bird", Prob: 0.05}},
		Windows: []history.WindowTag{
			{StartMS: 0, EndMS: 10000, Tags: []history.Tag{{Index: 1, Label: "Car", Prob: 0.8}}},
			{StartMS: 5000, EndMS: 15000, Tags: []history.Tag{{Index: 1, Label: "Car", Prob: 0.7}, {Index: 2, Label: "Horn", Prob: 0.1}}},
			{StartMS: 10000, EndMS: 20000, Tags: []history.Tag{{Index: 2, Label: "Horn", Prob: 0.4}}},
			{StartMS: 15000, EndMS: 25000, Tags: []history.Tag{{Index: 1, Label: "Car", Prob: 0.5}}},
		}}}
	got := audioPrompt(r)
	want := "[recording: Street (0:25)]\nSounds an audio tagger recognised in it (AudioSet classes, probability, when):\n- Car: 80% at 0:00–0:15, 0:15–0:25\n- Horn: 40% at 0:10–0:20"
	if got != want {
		t.Errorf("prompt:\n%s\nwant:\n%s", got, want)
	}
	if got := titleFrom(recordingMessage(r, "Is it busy?")); got != "Is it busy? (Street)" {
		t.Errorf("title %q", got)
	}
	r.Tags = nil
	if !strings.Contains(recordingMessage(r, ""), defaultAudioQuestion) {
		t.Error("default question missing")
	}
	if titleFrom("[recording: x") != "[recording: x" {
		t.Error("title of plain text changed")
	}
}

// TestRenderAudioScreens renders the Audio screen with a tagged recording
// in both themes to testdata/screens/ for people to look at.
func TestRenderAudioScreens(t *testing.T) {
	out := filepath.Join("testdata", "screens")
	for _, mode := range []string{"light", "dark"} {
		t.Run(mode, func(t *testing.T) {
			h, _ := audioHarness(t, "", &capture.Synth{})
			h.ui(func() {
				h.a.cfg.Theme = mode
				h.a.applyTheme()
				h.a.show("audio")
			})
			h.loadTagger()
			// A 12-second demo signal, imported as a WAV file.
			src := filepath.Join(h.dir, "street.wav")
			w, _ := wav.Create(src, 44100, 1)
			sig := make([]float32, 12*44100)
			for i := range sig {
				sig[i] = capture.Demo(float64(i) / 44100)
			}
			w.Write(sig)
			w.Close()
			h.ui(func() { h.a.audio.importFile(src) })
			h.waitFor("the import to be tagged", func() bool {
				c := h.a.audio.cur
				return c != nil && c.Tags != nil && h.a.audio.spec != nil
			})
			h.ui(func() { h.a.audio.showPicture() })
			h.picShown()
			shot(t, h, filepath.Join(out, "audio-"+mode+".png"))
			h.load(tinyModel(t, h.dir))
			h.ui(func() { h.a.audio.attachToChat() })
			h.send("What can you hear in it?")
			shot(t, h, filepath.Join(out, "audio-chat-"+mode+".png"))
		})
	}
}

// TestCoreAudioEngine runs the real engine on the A-RWKV fixture (its
// configuration beside it): the app's tags are the audio package's, and
// the app imports, tags and stores the fixture's recording.
func TestCoreAudioEngine(t *testing.T) {
	fixture := filepath.Join("..", "testdata", "arwkv")
	dir := t.TempDir()
	for _, name := range []string{"mm.arwkv.pth", "mm.arwkv.json"} {
		b, err := os.ReadFile(filepath.Join(fixture, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	e := NewCoreAudioEngine()
	defer e.Unload()
	if _, err := e.Tag(context.Background(), make([]float32, 100), 32000); err == nil {
		t.Error("Tag without a model: no error")
	}
	if spec, err := e.Spectrogram(make([]float32, 32000), 32000); err != nil || len(spec) != 98 || len(spec[0]) != 128 {
		t.Errorf("spectrogram without a model: %d frames, %v", len(spec), err)
	}
	info, err := e.Load(context.Background(), filepath.Join(dir, "mm.arwkv.pth"), LoadOptions{Backend: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Labels) == 0 || info.Name != "mm.arwkv" || !strings.Contains(info.Summary, "classes") {
		t.Errorf("info %+v", info)
	}
	f, err := os.Open(filepath.Join(fixture, "mm.wav"))
	if err != nil {
		t.Fatal(err)
	}
	pcm, format, err := wav.ReadAll(f, 0)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Tag(context.Background(), pcm, format.Rate)
	if err != nil || len(res.Windows) == 0 || len(res.Top) == 0 {
		t.Fatalf("tag: %+v, %v", res, err)
	}
	if res.Top[0].Label != info.Labels[res.Top[0].Index] {
		t.Errorf("top tag %+v does not match label %q", res.Top[0], info.Labels[res.Top[0].Index])
	}
	// A live stream of the same audio gives windows as they complete.
	s, err := e.NewStream(format.Rate)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(context.Background(), pcm); err != nil {
		t.Fatal(err)
	}

	// In the app: import the fixture's WAV with the real tagger loaded.
	h := newHarness(t, newFakeEngine(), "", nil, func(o *Options) { o.Audio = NewCoreAudioEngine() })
	h.ui(func() {
		h.a.show("audio")
		h.a.audio.loadModel(filepath.Join(dir, "mm.arwkv.pth"))
	})
	h.waitFor("the tagger", func() bool { return h.a.audio.model != nil })
	h.ui(func() { h.a.audio.importFile(filepath.Join(fixture, "mm.wav")) })
	h.waitFor("the import to be tagged", func() bool { c := h.a.audio.cur; return c != nil && c.Tags != nil })
	recs, _ := h.a.store.Recordings("")
	if len(recs) != 1 || recs[0].Tags.Top[0].Index != res.Top[0].Index || recs[0].Model != "mm.arwkv.pth" {
		t.Errorf("stored %+v, want top class %d", recs, res.Top[0].Index)
	}
	if errs := h.errs(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
}

// TestAudioStop: tagging and importing can be stopped; a stopped import
// leaves no file, a stopped tagging no tags and no error.
func TestAudioStop(t *testing.T) {
	h, fa := audioHarness(t, "", &capture.Synth{})
	h.loadTagger()
	fa.hold = make(chan struct{})
	src := filepath.Join(h.dir, "in.wav")
	w, _ := wav.Create(src, 16000, 1)
	w.Write(make([]float32, 16000))
	w.Close()
	h.ui(func() { h.a.audio.importFile(src) })
	<-fa.hold // tagging started
	h.ui(func() {
		v := h.a.audio
		if v.tagBtn.Text != "Stop tagging" || v.tagBtn.Disabled() {
			t.Errorf("tag button %q (disabled %v) while tagging", v.tagBtn.Text, v.tagBtn.Disabled())
		}
		test.Tap(v.tagBtn)
	})
	h.waitFor("tagging to stop", func() bool { return len(h.a.audio.tagging) == 0 })
	h.ui(func() {
		v := h.a.audio
		if v.status.Text != "Tagging stopped." || v.cur == nil || v.cur.Tags != nil || v.tagBtn.Text != "Tag" {
			t.Errorf("after stop: status %q, tags %v, button %q", v.status.Text, v.cur.Tags, v.tagBtn.Text)
		}
	})
	if errs := h.errs(); len(errs) != 0 {
		t.Errorf("errors: %v", errs)
	}
	h.ui(func() { h.a.audio.showCredits() })
	if !h.dialogShown() {
		t.Error("no AudioSet attribution dialog")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(h.dir, "imports")
	if _, _, _, err := importAudio(ctx, src, dir); !errors.Is(err, context.Canceled) {
		t.Errorf("stopped import: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) != 0 {
		t.Errorf("a stopped import left %v", left)
	}
}

// TestAudioDeviceStops: a device that stops sending (unplugged) is
// reported while recording, and Stop keeps what was recorded.
func TestAudioDeviceStops(t *testing.T) {
	h, _ := audioHarness(t, "", &capture.Synth{StopAfter: 300 * time.Millisecond})
	h.ui(func() { h.a.audio.toggleRecord() })
	h.waitFor("the stall notice", func() bool { return strings.Contains(h.a.audio.status.Text, "No sound from the input device") })
	h.ui(func() { h.a.audio.toggleRecord() })
	h.waitFor("the recording to be saved", func() bool { return h.a.audio.live == nil && h.a.audio.cur != nil })
	h.ui(func() {
		if d := h.a.audio.cur.Duration; d < 250*time.Millisecond || d > 400*time.Millisecond {
			t.Errorf("kept %v, want about 0.3 s", d)
		}
	})
}

// BenchmarkRenderPicture draws a 10-minute recording's picture at
// 1000×420 pixels (what the app does on a background goroutine after each
// change).
func BenchmarkRenderPicture(b *testing.B) {
	spec := make([][]float32, 60000)
	for i := range spec {
		spec[i] = make([]float32, 128)
		for j := range spec[i] {
			spec[i][j] = float32((i*7+j*13)%50) / 5
		}
	}
	tg := &history.Tagging{}
	for k := 0; k < 5; k++ {
		tg.Top = append(tg.Top, history.Tag{Index: k, Label: fakeLabels[k], Prob: 0.5})
	}
	for s := int64(0); s < 600000; s += 5000 {
		tg.Windows = append(tg.Windows, history.WindowTag{StartMS: s, EndMS: s + 10000, Tags: tg.Top})
	}
	in := pictureInput{spec: spec, span: 10 * time.Minute, tagging: tg, pal: palette{accent: color.NRGBA{200, 0, 0, 255}}}
	for b.Loop() {
		renderPicture(in, 1000, 420, 1)
	}
}
