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

// runChat is a terminal chat in the World format. Ctrl-C stops the reply,
// not the program; /reset, /save FILE and /load FILE manage the state.
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
	if err := fs.Parse(args); err != nil {
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
	fmt.Fprintf(stderr, "%s\nType a message. Commands: /reset, /save FILE, /load FILE, /quit. Ctrl-C stops a reply.\n", rep)

	// Ctrl-C cancels the reply in progress.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)

	pending := "" // text to feed before the next user turn
	if *system != "" {
		pending = "System: " + core.CleanTurn(*system) + "\n\n"
	}
	in := newLineReader(stdin, maxLine)
	for {
		fmt.Fprint(stdout, "\nUser: ")
		text, err := in.next()
		if errors.Is(err, errLineTooLong) {
			fmt.Fprintf(stdout, "(message ignored: it is longer than %d MiB)\n", maxLine>>20)
			continue
		}
		if err != nil {
			fmt.Fprintln(stdout)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		line := strings.TrimSpace(text)
		switch {
		case line == "":
			continue
		case line == "/quit" || line == "/exit":
			return nil
		case line == "/reset":
			if err := s.Reset(); err != nil {
				return err
			}
			pending = ""
			if *system != "" {
				pending = "System: " + core.CleanTurn(*system) + "\n\n"
			}
			fmt.Fprintln(stdout, "(state reset)")
			continue
		case strings.HasPrefix(line, "/save "):
			if err := saveState(s, strings.TrimSpace(line[len("/save "):])); err != nil {
				fmt.Fprintln(stdout, "(save failed:", err, ")")
			} else {
				fmt.Fprintln(stdout, "(state saved)")
			}
			continue
		case strings.HasPrefix(line, "/load "):
			if err := loadState(s, strings.TrimSpace(line[len("/load "):])); err != nil {
				fmt.Fprintln(stdout, "(load failed:", err, ")")
			} else {
				pending = ""
				fmt.Fprintln(stdout, "(state loaded)")
			}
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			select {
			case <-interrupts:
				cancel()
			case <-done:
			}
		}()
		fmt.Fprint(stdout, "\nAssistant:")
		stats, err := s.Generate(ctx, pending+core.ChatTurn(line), core.GenerateOptions{
			Sample: p, MaxTokens: *maxTokens, Stop: []string{"\n\n"}, BanEndOfText: true,
		}, func(pc core.Piece) bool {
			fmt.Fprint(stdout, pc.Text)
			return true
		})
		close(done)
		cancel()
		if err != nil {
			return err
		}
		// The next turn must follow a "\n\n"; a reply cut short lacks it.
		pending = ""
		if stats.StopReason != core.StopSequence {
			pending = "\n\n"
		}
		if stats.StopReason == core.StopCancelled {
			fmt.Fprint(stdout, " [stopped]")
		}
		fmt.Fprintf(stderr, "\n[%d tokens, %.1f tok/s; prompt %d tokens at %.1f tok/s; first token after %v]\n",
			stats.Tokens, stats.DecodeRate(), stats.PromptTokens, stats.PrefillRate(), stats.TimeToFirstToken.Round(time.Millisecond))
	}
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
