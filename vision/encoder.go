package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"sync"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"github.com/goose-rwkv/goose/vision/preprocess"
	"github.com/goose-rwkv/goose/vision/sam"
	"github.com/goose-rwkv/goose/vision/vit"
)

// Encoder is VisualRWKV-7's image encoder: three towers whose features are
// concatenated per image token (DINOv2 | SigLIP | SAM) and projected to the
// language model's embeddings, all on one compute backend. An image's
// pixels are uploaded once; the towers, the concatenation and the
// projector run as backend ops, and the embedding rows stay on the backend
// for the language model's prefill. The working memory is allocated on the
// first image and reused. On a backend with queues (kernels.Queuer, a
// GPU's streams) the three towers run side by side, each on its own queue.
type Encoder struct {
	cfg    Config
	be     kernels.Backend
	dino   *vit.Tower
	siglip *vit.Tower
	sam    *sam.Encoder
	proj   *Projector
	// queues are the towers' queues (DINOv2, SigLIP, SAM) when the backend
	// has them and GOOSE_VISION_STREAMS is not 0; nil otherwise.
	queues []kernels.Backend
	path   string // the checkpoint's file, for errors; "" when not a file

	mu   sync.Mutex     // one image at a time
	feat kernels.Tensor // [Tokens, InDim]: the concatenated features
	pix  [3][]float32   // the towers' pixels, reused
}

// Stages are the times an Encode call spent in each stage (with
// Encoder.Encode's timed mode, which runs the towers one after another and
// waits for the backend after each stage).
type Stages struct {
	Preprocess, DINO, SigLIP, SAM, Projector time.Duration
}

// streamsEnv names the environment variable that, set to 0, keeps the
// towers on one queue even where the backend has several (for comparisons,
// or as a way out should a driver misbehave with streams).
const streamsEnv = "GOOSE_VISION_STREAMS"

// LoadEncoder reads the towers (keys vit.dino_featurizer.*,
// vit.siglip_featurizer.*, vit.sam_featurizer.*) and the projector
// (proj.*) of a VisualRWKV-7 checkpoint onto be, checking cfg against the
// checkpoint's shapes (see Config.Check). src must stay open while the
// encoder lives.
func LoadEncoder(src core.Source, be kernels.Backend, cfg Config) (*Encoder, error) {
	if err := cfg.Check(src); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, be: be, path: core.SourcePath(src)}
	if err := e.load(src); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// load reads the parts into e; on error e holds those read so far.
func (e *Encoder) load(src core.Source) error {
	cfg := e.cfg
	var err error
	if e.dino, err = vit.Load(src, "vit.dino_featurizer.", cfg.DINO, e.be); err != nil {
		return fmt.Errorf("DINOv2 tower: %w", err)
	}
	if e.siglip, err = vit.Load(src, "vit.siglip_featurizer.", cfg.SigLIP, e.be); err != nil {
		return fmt.Errorf("SigLIP tower: %w", err)
	}
	if e.sam, err = sam.Load(src, "vit.sam_featurizer.", cfg.SAM, e.be); err != nil {
		return fmt.Errorf("SAM tower: %w", err)
	}
	n := cfg.DINO.Patches()
	if cfg.SigLIP.Patches() != n || cfg.SAM.Tokens() != n {
		return fmt.Errorf("towers give %d, %d and %d image tokens; they must agree", n, cfg.SigLIP.Patches(), cfg.SAM.Tokens())
	}
	if e.proj, err = LoadProjector(src, e.be); err != nil {
		return err
	}
	if want := cfg.DINO.Dim + cfg.SigLIP.Dim + cfg.SAM.FeatureDim(); e.proj.InDim() != want {
		return fmt.Errorf("projector takes %d features, the towers give %d", e.proj.InDim(), want)
	}
	if qr, ok := e.be.(kernels.Queuer); ok && os.Getenv(streamsEnv) != "0" {
		for range 3 {
			q, err := qr.NewQueue()
			if err != nil {
				return fmt.Errorf("image towers' queues: %w", err)
			}
			e.queues = append(e.queues, q)
		}
		e.dino.SetQueue(e.queues[0])
		e.siglip.SetQueue(e.queues[1])
		e.sam.SetQueue(e.queues[2])
	}
	return nil
}

