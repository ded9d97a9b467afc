package history

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
)

// Recovery says how OpenOrRecover got a usable store after the database
// at Path could not be opened. It is an error (to show people): Err is
// the cause.
type Recovery struct {
	Path string
	Err  error
	// MovedTo is where the damaged database was moved, with its -wal and
	// -shm files beside it; "" when nothing was moved. Nothing is deleted.
	MovedTo string
	// InMemory reports that the store lives in memory: conversations of
	// this session are not saved (the data folder cannot be written).
	InMemory bool
}

func (r *Recovery) Error() string {
	cause := strings.TrimPrefix(r.Err.Error(), "history: ") // no "history: history:"
	switch {
	case r.InMemory:
		return fmt.Sprintf("history: cannot use %s, so conversations are kept in memory only and will be lost on quit: %s", r.Path, cause)
	case r.MovedTo != "":
		return fmt.Sprintf("history: %s was damaged; it was moved to %s and a new history started: %s", r.Path, r.MovedTo, cause)
	}
	return "history: " + cause
}

func (r *Recovery) Unwrap() error { return r.Err }

// OpenOrRecover opens the database at path like Open, and when that fails
// still returns a usable store with a *Recovery saying what happened, so
// the app can open its window and tell:
//
//   - a damaged file (not a database, or a malformed one) is moved aside to
//     PATH.damaged-TIME (never deleted) and a fresh database is created;
//   - a folder that cannot be used (unreadable, read-only, not a folder)
//     gets an in-memory store: the app works, nothing is saved.
//
// The error is non-nil only when not even an in-memory store opens.
func OpenOrRecover(path string) (*Store, *Recovery, error) {
	s, err := Open(path)
	if err == nil {
		return s, nil, nil
	}
	rec := &Recovery{Path: path, Err: err}
	if damaged(err) {
		moved, merr := moveAside(path)
		if merr == nil {
			rec.MovedTo = moved
			if s, err := Open(path); err == nil {
				return s, rec, nil
			} else {
				rec.Err = fmt.Errorf("%w; a new database could not be created either: %v", rec.Err, err)
			}
		} else {
			rec.Err = fmt.Errorf("%w; it could not be moved aside: %v", rec.Err, merr)
		}
	}
	s, err = OpenMemory()
	if err != nil {
		return nil, rec, err
	}
	rec.InMemory = true
	return s, rec, nil
}

// OpenMemory returns an empty store that lives in memory only.
func OpenMemory() (*Store, error) {
	db, err := sql.Open("sqlite", "file::memory:?_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("history: in memory: %w", err)
	}
	// One connection, kept: an in-memory database lives as long as it.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	if err := createTables(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: in memory: %w", err)
	}
	return &Store{db: db, path: "", memory: true}, nil
}

// InMemory reports whether the store is not saved to disk (OpenMemory).
func (s *Store) InMemory() bool { return s.memory }

// SQLite primary result codes (sqlite3.h) that mean a damaged file.
const (
	sqliteCorrupt = 11 // SQLITE_CORRUPT: "database disk image is malformed"
	sqliteNotADB  = 26 // SQLITE_NOTADB: "file is not a database"
)

// damaged reports whether err says the database file itself is damaged
// (as opposed to a folder or permission problem).
func damaged(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqliteCorrupt, sqliteNotADB:
			return true
		}
	}
	msg := err.Error()
	return strings.Contains(msg, "malformed") || strings.Contains(msg, "not a database")
}

// moveAside renames a damaged database (and its -wal and -shm files) to
// path.damaged-TIME, adding a number if that exists, and returns the new
// path of the main file.
func moveAside(path string) (string, error) {
	base := path + ".damaged-" + time.Now().Format("20060102-150405")
	dst := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, dst); err != nil {
		return "", err
	}
	for _, ext := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(path + ext); err == nil {
			if err := os.Rename(path+ext, dst+ext); err != nil {
				return dst, fmt.Errorf("moved %s, but not its %s file: %w", path, ext, err)
			}
		}
	}
	return dst, nil
}
