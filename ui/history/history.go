// Package history stores chat conversations durably in SQLite, through the
// pure-Go modernc.org/sqlite driver.
//
// Messages form a tree: every message has a parent (0 for the first one), so
// editing a user message or regenerating a reply adds a sibling and the old
// branch stays reachable. Each conversation remembers its current leaf.
// Alongside a finished message the store keeps the serialized recurrent
// state of the model after that message, so continuing or regenerating never
// re-reads the conversation.
//
// Replies are written while they stream (UpdateContent), so a crash keeps
// what was on screen; Open marks such interrupted messages.
//
// The package has no user-interface code and no engine dependency.
package history

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Roles of a message.
const (
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Status of a message.
const (
	// StatusDone: complete.
	StatusDone = "done"
	// StatusStreaming: the reply is being generated.
	StatusStreaming = "streaming"
	// StatusStopped: the user pressed Stop; the text is what was shown.
	StatusStopped = "stopped"
	// StatusInterrupted: the app ended while the reply was streaming.
	StatusInterrupted = "interrupted"
	// StatusError: generation failed; the text is what was shown.
	StatusError = "error"
)

// ErrNotFound is returned for a conversation or message id not in the store.
var ErrNotFound = errors.New("not found")

// Sampling holds a conversation's generation settings, used as they are
// (temperature 0 is greedy decoding).
type Sampling struct {
	Temperature      float64 `json:"temperature"`
	TopP             float64 `json:"top_p"`
	TopK             int     `json:"top_k"`
	PresencePenalty  float64 `json:"presence_penalty"`
	FrequencyPenalty float64 `json:"frequency_penalty"`
	PenaltyDecay     float64 `json:"penalty_decay"`
	MaxTokens        int     `json:"max_tokens"`
}

// DefaultSampling is the setting new conversations get: the official RWKV-7
// chat demo's values (rwkv7-core.md §6.3).
func DefaultSampling() Sampling {
	return Sampling{Temperature: 1.0, TopP: 0.3, PresencePenalty: 0.5, FrequencyPenalty: 0.5, PenaltyDecay: 0.996, MaxTokens: 1024}
}

// Conversation is one chat.
type Conversation struct {
	ID           int64
	Title        string
	Created      time.Time
	Updated      time.Time
	SystemPrompt string
	Sampling     Sampling
	// Leaf is the id of the message the conversation currently ends with;
	// 0 when it has no messages.
	Leaf int64
}

// Message is one turn.
type Message struct {
	ID           int64
	Conversation int64
	// Parent is the previous message in this branch; 0 for the first.
	Parent  int64
	Role    string
	Content string
	Created time.Time
	Status  string
	// Tokens generated and generation speed; 0 for user messages.
	Tokens       int
	TokensPerSec float64
	// HasState reports whether a model state is stored with the message.
	HasState bool
}

// Store is an open history database. Its methods may be called from several
// goroutines.
type Store struct {
	db     *sql.DB
	path   string
	memory bool // OpenMemory: nothing is saved
}

// DefaultPath returns where the history lives:
// $XDG_DATA_HOME/goose/history.db, or ~/.local/share/goose/history.db.
func DefaultPath() (string, error) {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("history: no data directory: %w", err)
		}
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "goose", "history.db"), nil
}

const schema = `
CREATE TABLE IF NOT EXISTS conversations (
	id            INTEGER PRIMARY KEY,
	title         TEXT    NOT NULL,
	created       INTEGER NOT NULL,
	updated       INTEGER NOT NULL,
	system_prompt TEXT    NOT NULL DEFAULT '',
	sampling      TEXT    NOT NULL DEFAULT '{}',
	leaf          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS messages (
	id             INTEGER PRIMARY KEY,
	conversation   INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
	parent         INTEGER NOT NULL DEFAULT 0,
	role           TEXT    NOT NULL,
	content        TEXT    NOT NULL,
	created        INTEGER NOT NULL,
	status         TEXT    NOT NULL DEFAULT 'done',
	tokens         INTEGER NOT NULL DEFAULT 0,
	tokens_per_sec REAL    NOT NULL DEFAULT 0,
	state          BLOB,
	state_key      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_parent ON messages(conversation, parent);
PRAGMA user_version = 1;
`

// createTables creates the store's tables where they are missing: the
// conversations and messages (schema), the recordings and the images.
func createTables(db *sql.DB) error {
	_, err := db.Exec(schema + recordingsSchema + imagesSchema)
	return err
}

