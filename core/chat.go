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

// ChatMessage renders one finished message in the RWKV World chat format:
// "Role: content\n\n", the role as the format names it (System, User or
// Assistant).
func ChatMessage(role, content string) string {
	return roleName(role) + ": " + CleanTurn(content) + "\n\n"
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
		if i == len(msgs)-1 && roleName(m.Role) == "Assistant" {
			// A partial reply for the model to continue: no separator.
			b.WriteString("Assistant: " + CleanTurn(m.Content))
			break
		}
		b.WriteString(ChatMessage(m.Role, m.Content))
	}
	if len(msgs) == 0 || roleName(msgs[len(msgs)-1].Role) != "Assistant" {
		b.WriteString("Assistant:")
	}
	return b.String()
}

// ChatTurn renders one user turn to append to a state that already holds
// the conversation so far (ending in the previous reply's "\n\n").
func ChatTurn(user string) string {
	return ChatMessage("user", user) + "Assistant:"
}
