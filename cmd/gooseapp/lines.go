package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxLine is the longest chat message the terminal chat takes (1 MiB);
// a longer line is skipped with a message instead of ending the chat.
const maxLine = 1 << 20

// lineReader reads newline-terminated lines of at most max bytes.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// errLineTooLong is returned by next for a line longer than the limit; the
// line has been read and dropped, and the next call reads the line after.
var errLineTooLong = errors.New("line too long")

// next returns the next line without its line ending. At the end of the
// input it returns io.EOF (after a last line without a newline).
func (l *lineReader) next() (string, error) {
	var buf []byte
	long := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if !long {
			if len(buf)+len(chunk) > l.max+2 { // +2: the line ending
				long, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil:
			if long {
				return "", errLineTooLong
			}
			return string(bytes.TrimRight(buf, "\r\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if long {
				return "", errLineTooLong
			}
			if len(buf) > 0 {
				return string(bytes.TrimRight(buf, "\r\n")), nil
			}
			return "", io.EOF
		default:
			return "", err
		}
	}
}
