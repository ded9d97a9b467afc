package main

import (
	"context"
	"encoding/json"
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
// (language model, towers and projector in one .pth).
func runAsk(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags("ask", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	imagePath := fs.String("image", "", "image `FILE` (PNG, JPEG or GIF)")
	configPath := fs.String("config", "", "tower sizes as VisualRWKV-7 JSON (`FILE` with dino/siglip/sam objects, or one whose \"config\" holds them); default: the released models'")
	maxTokens := fs.Int("max-tokens", 128, "longest answer in tokens")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	question := strings.Join(fs.Args(), " ")
	if mf.model == "" || *imagePath == "" || question == "" {
		return fmt.Errorf("usage: gooseapp ask --model VISUALRWKV.pth --image FILE QUESTION")
	}
	cfg := vision.Released()
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return err
		}
		var wrapped struct {
			Config *vision.Config `json:"config"`
		}
		if err := json.Unmarshal(raw, &wrapped); err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
		if wrapped.Config != nil {
			cfg = *wrapped.Config
		} else if err := json.Unmarshal(raw, &cfg); err != nil {
			return fmt.Errorf("%s: %w", *configPath, err)
		}
	}
	img, err := openImage(*imagePath)
	if err != nil {
		return err
	}
	be, _, err := mf.open(stderr)
	if err != nil {
		return err
	}
	defer be.Close()
	f, err := checkpoint.Open(mf.model)
	if err != nil {
		return err
	}
	defer f.Close()
	vm, err := vision.Load(f, be, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", mf.model, err)
	}
	defer vm.Close()
	opts, err := mf.loadOptions(be)
	if err != nil {
		return err
	}
	lm, err := core.Load(core.SubSource(f, "rwkv."), opts)
	if err != nil {
		return fmt.Errorf("%s: language model: %w", mf.model, err)
	}
	defer lm.Close()
	tok, err := tokenizer.World()
	if err != nil {
		return err
	}
	s, err := core.NewSession(lm, tok)
	if err != nil {
		return err
	}
	defer s.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	start := time.Now()
	rows, err := vm.Embed(ctx, img)
	if err != nil {
		return fmt.Errorf("%s: %w", *imagePath, err)
	}
	fmt.Fprintf(stderr, "[image encoded in %v: %d tokens]\n", time.Since(start).Round(time.Millisecond), vm.Tokens())
	if err := vision.Prefill(ctx, s, rows, question); err != nil {
		return err
	}
	// The reference decodes greedily and stops at "\n\n".
	_, err = s.Generate(ctx, "", core.GenerateOptions{MaxTokens: *maxTokens, Stop: []string{"\n\n"}}, func(p core.Piece) bool {
		fmt.Fprint(stdout, p.Text)
		return true
	})
	fmt.Fprintln(stdout)
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
