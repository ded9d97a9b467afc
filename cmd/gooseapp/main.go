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
//	gooseapp ask --model VISUALRWKV.pth --image FILE QUESTION
//	gooseapp tag --model ARWKV.pth [--config CONFIG.json] [--top N] [--threshold P] [--json] AUDIO.wav
//	gooseapp testmodel --out FILE.safetensors [--shape 2x64]
//	gooseapp serve --model FILE [--addr 127.0.0.1:11435] [--backend auto] [--api-key KEY] [--parallel N] [--queue N] [--cache-mb MB]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// command is one subcommand.
type command struct {
	name  string
	usage string
	run   func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"chat", "chat --model FILE [--backend auto|cpu|cuda] [--threads N]", runChat},
		{"logits", "logits --model FILE --tokens 1,2,3 [--mode seq|rnn] [--backend cpu] --out FILE.npy", runLogits},
		{"tokenize", "tokenize  (UTF-8 text on stdin → ids on one line)", runTokenize},
		{"detokenize", "detokenize  (ids on stdin → text)", runDetokenize},
		{"info", "info FILE | info --devices", runInfo},
		{"bench", "bench (--model FILE | --shape 0.1b|0.4b|1.5b|2.9b) [--backend cpu] [--threads N] [--prompt 512] [--gen 128]", runBench},
		{"ask", "ask --model VISUALRWKV.pth --image FILE [--config FILE.json] QUESTION  (VisualRWKV-7 image question)", runAsk},
		{"tag", "tag --model ARWKV.pth [--config CONFIG.json] [--top 5] [--threshold P] [--timeline] [--json] AUDIO.wav  (AudioSet tags)", runTag},
		{"testmodel", "testmodel --out FILE.safetensors [--shape 2x64]  (random weights, full vocabulary)", runTestModel},
		{"serve", "serve --model FILE [--addr 127.0.0.1:11435] [--backend auto] [--api-key KEY] [--parallel N] [--queue N] [--cache-mb MB]", runServe},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || (len(args[0]) > 0 && args[0][0] == '-' && args[0] != "-h" && args[0] != "--help") {
		if err := runGUI(args, stderr); err != nil {
			fmt.Fprintln(stderr, "gooseapp:", err)
			return 1
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(args[1:], stdin, stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return 2
			}
			if err != nil {
				fmt.Fprintf(stderr, "gooseapp %s: %v\n", c.name, err)
				return 1
			}
			return 0
		}
	}
	fmt.Fprintln(stderr, "usage: gooseapp [--smoke-test --model FILE --screenshot OUT.png]   (desktop app)")
	for _, c := range commands() {
		fmt.Fprintln(stderr, "       gooseapp", c.usage)
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return 0
	}
	return 2
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
