package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
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
// first image and reused.
type Encoder struct {
	cfg    Config
	be     kernels.Backend
	dino   *vit.Tower
	siglip *vit.Tower
	sam    *sam.Encoder
	proj   *Projector

	mu   sync.Mutex     // one image at a time
	feat kernels.Tensor // [Tokens, InDim]: the concatenated features
	pix  [3][]float32   // the towers' pixels, reused
}

// Stages are the times an Encode call spent in each stage (with
// Encoder.Encode's timed mode, which waits for the backend after each).
type Stages struct {
	Preprocess, DINO, SigLIP, SAM, Projector time.Duration
}

// LoadEncoder reads the towers (keys vit.dino_featurizer.*,
// vit.siglip_featurizer.*, vit.sam_featurizer.*) and the projector
// (proj.*) of a VisualRWKV-7 checkpoint onto be, checking cfg against the
// checkpoint's shapes (see Config.Check). src must stay open while the
// encoder lives.
func LoadEncoder(src core.Source, be kernels.Backend, cfg Config) (*Encoder, error) {
	if err := cfg.Check(src); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, be: be}
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
	return nil
}

// Config returns the towers' sizes.
func (e *Encoder) Config() Config { return e.cfg }

// Tokens is the number of embedding rows an image becomes.
func (e *Encoder) Tokens() int { return e.cfg.DINO.Patches() }

// Width is the width of an embedding row (the language model's).
func (e *Encoder) Width() int { return e.proj.OutDim() }

// towers returns the preprocessing of each tower (DINOv2, SigLIP, SAM).
func (e *Encoder) towers() [3]preprocess.Tower {
	c := e.cfg
	return [3]preprocess.Tower{preprocess.DINOv2(c.DINO.ImageSize), preprocess.SigLIP(c.SigLIP.ImageSize),
		preprocess.SAM(c.SAM.ImageSize)}
}

// prepare returns each tower's normalised pixels (DINOv2, SigLIP, SAM).
func (e *Encoder) prepare(img image.Image) [][]float32 {
	t := e.towers()
	return preprocess.Prepare(img, t[0], t[1], t[2])
}

// Encode encodes an image and calls use with its Tokens() embedding rows,
// an F32 [Tokens, Width] tensor on the encoder's backend that stays valid
// until use returns (give it to core.Session.PrefillEmbedTensor, or
// Prefill). Calls take turns. ctx is checked between the towers' blocks,
// so a cancelled encoding stops within one block.
//
// The image is converted to RGB once and resized once per size. The
// towers' ops are queued as soon as their pixels are ready: on a GPU the
// DINOv2 and SigLIP towers run while SAM's larger input is prepared on
// the host. With st non-nil, Encode instead prepares every input first
// and waits for the backend after each stage, recording the stage's time
// in st (for benchmarks; it costs a little speed on a GPU).
//
// A checkpoint truncated while mapped fails the call instead of the
// process (internal/memfault).
func (e *Encoder) Encode(ctx context.Context, img image.Image, st *Stages, use func(rows kernels.Tensor) error) (err error) {
	defer memfault.Catch(&err)()
	if img == nil || img.Bounds().Empty() {
		return errors.New("vision: empty image")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t0 := time.Now()
	mark := func(d *time.Duration) error {
		if st == nil {
			return nil
		}
		if err := e.be.Sync(); err != nil {
			return err
		}
		now := time.Now()
		*d, t0 = now.Sub(t0), now
		return nil
	}
	rgb := preprocess.NewRGB(img)
	tw := e.towers()
	// SAM's input (the largest) is prepared in the background; the others
	// on this goroutine as their towers come up. In timed mode all three
	// are ready before any tower runs.
	samReady := make(chan struct{})
	go func() {
		defer close(samReady)
		e.pix[2] = rgb.Pixels(tw[2], e.pix[2])
	}()
	defer func() { <-samReady }() // e.pix[2] is written until then
	if st != nil {
		for i := range 2 {
			e.pix[i] = rgb.Pixels(tw[i], e.pix[i])
		}
		<-samReady
		if err := mark(&st.Preprocess); err != nil {
			return err
		}
	}
	if !e.feat.Valid() {
		ts, err := nn.Scratch(e.be, [2]int{e.Tokens(), e.proj.InDim()})
		if err != nil {
			return fmt.Errorf("vision: %w", err)
		}
		e.feat = ts[0]
	}
	col := 0
	towers := []struct {
		name string
		run  func(context.Context, []float32) (kernels.Tensor, error)
		d    *time.Duration
	}{
		{"DINOv2", e.dino.Encode, &stDur(st).DINO},
		{"SigLIP", e.siglip.Encode, &stDur(st).SigLIP},
		{"SAM", e.sam.Encode, &stDur(st).SAM},
	}
	for i, t := range towers {
		if st == nil {
			if i < 2 {
				e.pix[i] = rgb.Pixels(tw[i], e.pix[i])
			} else {
				<-samReady
			}
		}
		f, err := t.run(ctx, e.pix[i])
		if err != nil {
			return fmt.Errorf("%s tower: %w", t.name, err)
		}
		e.be.CopyCols(e.feat, f, col)
		col += f.Cols
		if err := mark(t.d); err != nil {
			return fmt.Errorf("%s tower: %w", t.name, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	rows, err := e.proj.Apply(e.feat)
	if err != nil {
		return err
	}
	if err := mark(&stDur(st).Projector); err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	if err := e.be.Sync(); err != nil {
		return fmt.Errorf("vision: encode: %w", err)
	}
	return use(rows)
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
}
