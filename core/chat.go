package core

import (
	"regexp"
	"strings"
)

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

var blankLines = regexp.MustCompile(`\n{2,}`)

// CleanTurn prepares text for the World chat format, where "\n\n" ends a
// turn: it normalises line endings, collapses runs of blank lines into one
// newline and trims surrounding space (as the official G1 templates do).
func CleanTurn(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.TrimSpace(blankLines.ReplaceAllString(s, "\n"))
}

// roleName maps a role to its World-format speaker name.
func roleName(role string) string {
	switch strings.ToLower(role) {
	case "system":
		return "System"
	case "assistant":
		return "Assistant"
	default:
		return "User"
	}
}

// ChatPrompt renders a conversation in the RWKV World chat format:
//
//	System: …\n\nUser: …\n\nAssistant: …\n\nUser: …\n\nAssistant:
//
// When the last message is not the assistant's, the prompt ends with
// "Assistant:" and no space, as the model card requires.
func ChatPrompt(msgs []Message) string {
	var b strings.Builder
	for i, m := range msgs {
		b.WriteString(roleName(m.Role))
		b.WriteString(": ")
		b.WriteString(CleanTurn(m.Content))
		if i < len(msgs)-1 || roleName(m.Role) != "Assistant" {
			b.WriteString("\n\n")
		}
	}
	if len(msgs) == 0 || roleName(msgs[len(msgs)-1].Role) != "Assistant" {
		b.WriteString("Assistant:")
	}
	return b.String()
}

// ChatTurn renders one user turn to append to a state that already holds
// the conversation so far (ending in the previous reply's "\n\n").
func ChatTurn(user string) string {
	return "User: " + CleanTurn(user) + "\n\nAssistant:"
}
