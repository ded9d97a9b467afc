package history

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// imagesSchema adds the images messages carry; Open runs it. An image is
// stored once however many messages refer to it: its key is the SHA-256
// of its bytes (content-addressed), and a message refers to it by that
// key in its text (see ui's image markers).
const imagesSchema = `
CREATE TABLE IF NOT EXISTS images (
	key     TEXT    PRIMARY KEY,
	name    TEXT    NOT NULL,
	data    BLOB    NOT NULL,
	created INTEGER NOT NULL
);
`

// ImageKey returns the key an image's bytes are stored under: the hex
// SHA-256 of data.
func ImageKey(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// PutImage stores an image's encoded bytes (PNG, JPEG, ...) with the file
// name it came from and returns its key. Storing the same bytes again
// keeps the first copy.
func (s *Store) PutImage(name string, data []byte) (string, error) {
	if len(data) == 0 {
		return "", errors.New("history: store image: no data")
	}
	key := ImageKey(data)
	if _, err := s.db.Exec(`INSERT OR IGNORE INTO images (key, name, data, created) VALUES (?, ?, ?, ?)`,
		key, name, data, ms(time.Now())); err != nil {
		return "", wrap("store image", err)
	}
	return key, nil
}

// Image returns a stored image's bytes and name; ErrNotFound when the
// store has none under key.
func (s *Store) Image(key string) (name string, data []byte, err error) {
	err = s.db.QueryRow(`SELECT name, data FROM images WHERE key = ?`, key).Scan(&name, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil, fmt.Errorf("history: image %.12s: %w", key, ErrNotFound)
	}
	if err != nil {
		return "", nil, wrap("read image", err)
	}
	return name, data, nil
}

// pruneImages deletes the images no message refers to any more (a message
// refers to an image by its key in its text).
func (s *Store) pruneImages() error {
	_, err := s.db.Exec(`DELETE FROM images WHERE NOT EXISTS (SELECT 1 FROM messages WHERE instr(messages.content, images.key) > 0)`)
	return wrap("prune images", err)
}
