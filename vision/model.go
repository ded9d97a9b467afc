package vision

import (
	"context"
	"errors"
	"fmt"
	"image"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/preprocess"
	"github.com/goose-rwkv/goose/vision/sam"
	"github.com/goose-rwkv/goose/vision/vit"
)

// Config holds the sizes of VisualRWKV-7's three towers. Head counts,
// window sizes and global blocks are not stored in checkpoints, so they
// come from here; the JSON names match VisualRWKV-7 configuration files.
type Config struct {
	DINO   vit.Config `json:"dino"`
	SigLIP vit.Config `json:"siglip"`
	SAM    sam.Config `json:"sam"`
}

// Released returns the configuration of the released VisualRWKV-7 models
// (v7.00): DINOv2-L/14 reg4 and SigLIP-So400m/14 at 448 pixels, SAM ViT-B
// at 1024 pixels; 1024 image tokens of 3200 features each.
func Released() Config {
	return Config{
		DINO:   vit.DINOv2(),
		SigLIP: vit.SigLIP(),
		SAM: sam.Config{ImageSize: 1024, Patch: 16, EmbedDim: 768, Depth: 12, Heads: 12, MLPHidden: 3072,
			Window: 14, GlobalBlocks: []int{2, 5, 8, 11}, RelPos: true, NeckChannels: 256, Merge: 2, GELU: "erf"},
	}
}

// IsCheckpoint reports whether src is a VisualRWKV-7 checkpoint: a
// language model under "rwkv." and DINOv2 tower weights under
// "vit.dino_featurizer.".
func IsCheckpoint(src core.Source) bool {
	if _, ok := src.Lookup("rwkv.emb.weight"); !ok {
		return false
	}
	for _, t := range src.Tensors() {
		if strings.HasPrefix(t.Name, "vit.dino_featurizer.") {
			return true
		}
	}
	return false
}

// Model is VisualRWKV-7's image encoder: three towers whose features are
// concatenated per image token (DINOv2 | SigLIP | SAM) and projected to the
// language model's embeddings.
type Model struct {
	cfg    Config
	dino   *vit.Tower
	siglip *vit.Tower
	sam    *sam.Encoder
	proj   *Projector
}

// Load reads the towers (keys vit.dino_featurizer.*, vit.siglip_featurizer.*,
// vit.sam_featurizer.*) and the projector (proj.*) of a VisualRWKV-7
// checkpoint. The projector and the towers' matrix products run on be
// (the towers' element-wise parts in Go); src must stay open while the
// model lives.
func Load(src core.Source, be kernels.Backend, cfg Config) (*Model, error) {
	m := &Model{cfg: cfg}
	if err := m.load(src, be); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// load reads the parts into m; on error m holds those read so far.
func (m *Model) load(src core.Source, be kernels.Backend) error {
	cfg := m.cfg
	var err error
	if m.dino, err = vit.Load(src, "vit.dino_featurizer.", cfg.DINO, be); err != nil {
		return fmt.Errorf("DINOv2 tower: %w", err)
	}
	if m.siglip, err = vit.Load(src, "vit.siglip_featurizer.", cfg.SigLIP, be); err != nil {
		return fmt.Errorf("SigLIP tower: %w", err)
	}
	if m.sam, err = sam.Load(src, "vit.sam_featurizer.", cfg.SAM, be); err != nil {
		return fmt.Errorf("SAM tower: %w", err)
	}
	n := cfg.DINO.Patches()
	if cfg.SigLIP.Patches() != n || cfg.SAM.Tokens() != n {
		return fmt.Errorf("towers give %d, %d and %d image tokens; they must agree", n, cfg.SigLIP.Patches(), cfg.SAM.Tokens())
	}
	if m.proj, err = LoadProjector(src, be); err != nil {
		return err
	}
	if want := cfg.DINO.Dim + cfg.SigLIP.Dim + cfg.SAM.FeatureDim(); m.proj.InDim() != want {
		return fmt.Errorf("projector takes %d features, the towers give %d", m.proj.InDim(), want)
	}
	return nil
}

// Tokens is the number of embedding rows an image becomes.
func (m *Model) Tokens() int { return m.cfg.DINO.Patches() }

// Embed encodes an image into Tokens() rows of language-model embeddings
// (row-major, OutDim wide), ready for core.Session.PrefillEmbeds. ctx is
// checked between the towers' blocks, so a cancelled encoding stops within
// one block.
func (m *Model) Embed(ctx context.Context, img image.Image) ([]float32, error) {
	if img == nil || img.Bounds().Empty() {
		return nil, errors.New("vision: empty image")
	}
	parts := make([][]float32, 3)
	var err error
	if parts[0], err = m.dino.Features(ctx, preprocess.Pixels(img, preprocess.DINOv2(m.cfg.DINO.ImageSize))); err != nil {
		return nil, fmt.Errorf("DINOv2 tower: %w", err)
	}
	if parts[1], err = m.siglip.Features(ctx, preprocess.Pixels(img, preprocess.SigLIP(m.cfg.SigLIP.ImageSize))); err != nil {
		return nil, fmt.Errorf("SigLIP tower: %w", err)
	}
	if parts[2], err = m.sam.Features(ctx, preprocess.Pixels(img, preprocess.SAM(m.cfg.SAM.ImageSize))); err != nil {
		return nil, fmt.Errorf("SAM tower: %w", err)
	}
	n := m.Tokens()
	feat := make([]float32, 0, n*m.proj.InDim())
	for r := range n {
		for _, p := range parts {
			w := len(p) / n
			feat = append(feat, p[r*w:(r+1)*w]...)
		}
	}
	return m.proj.Project(feat)
}

// Close frees the towers' and the projector's backend memory.
func (m *Model) Close() {
	if m.dino != nil {
		m.dino.Close()
	}
	if m.siglip != nil {
		m.siglip.Close()
	}
	if m.sam != nil {
		m.sam.Close()
	}
	if m.proj != nil {
		m.proj.Close()
	}
}
