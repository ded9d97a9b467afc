package history

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// exportFormat identifies Goose conversation JSON files.
const exportFormat = "goose-conversation"

// exported is the JSON form of a conversation: the whole message tree
// (every branch) and the images its messages refer to, without model
// states, which are large and belong to one model file.
type exported struct {
	Format       string        `json:"format"`
	Version      int           `json:"version"`
	Title        string        `json:"title"`
	Created      time.Time     `json:"created"`
	Updated      time.Time     `json:"updated"`
	SystemPrompt string        `json:"system_prompt,omitempty"`
	Sampling     Sampling      `json:"sampling"`
	CurrentLeaf  int64         `json:"current_leaf,omitempty"`
	Messages     []exportedMsg `json:"messages"`
	// Images are the stored images the messages refer to (by key, see
	// PutImage), their bytes in base64. Files written before images were
	// exported have none; their messages keep their references.
	Images []exportedImage `json:"images,omitempty"`
}

type exportedImage struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// maxImportImageBytes is the largest image ImportJSON accepts (the
// largest image file the app attaches).
const maxImportImageBytes = 256 << 20

type exportedMsg struct {
	ID           int64     `json:"id"`
	Parent       int64     `json:"parent,omitempty"`
	Role         string    `json:"role"`
	Content      string    `json:"content"`
	Created      time.Time `json:"created"`
	Status       string    `json:"status,omitempty"`
	Tokens       int       `json:"tokens,omitempty"`
	TokensPerSec float64   `json:"tokens_per_sec,omitempty"`
}

// ExportJSON writes conversation conv, all branches included, as JSON,
// with the images its messages refer to.
func (s *Store) ExportJSON(conv int64, w io.Writer) error {
	c, err := s.Conversation(conv)
	if err != nil {
		return err
	}
	msgs, err := queryAll(s.db, "export", scanMsg, `SELECT `+msgCols+` FROM messages WHERE conversation = ? ORDER BY id`, conv)
	if err != nil {
		return err
	}
	e := exported{Format: exportFormat, Version: 1, Title: c.Title, Created: c.Created.UTC(), Updated: c.Updated.UTC(),
		SystemPrompt: c.SystemPrompt, Sampling: c.Sampling, CurrentLeaf: c.Leaf, Messages: []exportedMsg{}}
	for _, m := range msgs {
		e.Messages = append(e.Messages, exportedMsg{ID: m.ID, Parent: m.Parent, Role: m.Role, Content: m.Content,
			Created: m.Created.UTC(), Status: m.Status, Tokens: m.Tokens, TokensPerSec: m.TokensPerSec})
	}
	if e.Images, err = s.conversationImages(conv); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("history: export conversation %d: %w", conv, err)
	}
	return nil
}

// conversationImages returns the stored images some message of conv
// refers to, in key order.
func (s *Store) conversationImages(conv int64) ([]exportedImage, error) {
	return queryAll(s.db, "export images", func(row scanner) (exportedImage, error) {
		var im exportedImage
		err := row.Scan(&im.Key, &im.Name, &im.Data)
		return im, err
	}, `SELECT key, name, data FROM images WHERE EXISTS
		(SELECT 1 FROM messages WHERE conversation = ? AND instr(messages.content, images.key) > 0) ORDER BY key`, conv)
}

