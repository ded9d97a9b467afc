package ui

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/ui/history"
)

// AudioEngine tags audio with an A-RWKV model. The app calls it only from
// background goroutines, one call at a time. Tests use fakes.
type AudioEngine interface {
	// Load loads the tagger model at path, replacing any loaded one.
	Load(ctx context.Context, path string, opts LoadOptions) (AudioModelInfo, error)
	// Unload frees the loaded model, if any.
	Unload() error
	// Tag tags a whole recording of mono samples at rate: sliding windows
	// of the model's clip length and the recording's top tags.
	Tag(ctx context.Context, pcm []float32, rate int) (AudioResult, error)
	// NewStream starts tagging live audio at rate.
	NewStream(rate int) (AudioStream, error)
	// Spectrogram returns the log-mel features of pcm for drawing:
	// frames × bins, frames 10 ms apart. It works without a model.
	Spectrogram(pcm []float32, rate int) ([][]float32, error)
}

// AudioStream tags live audio.
type AudioStream interface {
	// Write appends samples and returns the windows they complete.
	Write(ctx context.Context, pcm []float32) ([]AudioWindow, error)
}

// AudioModelInfo describes a loaded tagger.
type AudioModelInfo struct {
	Path string
	// Name is the file name without extension.
	Name string
	// Summary describes the model: "A-RWKV-T, 527 classes, cpu".
	Summary string
	// Labels are the class names, by index.
	Labels []string
}

// AudioWindow is one analysis window's class probabilities.
type AudioWindow struct {
	Start, End time.Duration
	Probs      []float32
}

// AudioResult is a recording's tagging.
type AudioResult struct {
	Duration time.Duration
	Windows  []AudioWindow
	// Top is the recording's strongest classes, best first.
	Top []history.Tag
}

// Limits on what a stored tagging keeps.
const (
	keepTop       = 20   // recording top tags kept
	keepPerWindow = 20   // tags kept per window
	keepMinProb   = 0.01 // below this a tag is not kept
)

// topTags returns the n most probable classes of probs at or above min,
// best first.
func topTags(probs []float32, labels []string, n int, minProb float32) []history.Tag {
	idx := make([]int, 0, len(probs))
	for i, p := range probs {
		if p >= minProb {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case probs[a] > probs[b]:
			return -1
		case probs[a] < probs[b]:
			return 1
		}
		return 0
	})
	idx = idx[:min(n, len(idx))]
	out := make([]history.Tag, len(idx))
	for k, i := range idx {
		out[k] = history.Tag{Index: i, Label: label(labels, i), Prob: probs[i]}
	}
	return out
}

func label(labels []string, i int) string {
	if i < len(labels) {
		return labels[i]
	}
	return "class " + strconv.Itoa(i)
}

// windowTags keeps each window's strongest tags.
func windowTags(ws []AudioWindow, labels []string) []history.WindowTag {
	out := make([]history.WindowTag, len(ws))
	for i, w := range ws {
		out[i] = history.WindowTag{StartMS: w.Start.Milliseconds(), EndMS: w.End.Milliseconds(), Tags: topTags(w.Probs, labels, keepPerWindow, keepMinProb)}
	}
	return out
}

// tagging converts a result into what the history keeps.
func tagging(res AudioResult, labels []string) *history.Tagging {
	top := res.Top
	if len(top) > keepTop {
		top = top[:keepTop]
	}
	return &history.Tagging{Top: top, Windows: windowTags(res.Windows, labels)}
}

// liveTop ranks classes by their highest probability in any window so far
// (what the recording's top tags will be while it is still recording).
func liveTop(ws []history.WindowTag) []history.Tag {
	best := map[int]history.Tag{}
	for _, w := range ws {
		for _, t := range w.Tags {
			if b, ok := best[t.Index]; !ok || t.Prob > b.Prob {
				best[t.Index] = t
			}
		}
	}
	out := make([]history.Tag, 0, len(best))
	for _, t := range best {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b history.Tag) int {
		if a.Prob != b.Prob {
			if a.Prob > b.Prob {
				return -1
			}
			return 1
		}
		return a.Index - b.Index
	})
	return out[:min(keepTop, len(out))]
}

