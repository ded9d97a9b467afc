package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"

	"github.com/goose-rwkv/goose/core/tokenizer"
)

// runTokenize reads UTF-8 text on stdin (every byte, the final newline
// included) and prints its World token ids on one line.
func runTokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	tok, err := tokenizer.World()
	if err != nil {
		return err
	}
	w := bufio.NewWriter(stdout)
	for i, id := range tok.EncodeBytes(text) {
		if i > 0 {
			w.WriteByte(' ')
		}
		w.WriteString(strconv.Itoa(int(id)))
	}
	w.WriteByte('\n')
	return w.Flush()
}

// runDetokenize reads token ids (separated by spaces, commas or newlines)
// on stdin and writes their bytes to stdout.
func runDetokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("detokenize", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := io.ReadAll(stdin)
	if err != nil {
		return fmt.Errorf("read stdin: %w", err)
	}
	ids, err := parseIDs(string(text))
	if err != nil {
		return err
	}
	tok, err := tokenizer.World()
	if err != nil {
		return err
	}
	for _, id := range ids {
		if int(id) >= tok.VocabSize() {
			return fmt.Errorf("token id %d outside the vocabulary [0,%d)", id, tok.VocabSize())
		}
	}
	_, err = stdout.Write(tok.Decode(ids))
	return err
}
