package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goose-rwkv/goose/audio"
	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/kernels/backend"
	"github.com/goose-rwkv/goose/server"
	"github.com/goose-rwkv/goose/vision"
)

// runServe serves a model over the local OpenAI-compatible API until
// interrupted (Ctrl-C or SIGTERM).
func runServe(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, args, stdout, stderr, nil)
}

// serve runs the API server until ctx ends. ready, if set, is called with
// the listening address once requests are served.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(addr string)) error {
	fs := newFlags("serve", stderr)
	var mf modelFlags
	mf.register(fs, "auto")
	addr := fs.String("addr", "127.0.0.1:11435", "listen `address` host:port; other machines can reach it only if you change the host")
	apiKey := fs.String("api-key", "", "require this bearer `token` from clients (default: $GOOSE_API_KEY)")
	name := fs.String("name", "", "model id shown to clients (default: the model file's name)")
	parallel := fs.Int("parallel", 1, "requests that generate at once (each has its own state)")
	products := fs.String("batch-products", "exact", batchProductsUsage)
	batch := fs.Bool("batch", false, "decode the --parallel requests together, one step for all (continuous batching; best on a GPU with --parallel 32 or more)")
	queue := fs.Int("queue", 64, "requests that may wait; more get 503 with Retry-After")
	cacheMB := fs.Int("cache-mb", 256, "prefix state cache size in MiB (0: off)")
	maxTokens := fs.Int("max-tokens", 4096, "largest max_tokens a request may ask for")
	maxPrompt := fs.Int("max-prompt", 32768, "longest prompt in tokens")
	audioModel := fs.String("audio-model", "", "also tag audio at POST /v1/audio/tags with this A-RWKV checkpoint `FILE` (alone, without --model, the server only tags audio)")
	audioConfig := fs.String("audio-config", "", "the audio model's configuration `FILE.json` (default: the released A-RWKV configuration)")
	visionConfig := fs.String("vision-config", "", "tower sizes of a VisualRWKV-7 --model as JSON `FILE` (default: read from the checkpoint)")
	allowedHosts := fs.String("allowed-hosts", "", "comma-separated host `names` clients may use besides IP addresses and localhost (\"*\": any; \".example.com\": names under it)")
	corsOrigins := fs.String("cors-origin", "", "comma-separated web `origins` (e.g. http://localhost:3000; \"*\": all) whose pages may call the API")
	maxConns := fs.Int("max-conns", server.DefaultMaxConns, "most open connections; more are answered 503")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *parallel < 1 || *queue < 0 || *cacheMB < 0 || *maxTokens < 1 || *maxPrompt < 1 || *maxConns < 1 {
		return errors.New("--parallel, --max-tokens, --max-prompt and --max-conns must be at least 1; --queue and --cache-mb at least 0")
	}
	bopts, err := parseBatchProducts(*products)
	if err != nil {
		return err
	}
	if bopts.RoundProducts && !*batch {
		return errors.New("--batch-products rounded applies to batched decoding: add --batch")
	}
	key := *apiKey
	if key == "" {
		key = os.Getenv("GOOSE_API_KEY")
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", *addr, err)
	}
	if !isLoopback(host) && key == "" {
		fmt.Fprintf(stderr, "gooseapp serve: warning: %s is reachable from other machines and no --api-key is set\n", *addr)
	}
	if mf.model == "" && *audioModel == "" {
		return errors.New("--model FILE (a language model) or --audio-model FILE (an audio tagger) is required")
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()

	var (
		m   *core.Model
		tok *tokenizer.Tokenizer
		rep backend.Report
		tg  *audio.Tagger
	)
	var enc *vision.Encoder
	if mf.model != "" {
		var vm *vision.Model
		if visual, verr := isVisualFile(mf.model); verr != nil {
			return verr
		} else if visual {
			if vm, verr = openVisual(mf.model, mf, *visionConfig, stderr); verr != nil {
				// The towers cannot be read: serve the language model alone.
				fmt.Fprintf(stderr, "gooseapp serve: images disabled: %v (--vision-config FILE gives the tower sizes)\n", verr)
			}
		}
		if vm != nil {
			defer vm.Close()
			m, rep, enc = vm.LM(), vm.Report(), vm.Encoder()
		} else {
			if m, rep, err = mf.load(stderr); err != nil {
				return err
			}
			defer m.Backend().Close()
			defer m.Close()
		}
		if tok, err = tokenizer.World(); err != nil {
			return err
		}
	}
	if *audioModel != "" {
		tg, err = audio.Open(*audioModel, audio.Options{Backend: mf.backend, Threads: mf.threads, Config: *audioConfig})
		if err != nil {
			return err
		}
		defer tg.Close()
		if mf.model == "" {
			rep = backend.Report{Used: tg.Info().Backend, Device: kernels.DeviceInfo{Name: tg.Info().Device}}
		}
	}
	id := *name
	if id == "" {
		idPath := mf.model
		if idPath == "" {
			idPath = *audioModel
		}
		id = strings.TrimSuffix(filepath.Base(idPath), filepath.Ext(idPath))
	}
	queueOpt := *queue
	if queueOpt == 0 {
		queueOpt = -1 // server.Options: negative means no waiting
	}
	cacheBytes := int64(*cacheMB) << 20
	if cacheBytes == 0 {
		cacheBytes = -1
	}
	srv, err := server.New(m, tok, server.Options{ModelID: id, Parallel: *parallel, Batch: *batch, BatchOptions: bopts, MaxQueue: queueOpt,
		CacheBytes: cacheBytes, APIKey: key, MaxTokens: *maxTokens, MaxPromptTokens: *maxPrompt,
		AllowedHosts: splitList(*allowedHosts), CORSOrigins: splitList(*corsOrigins), Audio: tg, Vision: enc})
	if err != nil {
		return err
	}
	defer srv.Close()

	// Generations see baseCtx end when a graceful shutdown takes too long.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	hs := srv.HTTPServer(baseCtx, log.New(stderr, "gooseapp serve: ", 0))
	served := make(chan error, 1)
	go func() { served <- hs.Serve(server.LimitListener(ln, *maxConns)) }()
	if m != nil {
		verifyInBackground(baseCtx, m, stderr, "gooseapp serve")
	}
	fmt.Fprintln(stderr, deviceLine(rep))
	fmt.Fprintf(stdout, "Serving %q at http://%s/v1 (OpenAI-compatible; metrics at /metrics). Ctrl-C stops.\n", id, ln.Addr())
	if enc != nil {
		fmt.Fprintf(stdout, "Images: send image_url parts with data: URLs (PNG, JPEG, GIF) in chat messages (VisualRWKV-7, %d rows an image).\n", enc.Tokens())
	}
	if tg != nil {
		fmt.Fprintf(stdout, "Audio tags: POST a WAV to http://%s/v1/audio/tags (%s).\n", ln.Addr(), tg.Info().Kind)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stderr, "gooseapp serve: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		cancelBase() // stop the generations still running
		hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// isLoopback reports whether host names only this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
