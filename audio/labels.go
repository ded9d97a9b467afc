package audio

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"sync"

	"github.com/goose-rwkv/goose/assets"
)

// Label is one AudioSet class: its output index, its ontology id and its
// display name.
type Label struct {
	Index int
	MID   string // e.g. "/m/09x0r"
	Name  string // e.g. "Speech"
}

// AudioSetClasses is the number of AudioSet classes, the output width of
// the released A-RWKV models.
const AudioSetClasses = 527

// labels parses the embedded class list once; the result is never
// modified (Labels returns copies).
var labels = sync.OnceValue(func() []Label {
	ls, err := parseLabels(assets.AudioSetLabels())
	if err != nil {
		panic("audio: embedded AudioSet labels: " + err.Error()) // a build defect, caught by TestLabels
	}
	return ls
})

// Labels returns the 527 AudioSet classes in output order (Labels()[i] is
// output i of a model with 527 classes). The names are Google's AudioSet
// ontology, CC BY-SA 4.0; see LabelsNotice.
func Labels() []Label {
	return append([]Label(nil), labels()...)
}

// LabelsNotice returns the attribution that must ship with the names.
func LabelsNotice() string { return assets.AudioSetNotice() }

// LabelName returns the name of output i of a model with n classes: the
// AudioSet name when n is 527, "class i" otherwise.
func LabelName(i, n int) string {
	if n == AudioSetClasses && i >= 0 && i < n {
		return labels()[i].Name
	}
	return "class " + strconv.Itoa(i)
}

func parseLabels(data []byte) ([]Label, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = 3
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || recs[0][0] != "index" {
		return nil, fmt.Errorf("no header line")
	}
	out := make([]Label, 0, len(recs)-1)
	for i, rec := range recs[1:] {
		idx, err := strconv.Atoi(rec[0])
		if err != nil || idx != i {
			return nil, fmt.Errorf("line %d: index %q, want %d", i+2, rec[0], i)
		}
		out = append(out, Label{Index: idx, MID: rec[1], Name: rec[2]})
	}
	if len(out) != AudioSetClasses {
		return nil, fmt.Errorf("%d classes, want %d", len(out), AudioSetClasses)
	}
	return out, nil
}