// Thresholds for the text a recording puts into a chat prompt.
const (
	promptTags    = 8    // at most this many tags
	promptMinProb = 0.1  // a tag weaker than this over the whole recording is left out
	promptWhen    = 0.25 // a window where the tag reaches this counts as "heard then"
)

// audioPrompt describes a recording for the language model: its name and
// length, then its top tags with their probabilities and the times they
// were heard.
func audioPrompt(r history.Recording) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[recording: %s (%s)]\n", r.Name, formatDuration(r.Duration))
	if r.Tags == nil {
		b.WriteString("The recording has not been tagged.")
		return b.String()
	}
	var tags []history.Tag
	for _, t := range r.Tags.Top {
		if t.Prob >= promptMinProb && len(tags) < promptTags {
			tags = append(tags, t)
		}
	}
	if len(tags) == 0 {
		b.WriteString("An audio tagger recognised no sound in it with confidence.")
		return b.String()
	}
	b.WriteString("Sounds an audio tagger recognised in it (AudioSet classes, probability, when):")
	for _, t := range tags {
		fmt.Fprintf(&b, "\n- %s: %.0f%%", t.Label, 100*t.Prob)
		if spans := heardSpans(r.Tags.Windows, t.Index); len(spans) > 0 {
			b.WriteString(" at ")
			b.WriteString(strings.Join(spans, ", "))
		}
	}
	return b.String()
}

// heardSpans merges the windows where class reaches promptWhen into time
// spans "0:05–0:20".
func heardSpans(ws []history.WindowTag, class int) []string {
	var spans []string
	var start, end int64 = -1, -1
	flush := func() {
		if start >= 0 {
			spans = append(spans, formatDuration(time.Duration(start)*time.Millisecond)+"–"+formatDuration(time.Duration(end)*time.Millisecond))
		}
		start, end = -1, -1
	}
	for _, w := range ws {
		var p float32
		for _, t := range w.Tags {
			if t.Index == class {
				p = t.Prob
			}
		}
		if p < promptWhen {
			flush()
			continue
		}
		if start >= 0 && w.StartMS <= end {
			end = max(end, w.EndMS)
			continue
		}
		flush()
		start, end = w.StartMS, w.EndMS
	}
	flush()
	return spans
}

// writeTagsCSV writes a recording's tags: the recording's top tags
// (window "all") then each window's.
func writeTagsCSV(w io.Writer, r history.Recording) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"start_s", "end_s", "rank", "index", "label", "prob"})
	if r.Tags != nil {
		row := func(start, end string, rank int, t history.Tag) {
			cw.Write([]string{start, end, strconv.Itoa(rank), strconv.Itoa(t.Index), t.Label, strconv.FormatFloat(float64(t.Prob), 'f', 4, 32)})
		}
		total := strconv.FormatFloat(r.Duration.Seconds(), 'f', 2, 64)
		for i, t := range r.Tags.Top {
			row("0.00", total, i+1, t)
		}
		for _, win := range r.Tags.Windows {
			for i, t := range win.Tags {
				row(strconv.FormatFloat(float64(win.StartMS)/1000, 'f', 2, 64), strconv.FormatFloat(float64(win.EndMS)/1000, 'f', 2, 64), i+1, t)
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// tagsExport is the JSON export of a recording's tags.
type tagsExport struct {
	Name       string              `json:"name"`
	File       string              `json:"file"`
	Created    time.Time           `json:"created"`
	DurationS  float64             `json:"duration_s"`
	Model      string              `json:"model"`
	Tags       []history.Tag       `json:"tags"`
	Timeline   []history.WindowTag `json:"timeline"`
	Untagged   bool                `json:"untagged,omitempty"`
	SampleRate int                 `json:"sample_rate"`
}

// writeTagsJSON writes a recording's tags as JSON.
func writeTagsJSON(w io.Writer, r history.Recording) error {
	e := tagsExport{Name: r.Name, File: r.Path, Created: r.Created, DurationS: r.Duration.Seconds(), Model: r.Model, SampleRate: recordRate,
		Tags: []history.Tag{}, Timeline: []history.WindowTag{}}
	if r.Tags == nil {
		e.Untagged = true
	} else {
		e.Tags, e.Timeline = r.Tags.Top, r.Tags.Windows
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(e)
}