// ImportJSON reads a conversation written by ExportJSON and stores it as a
// new conversation with its images, in one transaction. Message ids are
// reassigned; images already stored are kept once.
func (s *Store) ImportJSON(r io.Reader) (Conversation, error) {
	var e exported
	dec := json.NewDecoder(r)
	if err := dec.Decode(&e); err != nil {
		return Conversation{}, fmt.Errorf("history: import: not a conversation file: %w", err)
	}
	if e.Format != exportFormat {
		return Conversation{}, fmt.Errorf("history: import: format %q, want %q", e.Format, exportFormat)
	}
	if e.Version != 1 {
		return Conversation{}, fmt.Errorf("history: import: version %d not supported (this Goose reads version 1)", e.Version)
	}
	// Check the tree before writing: known roles, parents defined earlier.
	seen := map[int64]bool{0: true}
	for i, m := range e.Messages {
		if m.Role != RoleUser && m.Role != RoleAssistant {
			return Conversation{}, fmt.Errorf("history: import: message %d: bad role %q", i, m.Role)
		}
		if m.ID == 0 || seen[m.ID] {
			return Conversation{}, fmt.Errorf("history: import: message %d: missing or repeated id %d", i, m.ID)
		}
		if !seen[m.Parent] {
			return Conversation{}, fmt.Errorf("history: import: message %d: parent %d does not precede it", i, m.Parent)
		}
		seen[m.ID] = true
	}
	if !seen[e.CurrentLeaf] {
		return Conversation{}, fmt.Errorf("history: import: current leaf %d is not a message", e.CurrentLeaf)
	}
	for i, im := range e.Images {
		switch {
		case len(im.Data) == 0:
			return Conversation{}, fmt.Errorf("history: import: image %d (%q): no data", i, im.Name)
		case len(im.Data) > maxImportImageBytes:
			return Conversation{}, fmt.Errorf("history: import: image %d (%q): %d bytes, more than %d MiB", i, im.Name, len(im.Data), maxImportImageBytes>>20)
		case ImageKey(im.Data) != im.Key:
			return Conversation{}, fmt.Errorf("history: import: image %d (%q): its key %.12s is not the SHA-256 of its bytes", i, im.Name, im.Key)
		}
	}
	if e.Created.IsZero() {
		e.Created = time.Now()
	}
	if e.Updated.IsZero() {
		e.Updated = e.Created
	}
	js, err := json.Marshal(e.Sampling)
	if err != nil {
		return Conversation{}, wrap("import", err)
	}

	tx, err := s.db.Begin()
	if err != nil {
		return Conversation{}, wrap("import", err)
	}
	defer tx.Rollback()
	res, err := tx.Exec(`INSERT INTO conversations (title, created, updated, system_prompt, sampling) VALUES (?, ?, ?, ?, ?)`,
		e.Title, ms(e.Created), ms(e.Updated), e.SystemPrompt, string(js))
	if err != nil {
		return Conversation{}, wrap("import", err)
	}
	conv, err := res.LastInsertId()
	if err != nil {
		return Conversation{}, wrap("import", err)
	}
	ids := map[int64]int64{0: 0}
	for _, m := range e.Messages {
		status := m.Status
		if status == "" || status == StatusStreaming {
			status = StatusDone
		}
		if m.Created.IsZero() {
			m.Created = e.Created
		}
		res, err := tx.Exec(`INSERT INTO messages (conversation, parent, role, content, created, status, tokens, tokens_per_sec)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, conv, ids[m.Parent], m.Role, m.Content, ms(m.Created), status, m.Tokens, m.TokensPerSec)
		if err != nil {
			return Conversation{}, wrap("import", err)
		}
		if ids[m.ID], err = res.LastInsertId(); err != nil {
			return Conversation{}, wrap("import", err)
		}
	}
	for _, im := range e.Images {
		if _, err := tx.Exec(`INSERT OR IGNORE INTO images (key, name, data, created) VALUES (?, ?, ?, ?)`,
			im.Key, im.Name, im.Data, ms(e.Created)); err != nil {
			return Conversation{}, wrap("import image", err)
		}
	}
	if _, err := tx.Exec(`UPDATE conversations SET leaf = ? WHERE id = ?`, ids[e.CurrentLeaf], conv); err != nil {
		return Conversation{}, wrap("import", err)
	}
	if err := tx.Commit(); err != nil {
		return Conversation{}, wrap("import", err)
	}
	return s.Conversation(conv)
}

// ExportMarkdown writes the conversation's current branch as Markdown.
func (s *Store) ExportMarkdown(conv int64, w io.Writer) error {
	c, err := s.Conversation(conv)
	if err != nil {
		return err
	}
	msgs, err := s.Branch(c.Leaf)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", oneLine(c.Title))
	fmt.Fprintf(&b, "*Exported from Goose on %s.*\n\n", time.Now().Format("2 January 2006"))
	if c.SystemPrompt != "" {
		fmt.Fprintf(&b, "**System:** %s\n\n", c.SystemPrompt)
	}
	for _, m := range msgs {
		who := "User"
		if m.Role == RoleAssistant {
			who = "Assistant"
		}
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", who, strings.TrimSpace(m.Content))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("history: export conversation %d: %w", conv, err)
	}
	return nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
