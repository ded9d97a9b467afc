package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/sample"
	"github.com/goose-rwkv/goose/core/tokenizer"
)

// runChat is a terminal chat in the World format. Ctrl-C stops a reply or,
// at the prompt, clears it (twice quits, like a shell); /help lists the
// commands (/reset, /save FILE, /load FILE, /quit), handled here and never
// sent to the model.
func runChat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("chat", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	p := sample.DefaultChat()
	fs.Func("temperature", "sampling temperature (0: greedy)", floatFlag(&p.Temperature))
	fs.Func("top-p", "nucleus sampling threshold", floatFlag(&p.TopP))
	fs.IntVar(&p.TopK, "top-k", 0, "keep only the K most likely tokens (0: off)")
	seed := fs.Uint64("seed", 0, "random seed (0: from the clock)")
	maxTokens := fs.Int("max-tokens", 1000, "longest reply in tokens")
	system := fs.String("system", "", "system prompt")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p.Seed = *seed
	if p.Seed == 0 {
		p.Seed = uint64(os.Getpid())<<32 ^ uint64(nanotime())
	}
	if err := p.Validate(); err != nil {
		return err
	}
	m, rep, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	defer m.Backend().Close()
	tok, err := tokenizer.World()
	if err != nil {
		return err
	}
	s, err := core.NewSession(m, tok)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintf(stderr, "%s\nType a message; /help lists the commands. Ctrl-C stops a reply; Ctrl-D, or Ctrl-C twice, quits.\n", deviceLine(rep))

	// Ctrl-C stops the reply in progress; at the prompt it clears the line
	// (the terminal drops what was typed) and a second one quits.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	done := make(chan struct{})
	defer close(done)
	lines, readErr := readLines(stdin, done)

	c := chat{s: s, system: *system, stdout: stdout}
	c.reset()
	armed := false // Ctrl-C was pressed at the prompt
	for {
		fmt.Fprint(stdout, "\nUser: ")
		var line string
		select {
		case <-interrupts:
			if armed {
				fmt.Fprintln(stdout)
				return nil
			}
			armed = true
			fmt.Fprint(stdout, "\n(Ctrl-C again or Ctrl-D to quit)")
			continue
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(stdout)
				return <-readErr
			}
			if l.tooLong {
				fmt.Fprintf(stdout, "(message ignored: it is longer than %d MiB)\n", maxLine>>20)
				continue
			}
			line = strings.TrimSpace(l.text)
		}
		armed = false
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") && !strings.HasPrefix(line, "//") {
			quit, err := c.command(line)
			if quit || err != nil {
				return err
			}
			continue
		}
		line = strings.TrimPrefix(line, "/") // "//text" sends "/text"

		ctx, cancel := context.WithCancel(context.Background())
		replied := make(chan struct{})
		go func() {
			select {
			case <-interrupts:
				cancel()
			case <-replied:
			}
		}()
		fmt.Fprint(stdout, "\nAssistant:")
		stats, err := s.Generate(ctx, c.pending+core.ChatTurn(line), core.GenerateOptions{
			Sample: p, MaxTokens: *maxTokens, Stop: []string{"\n\n"}, BanEndOfText: true,
		}, func(pc core.Piece) bool {
			fmt.Fprint(stdout, pc.Text)
			return true
		})
		close(replied)
		cancel()
		if err != nil {
			return err
		}
		// The next turn must follow a "\n\n"; a reply cut short lacks it.
		c.pending = ""
		if stats.StopReason != core.StopSequence {
			c.pending = "\n\n"
		}
		if stats.StopReason == core.StopCancelled {
			fmt.Fprint(stdout, " [stopped]")
		}
		fmt.Fprintf(stderr, "\n[%d tokens, %.1f tok/s; prompt %d tokens at %.1f tok/s; first token after %v]\n",
			stats.Tokens, stats.DecodeRate(), stats.PromptTokens, stats.PrefillRate(), stats.TimeToFirstToken.Round(time.Millisecond))
	}
}

