// Command gooseapp is Goose: an offline desktop app and terminal tool for
// RWKV-7 "Goose" language models.
//
// With no arguments it opens the desktop app. Subcommands:
//
//	gooseapp chat --model FILE [--backend auto|cpu|cuda]
//	gooseapp logits --model FILE --tokens 1,2,3 [--mode seq|rnn] [--backend cpu] --out FILE.npy
//	gooseapp tokenize < text            (ids on one line)
//	gooseapp detokenize < ids           (text)
//	gooseapp info FILE | --devices
//	gooseapp bench (--model FILE | --shape 0.1b|0.4b|1.5b|2.9b) [--backend cpu] [--threads N] [--prompt 512] [--gen 128]
//	gooseapp bench --audio --shape t|s|b [--backend cpu] [--minutes 10] [--json]
//	gooseapp ask --model VISUALRWKV.pth --image FILE QUESTION
//	gooseapp tag --model ARWKV.pth [--config CONFIG.json] [--top N] [--threshold P] [--json] AUDIO.wav
//	gooseapp testmodel --out FILE.safetensors [--kind lm|arwkv] [--shape 2x64 | t|s|b]
//	gooseapp serve (--model FILE | --audio-model FILE) [--addr 127.0.0.1:11435] [--backend auto] [--api-key KEY] [--parallel N] [--queue N] [--cache-mb MB]
//
// Flags may come before or after the other arguments; "--" ends the flags.
// "gooseapp CMD --help" describes a subcommand with examples, and
// "gooseapp --version" prints the version, commit, Go version and backends.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name    string
	summary string // what it does, one sentence
	usage   string // synopsis after "gooseapp "
	// maxArgs is how many arguments other than flags it takes (-1: any).
	maxArgs  int
	examples []string
	run      func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"chat", "Chat with a language model in the terminal (World chat format; Ctrl-C stops a reply, /help lists commands).",
			"chat --model FILE [--backend auto|cpu|cuda] [--threads N] [--temperature T] [--top-p P] [--top-k K] [--max-tokens N] [--system TEXT]", 0,
			[]string{"gooseapp chat --model RWKV-x070-World-0.4B-v2.9-20250107-ctx4096.pth", "gooseapp chat --model m.pth --temperature 0.7 --system \"Be brief.\""}, runChat},
		{"logits", "Write the logits after every token of a token sequence as a float32 .npy array [T, vocab].",
			"logits --model FILE --tokens 1,2,3 [--mode seq|rnn] [--backend cpu] --out FILE.npy", 0,
			[]string{"gooseapp logits --model m.pth --tokens 33155,40213 --out logits.npy"}, runLogits},
		{"tokenize", "Read UTF-8 text on stdin and print its World token ids on one line.",
			"tokenize < TEXT", 0,
			[]string{"echo -n \"Hello world\" | gooseapp tokenize      # 33155 40213"}, runTokenize},
		{"detokenize", "Read World token ids (separated by spaces, commas or newlines) on stdin and print their text.",
			"detokenize < IDS", 0,
			[]string{"echo 33155 40213 | gooseapp detokenize       # Hello world"}, runDetokenize},
		{"info", "Describe a checkpoint (kind, layers, width, heads, vocabulary, dtype, parameters), or list the GPUs CUDA can see.",
			"info FILE | info --devices", 1,
			[]string{"gooseapp info RWKV-x070-World-0.1B-v2.8-20241210-ctx4096.pth", "gooseapp info --devices"}, runInfo},
		{"bench", "Measure prefill and decode speed and memory, each beside its physical floor measured in the same run; with --audio, the A-RWKV tagger: one 10 s clip and a 10-minute recording (--json: one JSON object with clip_ms on the last line).",
			"bench (--model FILE | --shape 0.1b|0.4b|1.5b|2.9b) [--backend auto|cpu|cuda] [--threads N] [--prompt 512] [--gen 128] | bench --audio --shape t|s|b [--backend auto|cpu|cuda] [--minutes 10] [--json]", 0,
			[]string{"gooseapp bench --shape 0.4b --backend cpu", "gooseapp bench --model m.pth --backend cuda --prompt 4096 --gen 256", "gooseapp bench --audio --shape s --backend cpu --json"}, runBench},
		{"ask", "Answer a question about an image with a VisualRWKV-7 checkpoint.",
			"ask --model VISUALRWKV.pth --image FILE [--config FILE.json] [--max-tokens N] QUESTION", -1,
			[]string{"gooseapp ask --model VisualRWKV-v0700-0B4-v1.0-20250109.pth --image photo.png \"What is in the image?\""}, runAsk},
		{"tag", "Tag a WAV recording with AudioSet classes using an A-RWKV checkpoint: the recording's top tags (names and probabilities), each window's with --timeline, or JSON. Long recordings are read window by window (10 s windows every 5 s).",
			"tag --model ARWKV.pth [--config CONFIG.json] [--backend auto|cpu|cuda] [--top 5] [--threshold P] [--hop 5s] [--timeline] [--json] AUDIO.wav", 1,
			[]string{"gooseapp tag --model arwkv-s.pth recording.wav --top 3", "gooseapp tag --model arwkv-s.pth --json --threshold 0.2 recording.wav"}, runTag},
		{"testmodel", "Write a random-weight model, to try the app or API without a download: a small language model with the full World vocabulary (its replies are gibberish), or with --kind arwkv an A-RWKV audio tagger at a released size (its tags are random).",
			"testmodel --out FILE.safetensors [--kind lm|arwkv] [--shape 2x64 | t|s|b] [--seed N]", 0,
			[]string{"gooseapp testmodel --out tiny.safetensors && gooseapp chat --model tiny.safetensors", "gooseapp testmodel --kind arwkv --shape s --out arwkv-s.safetensors && gooseapp tag --model arwkv-s.safetensors recording.wav"}, runTestModel},
		{"serve", "Serve a model over the OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models, /metrics) and, with --audio-model, Goose's own POST /v1/audio/tags (AudioSet tags of a WAV).",
			"serve (--model FILE | --audio-model FILE | both) [--addr 127.0.0.1:11435] [--backend auto] [--api-key KEY] [--parallel N] [--queue N] [--cache-mb MB]", 0,
			[]string{"gooseapp serve --model rwkv7-g1-0.4b.pth", "gooseapp serve --model m.pth --addr 0.0.0.0:11435 --api-key \"$(openssl rand -hex 16)\"",
				"gooseapp serve --audio-model arwkv-s.pth && curl --data-binary @rec.wav -H 'Content-Type: audio/wav' http://127.0.0.1:11435/v1/audio/tags"}, runServe},
	}
}

