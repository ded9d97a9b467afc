// Package catalog lists the official RWKV-7 model files, downloads them with
// resume and verification, and imports model files the user already has.
//
// It knows nothing about the user interface: progress is reported through
// callbacks and pausing is done by cancelling the context passed to
// Downloader.Download, which keeps the partial file for a later resume.
package catalog

import (
	"fmt"
	"strings"
)

// baseURL is where BlinkDL publishes the RWKV-7 World checkpoints.
const baseURL = "https://huggingface.co/BlinkDL/rwkv-7-world/resolve/main/"

// Model describes one downloadable checkpoint.
type Model struct {
	// Name is a short human name, e.g. "RWKV-7 World 0.4B".
	Name string
	// File is the file name on the server and in the models folder.
	File string
	// URL is where the file is downloaded from.
	URL string
	// Size is the file size in bytes. It is exact when SizeExact is true and
	// an estimate (for display only) otherwise.
	Size      int64
	SizeExact bool
	// SHA256 is the lower-case hex digest of the file, or "" when no digest
	// is known; such a download is checked by size only.
	SHA256 string
	// Params is the parameter count, e.g. 450_830_000.
	Params int64
	// Layers and Embd are the model's depth and width.
	Layers, Embd int
	// Note is a one-line description shown in the catalog.
	Note string
}

// Verified reports whether a download of m can be checked against a
// published sha256 digest.
func (m Model) Verified() bool { return m.SHA256 != "" }

// Verification describes, for people, how a download of m is checked.
func (m Model) Verification() string {
	if m.Verified() {
		return "Checked against its published sha256 after download"
	}
	return "Unverified: no published sha256, so only the size is checked"
}

// Official returns the RWKV-7 World checkpoints published by BlinkDL,
// smallest first. The slice is freshly allocated on every call.
//
// Sizes and digests come from the Hugging Face tree listing and LFS
// pointers (commit b9edcafa). Only the 2.9B file's size is known to the
// byte; the others are rounded and used for display. No digest is known for
// the 1.5B file.
func Official() []Model {
	ms := []Model{
		{
			Name:   "RWKV-7 World 0.1B",
			File:   "RWKV-x070-World-0.1B-v2.8-20241210-ctx4096.pth",
			Size:   382_000_000,
			SHA256: "60c98129b9529963bff2c164b8ab4bd17c19332ae06dc2dcae32aa3a3739295a",
			Params: 191_080_000, Layers: 12, Embd: 768,
			Note: "Tiny and fast. Good for trying Goose on any machine.",
		},
		{
			Name:   "RWKV-7 World 0.4B",
			File:   "RWKV-x070-World-0.4B-v2.9-20250107-ctx4096.pth",
			Size:   902_000_000,
			SHA256: "c08cf602b33e59a5717b8f0cafaf7f04c50c1c67166e477aa2f47c5ca180da4a",
			Params: 450_830_000, Layers: 24, Embd: 1024,
			Note: "Small, quick on a laptop CPU.",
		},
		{
			Name:   "RWKV-7 World 1.5B",
			File:   "RWKV-x070-World-1.5B-v3-20250127-ctx4096.pth",
			Size:   3_060_000_000,
			Params: 1_527_670_000, Layers: 24, Embd: 2048,
			Note: "Balanced quality and speed.",
		},
		{
			Name:      "RWKV-7 World 2.9B",
			File:      "RWKV-x070-World-2.9B-v3-20250211-ctx4096.pth",
			Size:      5_895_796_446,
			SizeExact: true,
			SHA256:    "5d7901b91ef1646115db03d03d171370bca454061ad426a1256fda9e1c428cf8",
			Params:    2_948_070_000, Layers: 32, Embd: 2560,
			Note: "Best answers; wants a GPU or a fast CPU.",
		},
	}
	for i := range ms {
		ms[i].URL = baseURL + ms[i].File
	}
	return ms
}

// FormatBytes renders n bytes for people: "382 MB", "5.9 GB".
func FormatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	if v >= 100 {
		s = fmt.Sprintf("%.0f", v)
	}
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("kMGTPE"[exp]) + "B"
}

// FormatParams renders a parameter count: "450M", "2.9B".
func FormatParams(n int64) string {
	switch {
	case n >= 1e9:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e9), ".0") + "B"
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	}
	return fmt.Sprint(n)
}