// chatHelp is what /help prints.
const chatHelp = `Commands:
  /reset       start over (forget the conversation)
  /save FILE   save the conversation state to FILE
  /load FILE   continue from a state saved with /save
  /quit        quit (also /exit, Ctrl-D, or Ctrl-C twice at the prompt)
  /help        this list
Start a message with // to send text that begins with /.`

// chat is the state of a terminal conversation between turns.
type chat struct {
	s       *core.Session
	system  string
	pending string // text to feed before the next user turn
	stdout  io.Writer
}

// reset sets up a fresh conversation (the session itself is reset by the
// caller when it holds one).
func (c *chat) reset() {
	c.pending = ""
	if c.system != "" {
		c.pending = core.ChatMessage("system", c.system)
	}
}

// command runs one /command line; quit reports /quit. Mistakes are
// reported on stdout and the chat goes on; err is a failure that ends it.
func (c *chat) command(line string) (quit bool, err error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/quit", "/exit":
		return true, nil
	case "/help", "/?":
		fmt.Fprintln(c.stdout, chatHelp)
	case "/reset":
		if err := c.s.Reset(); err != nil {
			return false, err
		}
		c.reset()
		fmt.Fprintln(c.stdout, "(state reset)")
	case "/save":
		if arg == "" {
			fmt.Fprintln(c.stdout, "(/save needs a file name: /save FILE)")
		} else if err := saveState(c.s, arg); err != nil {
			fmt.Fprintf(c.stdout, "(save failed: %v)\n", err)
		} else {
			fmt.Fprintf(c.stdout, "(state saved to %s)\n", arg)
		}
	case "/load":
		if arg == "" {
			fmt.Fprintln(c.stdout, "(/load needs a file name: /load FILE)")
		} else if err := loadState(c.s, arg); err != nil {
			fmt.Fprintf(c.stdout, "(load failed: %v)\n", err)
		} else {
			c.pending = ""
			fmt.Fprintf(c.stdout, "(state loaded from %s)\n", arg)
		}
	default:
		fmt.Fprintf(c.stdout, "(unknown command %s: /help lists the commands; start with // to send text that begins with /)\n", name)
	}
	return false, nil
}

// readLines reads stdin line by line on its own goroutine, so that the
// chat can wait for a line or Ctrl-C at once. lines is closed at the end
// of input; then readErr holds the read error, if any. The goroutine ends
// when done is closed. A line longer than maxLine comes as tooLong (its
// text dropped) and the chat goes on.
func readLines(stdin io.Reader, done <-chan struct{}) (lines <-chan inputLine, readErr <-chan error) {
	out := make(chan inputLine)
	errc := make(chan error, 1)
	go func() {
		defer close(out)
		in := newLineReader(stdin, maxLine)
		for {
			text, err := in.next()
			l := inputLine{text: text, tooLong: errors.Is(err, errLineTooLong)}
			if err != nil && !l.tooLong {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				errc <- err
				return
			}
			select {
			case out <- l:
			case <-done:
				return
			}
		}
	}()
	return out, errc
}

// inputLine is one line of chat input.
type inputLine struct {
	text    string
	tooLong bool // over maxLine: text is empty
}

func floatFlag(dst *float32) func(string) error {
	return func(s string) error {
		var v float64
		if _, err := fmt.Sscan(s, &v); err != nil {
			return err
		}
		*dst = float32(v)
		return nil
	}
}

// saveState writes the session state atomically.
func saveState(s *core.Session, path string) error {
	st, err := s.State()
	if err != nil {
		return err
	}
	defer st.Free()
	return st.WriteFile(path)
}

// loadState restores the session state from a /save file. The file's
// header and size are checked before its data is read, so /load of a
// device, a FIFO or a large file of another kind fails at once.
func loadState(s *core.Session, path string) error {
	st, err := s.Model().NewState()
	if err != nil {
		return err
	}
	defer st.Free()
	if err := st.ReadFile(path); err != nil {
		return err
	}
	return s.SetState(st)
}
