package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/vision"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// runAsk answers a question about an image with a VisualRWKV-7 checkpoint
// (language model, towers and projector in one .pth), printing the time
// from reading the image to the first answer token on stderr.
func runAsk(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("ask", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	imagePath := fs.String("image", "", "image `FILE` (PNG, JPEG or GIF)")
	configPath := fs.String("config", "", "tower sizes as VisualRWKV-7 JSON (`FILE` with dino/siglip/sam objects, or one whose \"config\" holds them); default: read from the checkpoint")
	maxTokens := fs.Int("max-tokens", 128, "longest answer in tokens")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	question := strings.Join(fs.Args(), " ")
	if mf.model == "" || *imagePath == "" || question == "" {
		return fmt.Errorf("usage: gooseapp ask --model VISUALRWKV.pth --image FILE QUESTION")
	}
	if _, err := os.Stat(*imagePath); err != nil {
		return err
	}
	m, err := openVisual(mf.model, mf, *configPath, stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	s, err := visualSession(m)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	img, err := openImage(*imagePath)
	if err != nil {
		return err
	}
	if err := m.Ask(ctx, s, img, question, nil); err != nil {
		return fmt.Errorf("%s: %w", *imagePath, err)
	}
	prompt := time.Since(start)
	first := time.Duration(0)
	// The reference decodes greedily and stops at "\n\n".
	_, err = s.Generate(ctx, "", core.GenerateOptions{MaxTokens: *maxTokens, Stop: []string{"\n\n"}}, func(p core.Piece) bool {
		if first == 0 {
			first = time.Since(start)
		}
		fmt.Fprint(stdout, p.Text)
		return true
	})
	fmt.Fprintln(stdout)
	if first > 0 {
		fmt.Fprintf(stderr, "[%s on %s: image and question read in %v, first token after %v]\n",
			m.Report().Used, m.Report().Device.Name, prompt.Round(time.Millisecond), first.Round(time.Millisecond))
	}
	return err
}

// openImage decodes an image file, naming the file in errors.
func openImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := preprocess.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// openVisual opens a VisualRWKV-7 checkpoint on the backend mf names, with
// the tower sizes of configPath (VisualRWKV-7 JSON) or, when it is empty,
// those read from the checkpoint, and says on stderr why the GPU is not
// used, if it is not. A checkpoint without image towers gives an error
// wrapping vision.ErrNotVisual.
func openVisual(path string, mf modelFlags, configPath string, stderr io.Writer) (*vision.Model, error) {
	if q, err := core.ParseQuantization(mf.quant); err != nil || q != core.QuantNone {
		return nil, fmt.Errorf("--quant %s: not available for VisualRWKV-7 checkpoints yet", mf.quant)
	}
	opts := vision.Options{Backend: mf.backend, Threads: mf.threads}
	if configPath != "" {
		raw, err := os.ReadFile(configPath)
		if err != nil {
			return nil, err
		}
		cfg, err := vision.ParseConfig(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", configPath, err)
		}
		opts.Config = &cfg
	}
	m, err := vision.Open(path, opts)
	if err != nil {
		return nil, err
	}
	noteFallback(stderr, m.Report())
	return m, nil
}

// isVisualFile reports whether the checkpoint at path is a VisualRWKV-7
// one (an unreadable file is an error naming it).
func isVisualFile(path string) (bool, error) {
	f, err := checkpoint.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	return vision.IsCheckpoint(f), nil
}

// visualSession starts a conversation with m's language model.
func visualSession(m *vision.Model) (*core.Session, error) {
	tok, err := tokenizer.World()
	if err != nil {
		return nil, err
	}
	return core.NewSession(m.LM(), tok)
}
