package history

import (
	"bytes"
	"compress/flate"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// Model states are the bulk of a history (21.6 MB a reply for a 2.9B
// model), so the store keeps few of them and compresses those:
//
//   - Finish keeps the state after a reply, and among its branch's earlier
//     replies only the one before it (the start of the turn that Regenerate
//     and editing the last message reuse) and those that another branch's
//     such turn reuses; the others are dropped. Continuing any branch
//     reads its last reply's state; reaching further back reads the branch
//     from its start instead.
//   - PruneStates keeps the total under a budget, dropping the states of
//     the least recently updated conversations first.
//   - Stored states are compressed (packState): the float32 values' bytes
//     regrouped by position, then DEFLATE.

// DefaultStateBudget is the total size of stored states Finish keeps the
// history under (see PruneStates).
const DefaultStateBudget = 2 << 30

// maxStateBytes bounds an unpacked state (a damaged or crafted database
// must not make State allocate without limit). The largest model state
// Goose reads, 61 layers of a 14B model, is about 130 MB.
const maxStateBytes = 1 << 30

// packMagic starts a packed state; a blob without it is stored as is.
var packMagic = []byte("GZS1")

// packState compresses a serialized state: magic, the length (uint64 LE),
// then DEFLATE (fast level) of the bytes regrouped so that byte k of every
// 4-byte word comes together: the sign-and-exponent bytes of float32
// values are alike and compress well, the low mantissa bytes barely.
func packState(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Write(packMagic)
	out.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(b))))
	zw, err := flate.NewWriter(&out, flate.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(shuffle(b)); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// unpackState reverses packState; blobs stored before compression (no
// magic) come back unchanged.
func unpackState(b []byte) ([]byte, error) {
	if !bytes.HasPrefix(b, packMagic) {
		return b, nil
	}
	if len(b) < len(packMagic)+8 {
		return nil, errors.New("packed state: truncated header")
	}
	n := binary.LittleEndian.Uint64(b[len(packMagic):])
	if n > maxStateBytes {
		return nil, fmt.Errorf("packed state: %d bytes, more than %d", n, maxStateBytes)
	}
	zr := flate.NewReader(bytes.NewReader(b[len(packMagic)+8:]))
	defer zr.Close()
	s := make([]byte, n)
	if _, err := io.ReadFull(zr, s); err != nil {
		return nil, fmt.Errorf("packed state: %w", err)
	}
	if k, _ := zr.Read(make([]byte, 1)); k != 0 {
		return nil, errors.New("packed state: longer than its header says")
	}
	return unshuffle(s), nil
}

// shuffle regroups b: byte k of every 4-byte word, for k = 0..3, then the
// tail that does not fill a word.
func shuffle(b []byte) []byte {
	out := make([]byte, len(b))
	w := len(b) / 4
	for i := range w {
		out[i], out[w+i], out[2*w+i], out[3*w+i] = b[4*i], b[4*i+1], b[4*i+2], b[4*i+3]
	}
	copy(out[4*w:], b[4*w:])
	return out
}

func unshuffle(s []byte) []byte {
	out := make([]byte, len(s))
	w := len(s) / 4
	for i := range w {
		out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = s[i], s[w+i], s[2*w+i], s[3*w+i]
	}
	copy(out[4*w:], s[4*w:])
	return out
}

// keepStates drops the states that no longer pay after message id got
// one: those of id's ancestors, except its grandparent (the state before
// id's turn) and any ancestor that is the grandparent of a leaf of another
// branch. tx is the transaction of the write.
func keepStates(tx *sql.Tx, id int64) error {
	_, err := tx.Exec(`WITH RECURSIVE up(id, depth) AS (
			SELECT parent, 1 FROM messages WHERE id = ?1 AND parent != 0
			UNION ALL
			SELECT m.parent, up.depth + 1 FROM messages m JOIN up ON m.id = up.id WHERE m.parent != 0
		)
		UPDATE messages SET state = NULL, state_key = ''
		WHERE state IS NOT NULL
		  AND id IN (SELECT id FROM up WHERE depth > 2)
		  AND NOT EXISTS (
			SELECT 1 FROM messages c JOIN messages g ON g.parent = c.id
			WHERE c.parent = messages.id
			  AND NOT EXISTS (SELECT 1 FROM messages x WHERE x.parent = g.id))`, id)
	return err
}

// Usage is how much disk a history takes.
type Usage struct {
	// FileBytes is the database with its write-ahead log.
	FileBytes int64
	// StateBytes is the part held by stored model states (compressed), in
	// States messages.
	StateBytes int64
	States     int
}

// Usage measures the history's size on disk.
func (s *Store) Usage() (Usage, error) {
	var u Usage
	var n sql.NullInt64
	if err := s.db.QueryRow(`SELECT SUM(LENGTH(state)), COUNT(state) FROM messages`).Scan(&n, &u.States); err != nil {
		return u, wrap("usage", err)
	}
	u.StateBytes = n.Int64
	if s.path != "" {
		for _, p := range []string{s.path, s.path + "-wal"} {
			if st, err := os.Stat(p); err == nil {
				u.FileBytes += st.Size()
			}
		}
	}
	return u, nil
}

// PruneStates drops stored states, those of the least recently updated
// conversations first, until they total at most budget bytes. Messages are
// kept; a conversation without states is read again from its start when
// it is continued.
func (s *Store) PruneStates(budget int64) error {
	u, err := s.Usage()
	if err != nil || u.StateBytes <= budget {
		return err
	}
	rows, err := s.db.Query(`SELECT c.id, SUM(LENGTH(m.state)) FROM conversations c JOIN messages m ON m.conversation = c.id
		WHERE m.state IS NOT NULL GROUP BY c.id ORDER BY c.updated ASC, c.id ASC`)
	if err != nil {
		return wrap("prune states", err)
	}
	var drop []int64
	total := u.StateBytes
	for rows.Next() && total > budget {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return wrap("prune states", err)
		}
		drop = append(drop, id)
		total -= n
	}
	rows.Close()
	for _, id := range drop {
		if err := s.ClearConversationStates(id); err != nil {
			return err
		}
	}
	return nil
}

// Compact gives the space of deleted messages and states back to the file
// system (VACUUM); it rewrites the database and can take a while.
func (s *Store) Compact() error {
	if _, err := s.db.Exec(`VACUUM`); err != nil {
		return wrap("compact", err)
	}
	if !s.memory {
		if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			return wrap("compact", err)
		}
	}
	return nil
}
