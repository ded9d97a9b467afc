package audio

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goose-rwkv/goose/audio/wav"
	"github.com/goose-rwkv/goose/internal/npy"
)

const fixtureDir = "../testdata/arwkv"

func openFixture(t testing.TB) *Tagger {
	t.Helper()
	tg, err := Open(filepath.Join(fixtureDir, "mm.arwkv.pth"), Options{Backend: "cpu", Config: filepath.Join(fixtureDir, "mm.arwkv.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	return tg
}

func readFixtureWAV(t testing.TB) ([]float32, int) {
	t.Helper()
	f, err := os.Open(filepath.Join(fixtureDir, "mm.wav"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, format, err := wav.ReadAll(f, 1<<22)
	if err != nil {
		t.Fatal(err)
	}
	return s, format.Rate
}

func sigmoid(x float32) float64 { return 1 / (1 + math.Exp(-float64(x))) }

func TestLabels(t *testing.T) {
	ls := Labels()
	if len(ls) != 527 || ls[0].Name != "Speech" || ls[0].MID != "/m/09x0r" || ls[526].Name != "Field recording" {
		t.Fatalf("%d labels, first %+v, last %+v", len(ls), ls[0], ls[len(ls)-1])
	}
	for i, l := range ls {
		if l.Index != i || l.Name == "" || !strings.HasPrefix(l.MID, "/") {
			t.Fatalf("label %d = %+v", i, l)
		}
	}
	ls[0].Name = "changed"
	if Labels()[0].Name != "Speech" {
		t.Error("Labels returned shared storage")
	}
	if LabelName(1, 527) != "Male speech, man speaking" || LabelName(1, 37) != "class 1" {
		t.Errorf("LabelName: %q, %q", LabelName(1, 527), LabelName(1, 37))
	}
	if !strings.Contains(LabelsNotice(), "CC BY-SA 4.0") {
		t.Error("notice lacks the CC BY-SA 4.0 attribution")
	}
}

func TestTop(t *testing.T) {
	w := Window{Probs: []float32{0.1, 0.9, 0.5, 0.9, 0.05}}
	got := w.Top(3, 0)
	if len(got) != 3 || got[0].Index != 1 || got[1].Index != 3 || got[2].Index != 2 || got[0].Label != "class 1" {
		t.Fatalf("Top(3, 0) = %+v", got)
	}
	if got := w.Top(0, 0.5); len(got) != 3 {
		t.Errorf("Top(0, 0.5) = %+v, want the three ≥ 0.5", got)
	}
	if got := w.Top(-1, 0.95); len(got) != 0 {
		t.Errorf("Top(-1, 0.95) = %+v, want none", got)
	}
}

// TestTagFixture tags mm.wav: its first window holds exactly the frames of
// the reference input, so its probabilities are the fixture's logits
// through a sigmoid; the second window covers the end.
func TestTagFixture(t *testing.T) {
	tg := openFixture(t)
	info := tg.Info()
	if info.Classes != 37 || info.Width != 128 || info.Layers != 2 || info.SampleRate != 32000 || info.Clip != 1300*time.Millisecond {
		t.Fatalf("info %+v", info)
	}
	pcm, rate := readFixtureWAV(t)
	res, err := tg.Tag(context.Background(), pcm, rate, TagOptions{Top: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Windows) != 2 || res.Windows[0].Start != 0 || res.Windows[1].Start != 650*time.Millisecond || res.Windows[1].End != res.Duration {
		t.Fatalf("windows %v, duration %v", windowTimes(res.Windows), res.Duration)
	}
	want, err := npy.ReadFile(filepath.Join(fixtureDir, "mm.arwkv_logits.npy"))
	if err != nil {
		t.Fatal(err)
	}
	var maxd float64
	for i, p := range res.Windows[0].Probs {
		maxd = max(maxd, math.Abs(float64(p)-sigmoid(want.Data[i])))
	}
	if maxd > 1e-4 {
		t.Errorf("window 0 probabilities differ from the fixture by %.3g", maxd)
	}
	top := res.Windows[0].Top(5, 0)
	for i, c := range []int{1, 15, 14, 8, 3} {
		if top[i].Index != c {
			t.Errorf("top %d = %d, want %d", i, top[i].Index, c)
		}
	}
	if len(res.Top) != 5 {
		t.Errorf("Result.Top has %d tags, want 5", len(res.Top))
	}
	peak := res.Peak()
	for i := range res.Top[1:] {
		if res.Top[i].Prob < res.Top[i+1].Prob {
			t.Errorf("Result.Top not best first: %+v", res.Top)
		}
	}
	if res.Top[0].Prob != max(res.Windows[0].Probs[res.Top[0].Index], res.Windows[1].Probs[res.Top[0].Index]) || res.Top[0].Prob != peak[res.Top[0].Index] {
		t.Errorf("Result.Top[0] %+v is not the class's peak", res.Top[0])
	}
}

func windowTimes(ws []Window) [][2]time.Duration {
	out := make([][2]time.Duration, len(ws))
	for i, w := range ws {
		out[i] = [2]time.Duration{w.Start, w.End}
	}
	return out
}

// TestStreamMatchesTag writes a recording in random pieces: the windows
// are those of one Tag call, value for value, and the stream keeps only
// about one clip of samples.
func TestStreamMatchesTag(t *testing.T) {
	tg := openFixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	pcm := make([]float32, 32000*9)
	for i := range pcm {
		pcm[i] = float32(0.3*math.Sin(float64(i)*0.01*(1+float64(i/32000)))) + float32(rng.NormFloat64()*0.01)
	}
	whole, err := tg.Tag(context.Background(), pcm, 32000, TagOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(whole.Windows); n != 13 {
		t.Fatalf("%d windows for 9 s with 1.3 s clips every 0.65 s, want 13", n)
	}
	s := tg.NewStream(32000, TagOptions{Batch: 1})
	var got []Window
	for off := 0; off < len(pcm); {
		n := min(len(pcm)-off, rng.IntN(20000))
		ws, err := s.Write(context.Background(), pcm[off:off+n])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ws...)
		off += n
		if len(s.buf) > s.clip+20000 {
			t.Fatalf("stream holds %d samples", len(s.buf))
		}
	}
	ws, err := s.Flush(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, ws...)
	if len(got) != len(whole.Windows) {
		t.Fatalf("stream gave %d windows, Tag %d", len(got), len(whole.Windows))
	}
	for i := range got {
		a, b := got[i], whole.Windows[i]
		if a.Start != b.Start || a.End != b.End {
			t.Errorf("window %d: stream %v–%v, Tag %v–%v", i, a.Start, a.End, b.Start, b.End)
		}
		for j := range a.Probs {
			if d := math.Abs(float64(a.Probs[j] - b.Probs[j])); d > 1e-5 {
				t.Fatalf("window %d class %d: stream %g, Tag %g", i, j, a.Probs[j], b.Probs[j])
			}
		}
	}
	if _, err := s.Write(context.Background(), pcm[:10]); err == nil {
		t.Error("Write after Flush accepted")
	}
}

// TestTagOtherRate: audio at 16 kHz is resampled; the tags of mm.wav
// taken down to 16 kHz and given at that rate stay close.
func TestTagOtherRate(t *testing.T) {
	tg := openFixture(t)
	pcm, _ := readFixtureWAV(t)
	half := make([]float32, len(pcm)/2)
	for i := range half {
		half[i] = (pcm[2*i] + pcm[2*i+1]) / 2
	}
	res, err := tg.Tag(context.Background(), half, 16000, TagOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Duration - 1400*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("duration %v, want 1.4 s", res.Duration)
	}
	if len(res.Windows) != 2 {
		t.Fatalf("%d windows", len(res.Windows))
	}
}

func TestTagErrors(t *testing.T) {
	tg := openFixture(t)
	ctx := context.Background()
	if _, err := tg.Tag(ctx, make([]float32, 100), 0, TagOptions{}); err == nil {
		t.Error("rate 0 accepted")
	}
	if _, err := tg.Tag(ctx, make([]float32, 100), 32000, TagOptions{Hop: time.Hour}); err == nil || !strings.Contains(err.Error(), "hop") {
		t.Errorf("hop of an hour: %v", err)
	}
	if _, err := tg.NewStream(-5, TagOptions{}).Write(ctx, nil); err == nil {
		t.Error("stream at -5 Hz accepted")
	}
	res, err := tg.Tag(ctx, nil, 32000, TagOptions{})
	if err != nil || len(res.Windows) != 0 || res.Duration != 0 {
		t.Errorf("empty recording: %+v, %v", res, err)
	}
	short, err := tg.Tag(ctx, make([]float32, 100), 32000, TagOptions{})
	if err != nil || len(short.Windows) != 1 {
		t.Errorf("100 samples: %+v, %v", short, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tg.Tag(cctx, make([]float32, 32000*5), 32000, TagOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Tag: %v", err)
	}
	tg.Close()
	if _, err := tg.Tag(ctx, make([]float32, 32000), 32000, TagOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Tag after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(fixtureDir, "mm.arwkv.pth"), Options{}); err == nil || !strings.Contains(err.Error(), "pos_embed") {
		t.Errorf("fixture with the released config: %v, want a pos_embed shape error", err)
	}
	if _, err := Open("nonexistent.pth", Options{}); err == nil {
		t.Error("missing file accepted")
	}
}

func TestSpectrogram(t *testing.T) {
	tg := openFixture(t)
	pcm, rate := readFixtureWAV(t)
	sp, err := tg.Spectrogram(pcm, rate)
	if err != nil {
		t.Fatal(err)
	}
	if len(sp) != 138 || len(sp[0]) != 64 {
		t.Fatalf("spectrogram %d×%d, want 138×64", len(sp), len(sp[0]))
	}
}

// TestTagCUDA tags a recording on the GPU (several windows, batched) and
// compares every window's probabilities with the CPU's.
func TestTagCUDA(t *testing.T) {
	gpu, err := Open(filepath.Join(fixtureDir, "mm.arwkv.pth"), Options{Backend: "cuda", Config: filepath.Join(fixtureDir, "mm.arwkv.json")})
	if err != nil {
		if os.Getenv("GOOSE_CUDA_REQUIRED") == "" {
			t.Skip("cuda:", err)
		}
		t.Fatal(err)
	}
	defer gpu.Close()
	if gpu.Info().Backend != "cuda" {
		t.Fatalf("backend %q", gpu.Info().Backend)
	}
	cpu := openFixture(t)
	pcm := make([]float32, 32000*6)
	for i := range pcm {
		pcm[i] = float32(0.3 * math.Sin(float64(i)*0.01*(1+float64(i/16000))))
	}
	ctx := context.Background()
	want, err := cpu.Tag(ctx, pcm, 32000, TagOptions{Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	got, err := gpu.Tag(ctx, pcm, 32000, TagOptions{Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Windows) != len(want.Windows) || len(got.Windows) < 5 {
		t.Fatalf("GPU %d windows, CPU %d", len(got.Windows), len(want.Windows))
	}
	for i := range got.Windows {
		for j, p := range got.Windows[i].Probs {
			if d := math.Abs(float64(p - want.Windows[i].Probs[j])); d > 1e-4 {
				t.Fatalf("window %d class %d: GPU %g, CPU %g", i, j, p, want.Windows[i].Probs[j])
			}
		}
	}
}

// TestConcurrentTag: several goroutines tag with one Tagger (as the
// server's requests do) and get what one call alone gets.
func TestConcurrentTag(t *testing.T) {
	tg := openFixture(t)
	pcm, rate := readFixtureWAV(t)
	ctx := context.Background()
	want, err := tg.Tag(ctx, pcm, rate, TagOptions{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			got, err := tg.Tag(ctx, pcm, rate, TagOptions{Batch: 1 + i%2})
			if err == nil {
				for w := range got.Windows {
					for c, p := range got.Windows[w].Probs {
						if math.Abs(float64(p-want.Windows[w].Probs[c])) > 1e-6 {
							err = fmt.Errorf("goroutine %d window %d class %d: %g, alone %g", i, w, c, p, want.Windows[w].Probs[c])
						}
					}
				}
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
