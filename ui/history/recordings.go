package history

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// recordingsSchema adds the audio recordings table; Open runs it.
const recordingsSchema = `
CREATE TABLE IF NOT EXISTS recordings (
	id       INTEGER PRIMARY KEY,
	name     TEXT    NOT NULL,
	path     TEXT    NOT NULL,
	created  INTEGER NOT NULL,
	duration INTEGER NOT NULL DEFAULT 0,
	source   TEXT    NOT NULL DEFAULT '',
	model    TEXT    NOT NULL DEFAULT '',
	tags     TEXT    NOT NULL DEFAULT ''
);
`

// Recording is an audio recording (or imported file) kept by the app: a
// WAV file in the data directory and the tags found in it.
type Recording struct {
	ID   int64
	Name string
	// Path is the WAV file (32 kHz mono).
	Path    string
	Created time.Time
	// Duration of the audio.
	Duration time.Duration
	// Source says where it came from: the input device's name, or
	// "import: file.mp3".
	Source string
	// Model is the tagger model's file name the tags came from; "" when
	// the recording has not been tagged.
	Model string
	// Tags is the tagging, nil when there is none.
	Tags *Tagging
}

// Tagging is what a tagger found in a recording: its top tags and the
// strongest tags of each analysis window.
type Tagging struct {
	Top     []Tag       `json:"top"`
	Windows []WindowTag `json:"windows"`
}

// Tag is one AudioSet class's probability.
type Tag struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Prob  float32 `json:"prob"`
}

// WindowTag is one analysis window: its span in the recording and its
// strongest tags.
type WindowTag struct {
	StartMS int64 `json:"start_ms"`
	EndMS   int64 `json:"end_ms"`
	Tags    []Tag `json:"tags"`
}

func scanRecording(row scanner) (Recording, error) {
	var r Recording
	var created, dur int64
	var tags string
	if err := row.Scan(&r.ID, &r.Name, &r.Path, &created, &dur, &r.Source, &r.Model, &tags); err != nil {
		return Recording{}, err
	}
	r.Created, r.Duration = fromMS(created), time.Duration(dur)*time.Millisecond
	if tags != "" {
		var t Tagging
		if err := json.Unmarshal([]byte(tags), &t); err != nil {
			return Recording{}, fmt.Errorf("recording %d: stored tags: %w", r.ID, err)
		}
		r.Tags = &t
	}
	return r, nil
}

func tagsJSON(t *Tagging) (string, error) {
	if t == nil {
		return "", nil
	}
	b, err := json.Marshal(t)
	return string(b), err
}

const recordingCols = `id, name, path, created, duration, source, model, tags`

// AddRecording stores r (its ID and, when zero, Created are set) and
// returns it.
func (s *Store) AddRecording(r Recording) (Recording, error) {
	if r.Created.IsZero() {
		r.Created = time.Now()
	}
	tags, err := tagsJSON(r.Tags)
	if err != nil {
		return Recording{}, wrap("add recording", err)
	}
	res, err := s.db.Exec(`INSERT INTO recordings (name, path, created, duration, source, model, tags) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Name, r.Path, ms(r.Created), r.Duration.Milliseconds(), r.Source, r.Model, tags)
	if err != nil {
		return Recording{}, wrap("add recording", err)
	}
	r.ID, err = res.LastInsertId()
	return r, wrap("add recording", err)
}

// Recording returns the recording with id.
func (s *Store) Recording(id int64) (Recording, error) {
	r, err := scanRecording(s.db.QueryRow(`SELECT `+recordingCols+` FROM recordings WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, fmt.Errorf("history: recording %d: %w", id, ErrNotFound)
	}
	return r, wrap("recording", err)
}

// Recordings lists the recordings whose name contains query (all when it
// is empty), newest first.
func (s *Store) Recordings(query string) ([]Recording, error) {
	return queryAll(s.db, "recordings", scanRecording,
		`SELECT `+recordingCols+` FROM recordings WHERE name LIKE ? ESCAPE '\' ORDER BY created DESC, id DESC`, "%"+escapeLike(query)+"%")
}

// RecordingByPath returns the recording whose file is path.
func (s *Store) RecordingByPath(path string) (Recording, error) {
	r, err := scanRecording(s.db.QueryRow(`SELECT `+recordingCols+` FROM recordings WHERE path = ? ORDER BY id LIMIT 1`, path))
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, fmt.Errorf("history: recording of %s: %w", path, ErrNotFound)
	}
	return r, wrap("recording", err)
}

// RenameRecording sets a recording's name.
func (s *Store) RenameRecording(id int64, name string) error {
	res, err := s.db.Exec(`UPDATE recordings SET name = ? WHERE id = ?`, name, id)
	return wrap("rename recording", mustAffect(res, err, "recording", id))
}

// SetRecordingTags stores a recording's tagging, the model it came from
// and its duration.
func (s *Store) SetRecordingTags(id int64, model string, duration time.Duration, t *Tagging) error {
	tags, err := tagsJSON(t)
	if err != nil {
		return wrap("set recording tags", err)
	}
	res, err2 := s.db.Exec(`UPDATE recordings SET model = ?, duration = ?, tags = ? WHERE id = ?`, model, duration.Milliseconds(), tags, id)
	return wrap("set recording tags", mustAffect(res, err2, "recording", id))
}

// DeleteRecording removes a recording from the store (not its file).
func (s *Store) DeleteRecording(id int64) error {
	res, err := s.db.Exec(`DELETE FROM recordings WHERE id = ?`, id)
	return wrap("delete recording", mustAffect(res, err, "recording", id))
}