func lookup(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			if len(args) > 1 {
				if c, ok := lookup(args[1]); ok {
					printHelp(stdout, c, nil)
					return 0
				}
			}
			printOverview(stdout)
			return 0
		case "-version", "--version", "version":
			printVersion(stdout)
			return 0
		}
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := runGUI(args, stderr); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintln(stderr, "gooseapp:", err)
			return 2
		}
		return 0
	}
	c, ok := lookup(args[0])
	if !ok {
		fmt.Fprintf(stderr, "gooseapp: unknown command %q (gooseapp --help lists the commands)\n", args[0])
		return 2
	}
	if wantsHelp(args[1:]) {
		// The command's flag set prints its help on stdout.
		c.run([]string{"-help"}, strings.NewReader(""), stdout, stdout)
		return 0
	}
	// The GUI toolkit's init locks the main goroutine to the main thread
	// (windows must be driven from it). A terminal command runs on another
	// goroutine: from a locked one, every hand-off to the CPU backend's
	// workers is an OS thread switch (11× the context switches; decode
	// ~35% slower on two cores).
	done := make(chan error, 1)
	go func() { done <- c.run(args[1:], stdin, stdout, stderr) }()
	err := <-done
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gooseapp %s: %v (gooseapp %s --help shows the usage)\n", c.name, err, c.name)
		return 2
	default:
		fmt.Fprintf(stderr, "gooseapp %s: %v\n", c.name, err)
		return 1
	}
}

// printOverview lists the commands.
func printOverview(w io.Writer) {
	fmt.Fprintln(w, "Goose: an offline desktop app and terminal tool for RWKV-7 \"Goose\" models.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage:")
	fmt.Fprintln(w, "  gooseapp                     open the desktop app")
	fmt.Fprintln(w, "  gooseapp --smoke-test --model FILE --screenshot OUT.png")
	fmt.Fprintln(w, "                               open the app, load FILE, send one message, save a screenshot, exit")
	fmt.Fprintln(w, "  gooseapp --version           version, commit, Go version, backends")
	fmt.Fprintln(w, "  gooseapp COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "gooseapp COMMAND --help describes a command with examples. Flags may come before or after")
	fmt.Fprintln(w, "the other arguments; -- ends the flags.")
}

// printHelp describes one command: what it does, usage, examples, flags.
func printHelp(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "gooseapp %s: %s\n\nUsage:\n  gooseapp %s\n", c.name, c.summary, c.usage)
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintln(w, "\nFlags:")
			out := fs.Output()
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(out)
		}
	}
}

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "-help", "--help":
			return true
		}
	}
	return false
}

// usageError is a mistake in the command line, as opposed to a failure
// while running: run adds where to find the usage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// newFlags returns a flag set for the subcommand name that reports errors
// instead of exiting; asked for -help, it prints the command's help on w.
func newFlags(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		c, ok := lookup(name)
		if !ok {
			c = command{name: name, usage: name + " [flags]"}
		}
		printHelp(fs.Output(), c, fs)
	}
	return fs
}

// parseFlags parses args into fs with flags allowed anywhere: before, after
// or between the other arguments, which fs.Args then returns in order. "--"
// ends the flags. A command given more arguments than it takes gets an
// error that names the first extra one. Errors are usageErrors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	usage := fs.Usage
	out := fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(append(append(flags, "--"), rest...))
	fs.Usage = usage
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return usageError{err}
	}
	if c, ok := lookup(fs.Name()); ok && c.maxArgs >= 0 && fs.NArg() > c.maxArgs {
		extra := fs.Arg(c.maxArgs)
		if c.maxArgs == 0 {
			return usageError{fmt.Errorf("unexpected argument %q: %s takes only flags", extra, c.name)}
		}
		return usageError{fmt.Errorf("unexpected argument %q: %s takes %d besides flags", extra, c.name, c.maxArgs)}
	}
	return nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}