// Open opens or creates the database at path (creating its directory), in
// WAL mode with foreign keys on. Messages left streaming by a crash are
// marked StatusInterrupted.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=journal_size_limit(67108864)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	// One connection serializes writers from the UI and the generating
	// goroutine without SQLITE_BUSY; every query here is short.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := createTables(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		db.Close()
		return nil, fmt.Errorf("history: open %s: journal mode %q, want wal (%v)", path, mode, err)
	}
	if _, err := db.Exec(`UPDATE messages SET status = ? WHERE status = ?`, StatusInterrupted, StatusStreaming); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: open %s: %w", path, err)
	}
	return s, nil
}

// Path returns the database file's path ("" for OpenMemory's store).
func (s *Store) Path() string { return s.path }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func ms(t time.Time) int64     { return t.UnixMilli() }
func fromMS(v int64) time.Time { return time.UnixMilli(v) }
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("history: %s: %w", op, err)
}

// CreateConversation adds an empty conversation.
func (s *Store) CreateConversation(title, systemPrompt string, sampling Sampling) (Conversation, error) {
	now := time.Now()
	js, err := json.Marshal(sampling)
	if err != nil {
		return Conversation{}, wrap("create conversation", err)
	}
	res, err := s.db.Exec(`INSERT INTO conversations (title, created, updated, system_prompt, sampling) VALUES (?, ?, ?, ?, ?)`,
		title, ms(now), ms(now), systemPrompt, string(js))
	if err != nil {
		return Conversation{}, wrap("create conversation", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return Conversation{}, wrap("create conversation", err)
	}
	return s.Conversation(id)
}

const convCols = `id, title, created, updated, system_prompt, sampling, leaf`

func scanConv(row scanner) (Conversation, error) {
	var c Conversation
	var created, updated int64
	var js string
	if err := row.Scan(&c.ID, &c.Title, &created, &updated, &c.SystemPrompt, &js, &c.Leaf); err != nil {
		return c, err
	}
	c.Created, c.Updated = fromMS(created), fromMS(updated)
	c.Sampling = DefaultSampling()
	if err := json.Unmarshal([]byte(js), &c.Sampling); err != nil {
		return c, fmt.Errorf("conversation %d: bad sampling settings: %w", c.ID, err)
	}
	return c, nil
}

// Conversation returns the conversation with the given id.
func (s *Store) Conversation(id int64) (Conversation, error) {
	c, err := scanConv(s.db.QueryRow(`SELECT `+convCols+` FROM conversations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("conversation %d: %w", id, ErrNotFound)
	}
	return c, wrap("get conversation", err)
}

// Conversations lists conversations, most recently updated first. A
// non-empty query keeps those whose title or any message contains it
// (case-insensitively for ASCII).
func (s *Store) Conversations(query string) ([]Conversation, error) {
	q := strings.TrimSpace(query)
	if q == "" {
		return queryAll(s.db, "list conversations", scanConv, `SELECT `+convCols+` FROM conversations ORDER BY updated DESC, id DESC`)
	}
	return queryAll(s.db, "list conversations", scanConv, `SELECT `+convCols+` FROM conversations c WHERE title LIKE ?1 ESCAPE '\'
			OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation = c.id AND m.content LIKE ?1 ESCAPE '\')
			ORDER BY updated DESC, id DESC`, "%"+escapeLike(q)+"%")
}

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs the query q and returns its rows, each read by scan; op
// names the operation in errors.
func queryAll[T any](db *sql.DB, op string, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Query(q, args...)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, v)
	}
	return out, wrap(op, rows.Err())
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// UpdateConversation saves c's title, system prompt and sampling settings.
func (s *Store) UpdateConversation(c Conversation) error {
	js, err := json.Marshal(c.Sampling)
	if err != nil {
		return wrap("update conversation", err)
	}
	res, err := s.db.Exec(`UPDATE conversations SET title = ?, system_prompt = ?, sampling = ?, updated = ? WHERE id = ?`,
		c.Title, c.SystemPrompt, string(js), ms(time.Now()), c.ID)
	return wrap("update conversation", mustAffect(res, err, "conversation", c.ID))
}

// Rename sets a conversation's title.
func (s *Store) Rename(id int64, title string) error {
	res, err := s.db.Exec(`UPDATE conversations SET title = ? WHERE id = ?`, title, id)
	return wrap("rename conversation", mustAffect(res, err, "conversation", id))
}

// DeleteConversation removes a conversation and all its messages.
func (s *Store) DeleteConversation(id int64) error {
	res, err := s.db.Exec(`DELETE FROM conversations WHERE id = ?`, id)
	if err := mustAffect(res, err, "conversation", id); err != nil {
		return wrap("delete conversation", err)
	}
	return s.pruneImages()
}

func mustAffect(res sql.Result, err error, what string, id int64) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return nil
}

// SetLeaf makes msg the current end of its conversation (switching branch).
func (s *Store) SetLeaf(conv, msg int64) error {
	if msg != 0 {
		m, err := s.Message(msg)
		if err != nil {
			return err
		}
		if m.Conversation != conv {
			return fmt.Errorf("history: message %d is not in conversation %d", msg, conv)
		}
	}
	res, err := s.db.Exec(`UPDATE conversations SET leaf = ? WHERE id = ?`, msg, conv)
	return wrap("set leaf", mustAffect(res, err, "conversation", conv))
}

// AddMessage stores m as a child of m.Parent, makes it the conversation's
// current leaf and returns it with its id. An empty Status means done.
func (s *Store) AddMessage(m Message) (Message, error) {
	if m.Role != RoleUser && m.Role != RoleAssistant {
		return m, fmt.Errorf("history: add message: bad role %q", m.Role)
	}
	if m.Status == "" {
		m.Status = StatusDone
	}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	tx, err := s.db.Begin()
	if err != nil {
		return m, wrap("add message", err)
	}
	defer tx.Rollback()
	if m.Parent != 0 {
		var conv int64
		if err := tx.QueryRow(`SELECT conversation FROM messages WHERE id = ?`, m.Parent).Scan(&conv); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = fmt.Errorf("parent message %d: %w", m.Parent, ErrNotFound)
			}
			return m, wrap("add message", err)
		}
		if conv != m.Conversation {
			return m, fmt.Errorf("history: add message: parent %d is in conversation %d, not %d", m.Parent, conv, m.Conversation)
		}
	}
	res, err := tx.Exec(`INSERT INTO messages (conversation, parent, role, content, created, status, tokens, tokens_per_sec)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, m.Conversation, m.Parent, m.Role, m.Content, ms(m.Created), m.Status, m.Tokens, m.TokensPerSec)
	if err != nil {
		return m, wrap("add message", err)
	}
	if m.ID, err = res.LastInsertId(); err != nil {
		return m, wrap("add message", err)
	}
	res, err = tx.Exec(`UPDATE conversations SET leaf = ?, updated = ? WHERE id = ?`, m.ID, ms(m.Created), m.Conversation)
	if err := mustAffect(res, err, "conversation", m.Conversation); err != nil {
		return m, wrap("add message", err)
	}
	return m, wrap("add message", tx.Commit())
}

// UpdateContent replaces a message's text and status; the chat calls it
// periodically while a reply streams.
func (s *Store) UpdateContent(id int64, content, status string) error {
	res, err := s.db.Exec(`UPDATE messages SET content = ?, status = ? WHERE id = ?`, content, status, id)
	return wrap("update message", mustAffect(res, err, "message", id))
}

// Finish records a message's final text, status and statistics, and the
// serialized model state after it. stateKey names the model the state
// belongs to (State returns it so a state is only restored into the same
// model). A nil state stores none.
//
// States are stored compressed, and only where they pay: see keepStates
// and PruneStates (states.go). Storing one drops the states of the
// branch's earlier replies except the one Regenerate needs, and keeps all
// states under DefaultStateBudget.
func (s *Store) Finish(id int64, content, status string, tokens int, tokensPerSec float64, state []byte, stateKey string) error {
	return s.update("finish message", id, state, stateKey, `content = ?, status = ?, tokens = ?, tokens_per_sec = ?,`,
		content, status, tokens, tokensPerSec)
}

// SetState stores the model state after message id (see Finish).
func (s *Store) SetState(id int64, state []byte, stateKey string) error {
	return s.update("set state", id, state, stateKey, "")
}

// update sets a message's state (packed) and the columns in set, keeps
// the states that pay, and prunes to the budget.
func (s *Store) update(op string, id int64, state []byte, stateKey, set string, args ...any) error {
	var blob []byte
	if state != nil {
		var err error
		if blob, err = packState(state); err != nil {
			return wrap(op, err)
		}
	}
	tx, err := s.db.Begin()
	if err != nil {
		return wrap(op, err)
	}
	defer tx.Rollback()
	res, err := tx.Exec(`UPDATE messages SET `+set+` state = ?, state_key = ? WHERE id = ?`, append(args, blob, stateKey, id)...)
	if err := mustAffect(res, err, "message", id); err != nil {
		return wrap(op, err)
	}
	if state != nil {
		if err := keepStates(tx, id); err != nil {
			return wrap(op, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return wrap(op, err)
	}
	if state != nil {
		return s.PruneStates(DefaultStateBudget)
	}
	return nil
}

// State returns the model state stored after message id and the key of the
// model it belongs to; nil when none is stored.
func (s *Store) State(id int64) (state []byte, stateKey string, err error) {
	err = s.db.QueryRow(`SELECT state, state_key FROM messages WHERE id = ?`, id).Scan(&state, &stateKey)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	if err == nil && state != nil {
		state, err = unpackState(state)
		if err != nil {
			err = fmt.Errorf("message %d: %w", id, err)
		}
	}
	return state, stateKey, wrap("get state", err)
}

// ClearStates forgets every stored state (e.g. after the model format
// changed). Messages are kept.
func (s *Store) ClearStates() error {
	_, err := s.db.Exec(`UPDATE messages SET state = NULL, state_key = ''`)
	return wrap("clear states", err)
}

// ClearConversationStates forgets the states stored in one conversation,
// e.g. after its system prompt changed: the next reply re-reads the branch.
func (s *Store) ClearConversationStates(conv int64) error {
	_, err := s.db.Exec(`UPDATE messages SET state = NULL, state_key = '' WHERE conversation = ?`, conv)
	return wrap("clear states", err)
}

const msgCols = `id, conversation, parent, role, content, created, status, tokens, tokens_per_sec, state IS NOT NULL`

func scanMsg(row scanner) (Message, error) {
	var m Message
	var created int64
	err := row.Scan(&m.ID, &m.Conversation, &m.Parent, &m.Role, &m.Content, &created, &m.Status, &m.Tokens, &m.TokensPerSec, &m.HasState)
	m.Created = fromMS(created)
	return m, err
}

// Message returns one message.
func (s *Store) Message(id int64) (Message, error) {
	m, err := scanMsg(s.db.QueryRow(`SELECT `+msgCols+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("message %d: %w", id, ErrNotFound)
	}
	return m, wrap("get message", err)
}

// Branch returns the messages from the first one down to leaf, in order.
func (s *Store) Branch(leaf int64) ([]Message, error) {
	if leaf == 0 {
		return nil, nil
	}
	return queryAll(s.db, "get branch", scanMsg, `WITH RECURSIVE chain(id, depth) AS (
			SELECT id, 0 FROM messages WHERE id = ?
			UNION ALL
			SELECT m.parent, chain.depth + 1 FROM messages m JOIN chain ON m.id = chain.id WHERE m.parent != 0
		)
		SELECT `+msgCols+` FROM messages JOIN chain USING (id) ORDER BY chain.depth DESC`, leaf)
}

// Thread returns the conversation's current branch, first message first.
func (s *Store) Thread(conv int64) ([]Message, error) {
	c, err := s.Conversation(conv)
	if err != nil {
		return nil, err
	}
	return s.Branch(c.Leaf)
}

// Siblings returns the messages sharing msg's parent (msg included), oldest
// first, and msg's index among them. Edits and regenerations are siblings.
func (s *Store) Siblings(msg int64) ([]Message, int, error) {
	m, err := s.Message(msg)
	if err != nil {
		return nil, -1, err
	}
	sibs, err := s.Children(m.Conversation, m.Parent)
	if err != nil {
		return nil, -1, err
	}
	for i, x := range sibs {
		if x.ID == msg {
			return sibs, i, nil
		}
	}
	return sibs, -1, fmt.Errorf("history: message %d missing among its siblings", msg)
}

// Children returns the replies to parent (0: the first messages) in conv,
// oldest first.
func (s *Store) Children(conv, parent int64) ([]Message, error) {
	return queryAll(s.db, "get children", scanMsg, `SELECT `+msgCols+` FROM messages WHERE conversation = ? AND parent = ? ORDER BY id`, conv, parent)
}

// LatestLeaf follows the newest child from msg down and returns the leaf it
// reaches (msg itself when it has no children). Switching to a sibling
// branch shows that branch as it was last extended.
func (s *Store) LatestLeaf(msg int64) (int64, error) {
	var leaf int64
	err := s.db.QueryRow(`WITH RECURSIVE down(id) AS (
			SELECT ?
			UNION ALL
			SELECT (SELECT MAX(m.id) FROM messages m WHERE m.parent = down.id) FROM down WHERE down.id IS NOT NULL
		) SELECT MAX(id) FROM down WHERE id IS NOT NULL`, msg).Scan(&leaf)
	return leaf, wrap("latest leaf", err)
}
