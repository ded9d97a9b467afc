package history

import (
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestRecordings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	s := open(t, path)
	a, err := s.AddRecording(Recording{Name: "Kitchen", Path: "/d/a.wav", Source: "Built-in mic", Duration: 12 * time.Second})
	if err != nil || a.ID == 0 || a.Created.IsZero() {
		t.Fatalf("add: %+v, %v", a, err)
	}
	tags := &Tagging{
		Top:     []Tag{{Index: 0, Label: "Speech", Prob: 0.9}, {Index: 74, Label: "Dog", Prob: 0.4}},
		Windows: []WindowTag{{StartMS: 0, EndMS: 10000, Tags: []Tag{{0, "Speech", 0.9}}}, {StartMS: 5000, EndMS: 12000, Tags: []Tag{{74, "Dog", 0.4}}}},
	}
	b, err := s.AddRecording(Recording{Name: "Garden 100%_", Path: "/d/b.wav", Created: a.Created.Add(time.Second), Model: "arwkv-t.pth", Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.Recordings("")
	if err != nil || len(list) != 2 || list[0].ID != b.ID {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if list, _ := s.Recordings("100%_"); len(list) != 1 || list[0].Name != "Garden 100%_" {
		t.Errorf("search with LIKE characters: %+v", list)
	}
	got, err := s.Recording(b.ID)
	if err != nil || got.Tags == nil || len(got.Tags.Windows) != 2 || got.Tags.Windows[1].Tags[0].Label != "Dog" || got.Model != "arwkv-t.pth" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if err := s.RenameRecording(a.ID, "Kitchen at night"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRecordingTags(a.ID, "m.pth", 13*time.Second, tags); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path) // survives reopening
	got, err = s.Recording(a.ID)
	if err != nil || got.Name != "Kitchen at night" || got.Duration != 13*time.Second || got.Tags == nil || got.Tags.Top[0].Label != "Speech" {
		t.Fatalf("after reopen: %+v, %v", got, err)
	}
	if r, err := s.RecordingByPath("/d/b.wav"); err != nil || r.ID != b.ID {
		t.Errorf("by path: %+v %v", r, err)
	}
	if err := s.DeleteRecording(a.ID); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.DeleteRecording(a.ID),
		s.RenameRecording(a.ID, "x"),
		s.SetRecordingTags(a.ID, "", 0, nil),
		func() error { _, err := s.Recording(a.ID); return err }(),
		func() error { _, err := s.RecordingByPath("/d/a.wav"); return err }(),
	} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted recording: %v, want ErrNotFound", err)
		}
	}
}
