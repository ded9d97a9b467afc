package audio

import (
	"cmp"
	"slices"
	"time"
)

// Tag is one class's probability.
type Tag struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Prob  float32 `json:"prob"`
}

// Window is one analysis window of a recording: the clip from Start to End
// (End − Start is the model's clip length, or less for a recording's last,
// shorter window) and each class's probability (sigmoid of the logit).
type Window struct {
	Start, End time.Duration
	Probs      []float32
}

// Top returns the classes with probability at least threshold, best
// first, at most n of them (all of them when n <= 0).
func (w Window) Top(n int, threshold float32) []Tag {
	return top(w.Probs, n, threshold)
}

// Result is a whole recording's tagging: the timeline of windows and the
// recording's top tags.
type Result struct {
	Duration time.Duration
	Windows  []Window
	// Top holds the recording's tags, best first: each class scored by its
	// highest probability in any window, filtered by TagOptions.Top and
	// TagOptions.Threshold.
	Top []Tag
}

// Peak returns each class's highest probability over the windows.
func (r *Result) Peak() []float32 {
	return peak(r.Windows)
}

func peak(ws []Window) []float32 {
	if len(ws) == 0 {
		return nil
	}
	p := slices.Clone(ws[0].Probs)
	for _, w := range ws[1:] {
		for i, v := range w.Probs {
			p[i] = max(p[i], v)
		}
	}
	return p
}

// top ranks probs (ties by index) and keeps those >= threshold, at most n
// (all when n <= 0).
func top(probs []float32, n int, threshold float32) []Tag {
	idx := make([]int, 0, len(probs))
	for i, p := range probs {
		if p >= threshold {
			idx = append(idx, i)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(probs[b], probs[a]) })
	if n > 0 && len(idx) > n {
		idx = idx[:n]
	}
	out := make([]Tag, len(idx))
	for k, i := range idx {
		out[k] = Tag{Index: i, Label: LabelName(i, len(probs)), Prob: probs[i]}
	}
	return out
}

// Summary is a Result in the form `gooseapp tag --json` prints and
// POST /v1/audio/tags returns.
type Summary struct {
	Model    string          `json:"model,omitempty"`
	Duration float64         `json:"duration_s"`
	Tags     []Tag           `json:"tags"`
	Windows  []WindowSummary `json:"windows"`
}

// WindowSummary is one window of a Summary.
type WindowSummary struct {
	Start float64 `json:"start_s"`
	End   float64 `json:"end_s"`
	Tags  []Tag   `json:"tags"`
}

// Summary returns the recording's top tags (r.Top) and each window's top
// n tags with probability at least threshold (all when n <= 0).
func (r *Result) Summary(model string, n int, threshold float32) Summary {
	s := Summary{Model: model, Duration: r.Duration.Seconds(), Tags: r.Top, Windows: make([]WindowSummary, 0, len(r.Windows))}
	if s.Tags == nil {
		s.Tags = []Tag{}
	}
	for _, w := range r.Windows {
		s.Windows = append(s.Windows, WindowSummary{Start: w.Start.Seconds(), End: w.End.Seconds(), Tags: w.Top(n, threshold)})
	}
	return s
}
