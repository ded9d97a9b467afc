// Package assets holds the data files that ship inside the Goose binary:
// the RWKV World tokenizer vocabulary and the AudioSet class names, each
// with its license notice, and the app's icon.
//
// The files are embedded with go:embed, so a built program needs nothing
// beside itself to tokenize text.
package assets

import _ "embed" // for go:embed

//go:embed rwkv_vocab_v20230424.txt
var worldVocab string

//go:embed NOTICE.md
var notice string

//go:embed goose.svg
var icon string

//go:embed audioset/class_labels_indices.csv
var audioSetLabels string

//go:embed audioset/NOTICE.md
var audioSetNotice string

// WorldVocab returns the RWKV World tokenizer vocabulary
// (rwkv_vocab_v20230424.txt, 65,529 lines of "<id> <python literal> <length>").
// Each call returns a fresh copy, so the caller may keep or modify it.
// Package core/tokenizer parses it; see tokenizer.World.
func WorldVocab() []byte {
	return []byte(worldVocab)
}

// Notice returns the text of NOTICE.md: where the World vocabulary comes from
// and its license (Apache-2.0). Programs that ship the vocabulary ship this
// notice with it.
func Notice() string {
	return notice
}

// AudioSetLabels returns class_labels_indices.csv: a header line
// "index,mid,display_name" and the 527 AudioSet classes in the order of an
// AudioSet tagger's outputs. Each call returns a fresh copy. Package audio
// parses it; see audio.Labels.
func AudioSetLabels() []byte {
	return []byte(audioSetLabels)
}

// AudioSetNotice returns the attribution that ships with the AudioSet class
// names: labels CC BY 4.0, ontology names CC BY-SA 4.0 (Google).
func AudioSetNotice() string {
	return audioSetNotice
}

// Icon returns Goose's icon, an SVG image (goose.svg, drawn for this
// project). Each call returns a fresh copy.
func Icon() []byte {
	return []byte(icon)
}