// Concurrent reports whether the towers run side by side (each on its own
// queue of the backend).
func (e *Encoder) Concurrent() bool { return e.queues != nil }

// order makes the ops issued on after from now on wait for those issued
// on before so far (kernels.Queuer.Order); without queues, ops run in
// issue order anyway.
func (e *Encoder) order(before, after kernels.Backend) error {
	if e.queues == nil {
		return nil
	}
	return e.be.(kernels.Queuer).Order(before, after)
}

// Config returns the towers' sizes.
func (e *Encoder) Config() Config { return e.cfg }

// Tokens is the number of embedding rows an image becomes.
func (e *Encoder) Tokens() int { return e.cfg.DINO.Patches() }

// Width is the width of an embedding row (the language model's).
func (e *Encoder) Width() int { return e.proj.OutDim() }

// Encode encodes an image and calls use with its Tokens() embedding rows,
// an F32 [Tokens, Width] tensor on the encoder's backend that stays valid
// until use returns (give it to core.Session.PrefillEmbedTensor, or
// Prefill). Calls take turns. ctx is checked between the towers' blocks,
// so a cancelled encoding stops within one block.
//
// The image is converted to RGB once and resized once per size. Each
// tower's ops are queued as soon as its pixels are ready. Where the
// backend has queues (see Concurrent) each tower's input is prepared and
// its ops issued on a goroutine and a queue of its own, so the three
// towers run side by side on the device while the host is still resizing;
// otherwise they run one after another, DINOv2 and SigLIP while SAM's
// larger input is prepared on the host. With st non-nil, Encode instead
// prepares every input first, runs the towers one after another and waits
// for the backend after each stage, recording the stage's time in st (for
// benchmarks: the towers' own times beside their floors).
//
// A checkpoint truncated while mapped fails the call, naming the file,
// instead of the process (internal/memfault).
func (e *Encoder) Encode(ctx context.Context, img image.Image, st *Stages, use func(rows kernels.Tensor) error) (err error) {
	defer memfault.CatchFile(e.path, &err)()
	if img == nil || img.Bounds().Empty() {
		return errors.New("vision: empty image")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t0 := time.Now()
	rgb := preprocess.NewRGB(img)
	if !e.feat.Valid() {
		ts, err := nn.Scratch(e.be, [2]int{e.Tokens(), e.proj.InDim()})
		if err != nil {
			return fmt.Errorf("vision: %w", err)
		}
		e.feat = ts[0]
	}
	towers := e.towerRuns(st)
	// The towers' queues start after the backend's earlier work: the
	// previous image's projector and prefill read feat.
	for _, t := range towers {
		if err := e.order(e.be, t.q); err != nil {
			return fmt.Errorf("vision: %w", err)
		}
	}
	if st == nil && e.queues != nil {
		err = e.runConcurrent(ctx, rgb, towers)
	} else {
		err = e.runInOrder(ctx, rgb, towers, st, t0)
	}
	// The projector runs after every tower (also after a failure: nothing
	// may still write feat when Encode returns).
	for _, t := range towers {
		if oerr := e.order(t.q, e.be); oerr != nil && err == nil {
			err = fmt.Errorf("vision: %w", oerr)
		}
	}
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tp := time.Now()
	rows, err := e.proj.Apply(e.feat)
	if err != nil {
		return err
	}
	if err := e.be.Sync(); err != nil {
		return fmt.Errorf("vision: encode: %w", err)
	}
	if st != nil {
		st.Projector = time.Since(tp)
	}
	return use(rows)
}

// towerRun is one tower's part of an Encode call.
type towerRun struct {
	name  string
	pre   preprocess.Tower
	run   func(context.Context, []float32) (kernels.Tensor, error)
	q     kernels.Backend // the queue its ops run on
	col   int             // its first column in feat
	pix   *[]float32      // its pixels, reused
	stage *time.Duration  // its time in timed mode
}

// towerRuns lists the three towers in feature order.
func (e *Encoder) towerRuns(st *Stages) []towerRun {
	c := e.cfg
	st = stDur(st)
	ts := []towerRun{
		{"DINOv2", preprocess.DINOv2(c.DINO.ImageSize), e.dino.Encode, e.be, 0, &e.pix[0], &st.DINO},
		{"SigLIP", preprocess.SigLIP(c.SigLIP.ImageSize), e.siglip.Encode, e.be, c.DINO.Dim, &e.pix[1], &st.SigLIP},
		{"SAM", preprocess.SAM(c.SAM.ImageSize), e.sam.Encode, e.be, c.DINO.Dim + c.SigLIP.Dim, &e.pix[2], &st.SAM},
	}
	for i := range ts {
		if e.queues != nil {
			ts[i].q = e.queues[i]
		}
	}
	return ts
}

// runConcurrent prepares each tower's pixels and issues its ops on its
// own goroutine and queue, so that the host's resizing of one tower's
// input overlaps the device's work on the others and the towers' ops run
// side by side. It returns once every tower's ops are issued.
func (e *Encoder) runConcurrent(ctx context.Context, rgb *preprocess.RGB, towers []towerRun) error {
	errs := make([]error, len(towers))
	var wg sync.WaitGroup
	for i, t := range towers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			*t.pix = rgb.Pixels(t.pre, *t.pix)
			f, err := t.run(ctx, *t.pix)
			if err != nil {
				errs[i] = fmt.Errorf("%s tower: %w", t.name, err)
				return
			}
			t.q.CopyCols(e.feat, f, t.col)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// runInOrder runs the towers one after another. The SAM input (the
// largest) is prepared in the background; the others on this goroutine as
// their towers come up. With st (timed mode) all three inputs are ready
// before any tower runs, and each stage is waited for and timed from t0.
func (e *Encoder) runInOrder(ctx context.Context, rgb *preprocess.RGB, towers []towerRun, st *Stages, t0 time.Time) error {
	sam := towers[2]
	samReady := make(chan struct{})
	go func() {
		defer close(samReady)
		*sam.pix = rgb.Pixels(sam.pre, *sam.pix)
	}()
	defer func() { <-samReady }() // the SAM pixels are written until then
	mark := func(q kernels.Backend, d *time.Duration) error {
		if st == nil {
			return nil
		}
		if err := q.Sync(); err != nil {
			return err
		}
		now := time.Now()
		*d, t0 = now.Sub(t0), now
		return nil
	}
	if st != nil {
		for _, t := range towers[:2] {
			*t.pix = rgb.Pixels(t.pre, *t.pix)
		}
		<-samReady
		if err := mark(e.be, &st.Preprocess); err != nil {
			return err
		}
	}
	for i, t := range towers {
		if st == nil {
			if i < 2 {
				*t.pix = rgb.Pixels(t.pre, *t.pix)
			} else {
				<-samReady
			}
		}
		f, err := t.run(ctx, *t.pix)
		if err != nil {
			return fmt.Errorf("%s tower: %w", t.name, err)
		}
		t.q.CopyCols(e.feat, f, t.col)
		if err := mark(t.q, t.stage); err != nil {
			return fmt.Errorf("%s tower: %w", t.name, err)
		}
	}
	return nil
}

// stDur returns st, or a throw-away Stages when st is nil.
func stDur(st *Stages) *Stages {
	if st == nil {
		return new(Stages)
	}
	return st
}

// Embed encodes an image into Tokens() rows of language-model embeddings
// (row-major, Width wide) on the host.
func (e *Encoder) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	var out []float32
	err := e.Encode(ctx, img, nil, func(rows kernels.Tensor) error {
		var err error
		out, err = nn.Download(e.be, rows)
		return err
	})
	return out, err
}

// Close frees the towers' and the projector's backend memory.
func (e *Encoder) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dino != nil {
		e.dino.Close()
	}
	if e.siglip != nil {
		e.siglip.Close()
	}
	if e.sam != nil {
		e.sam.Close()
	}
	if e.proj != nil {
		e.proj.Close()
	}
	if e.feat.Valid() {
		e.be.Free(e.feat)
		e.feat = kernels.Tensor{}
	}
	for _, q := range e.queues {
		q.Close()
	}
	e.queues = nil
}
