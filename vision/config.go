package vision

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/vision/internal/nn"
	"github.com/goose-rwkv/goose/vision/sam"
	"github.com/goose-rwkv/goose/vision/vit"
)

// Config holds the sizes of VisualRWKV-7's three towers; the JSON names
// match VisualRWKV-7 configuration files. FromCheckpoint reads most of it
// from a checkpoint's tensor shapes; what shapes do not store (ViT head
// counts, LayerNorm epsilons, which block's output is used) comes from a
// table of the known towers.
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

// Small returns tiny towers of released widths (so FromCheckpoint reads
// their sizes back): DINOv2- and SigLIP-style ViTs of width 384 at 28
// pixels and a SAM of width 64 at 64 pixels with one windowed and one
// global block, giving 4 image tokens. Test checkpoints use it (gooseapp
// testmodel --kind visualrwkv).
func Small() Config {
	return Config{
		DINO: vit.Config{ImageSize: 28, Patch: 14, Dim: 384, Depth: 2, Heads: 6, MLPHidden: 512, Registers: 4,
			ClassToken: true, LayerScale: true, FeatureBlock: 0, LNEps: 1e-6, GELU: "erf"},
		SigLIP: vit.Config{ImageSize: 28, Patch: 14, Dim: 384, Depth: 2, Heads: 6, MLPHidden: 512,
			FeatureBlock: 0, LNEps: 1e-6, GELU: "erf"},
		SAM: sam.Config{ImageSize: 64, Patch: 16, EmbedDim: 64, Depth: 2, Heads: 2, MLPHidden: 128, Window: 2,
			GlobalBlocks: []int{1}, RelPos: true, NeckChannels: 32, Merge: 2, GELU: "erf", LNEps: 1e-6},
	}
}

// ParseConfig reads a configuration from JSON: an object with "dino",
// "siglip" and "sam" members, or one whose "config" member is such an
// object (as the golden fixture's description is). Unknown fields are
// errors, so that a misspelt size is not silently ignored.
func ParseConfig(raw []byte) (Config, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Config{}, err
	}
	if inner, ok := probe["config"]; ok {
		raw = inner
	}
	var towers struct {
		DINO   json.RawMessage `json:"dino"`
		SigLIP json.RawMessage `json:"siglip"`
		SAM    json.RawMessage `json:"sam"`
	}
	if err := json.Unmarshal(raw, &towers); err != nil {
		return Config{}, err
	}
	if towers.DINO == nil || towers.SigLIP == nil || towers.SAM == nil {
		return Config{}, fmt.Errorf("want \"dino\", \"siglip\" and \"sam\" objects")
	}
	var c Config
	for _, part := range []struct {
		name string
		raw  json.RawMessage
		dst  any
	}{{"dino", towers.DINO, &c.DINO}, {"siglip", towers.SigLIP, &c.SigLIP}, {"sam", towers.SAM, &c.SAM}} {
		if err := strictJSON(part.raw, part.dst); err != nil {
			return Config{}, fmt.Errorf("%s: %w", part.name, err)
		}
	}
	return c, nil
}

// strictJSON decodes raw into dst, ignoring only the normalisation fields
// VisualRWKV-7 configs carry ("mean", "std": the preprocessing is fixed per
// tower) and rejecting other unknown fields.
func strictJSON(raw []byte, dst any) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return err
	}
	delete(fields, "mean")
	delete(fields, "std")
	clean, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(clean)))
	d.DisallowUnknownFields()
	return d.Decode(dst)
}

// Tower key prefixes in a VisualRWKV-7 checkpoint.
const (
	dinoPrefix   = "vit.dino_featurizer."
	siglipPrefix = "vit.siglip_featurizer."
	samPrefix    = "vit.sam_featurizer."
)

// maxDepth bounds the blocks counted in a checkpoint's tower.
const maxDepth = 256

// fieldError names the configuration field at fault.
type fieldError struct {
	Field, Msg string
}

func (e *fieldError) Error() string { return "vision config: " + e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &fieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// towerErr names the field of a tower's Validate error under the tower's
// name ("heads" of the DINOv2 tower is "dino.heads").
func towerErr(name string, err error) error {
	var fe *nn.FieldError
	if errors.As(err, &fe) {
		return fieldErr(name+"."+fe.Field, "%s", fe.Msg)
	}
	return fmt.Errorf("vision config: %s: %w", name, err)
}

// blockCount returns the number of consecutive blocks.N. tensors under
// prefix (probing name after "blocks.N.").
func blockCount(src core.Source, prefix, name string) int {
	n := 0
	for n < maxDepth+1 {
		if _, ok := src.Lookup(fmt.Sprintf("%sblocks.%d.%s", prefix, n, name)); !ok {
			break
		}
		n++
	}
	return n
}

func shape(src core.Source, name string) []int {
	info, ok := src.Lookup(name)
	if !ok {
		return nil
	}
	return info.Shape
}

// Check validates every field of c against sane bounds and against the
// shapes of the checkpoint's tensors, with an error naming the field
// (for example "vision config: sam.window: ..."). LoadEncoder calls it.
func (c Config) Check(src core.Source) error {
	if err := checkViT(src, dinoPrefix, "dino", c.DINO); err != nil {
		return err
	}
	if err := checkViT(src, siglipPrefix, "siglip", c.SigLIP); err != nil {
		return err
	}
	if err := checkSAM(src, "sam", c.SAM); err != nil {
		return err
	}
	n := c.DINO.Patches()
	if c.SigLIP.Patches() != n {
		return fieldErr("siglip.image_size", "%d patches, DINOv2 gives %d; the towers' image tokens must agree", c.SigLIP.Patches(), n)
	}
	if c.SAM.Tokens() != n {
		return fieldErr("sam.merge", "SAM gives %d image tokens after merging, DINOv2 %d", c.SAM.Tokens(), n)
	}
	if sh := shape(src, "proj.gate.weight"); len(sh) == 2 {
		if want := c.DINO.Dim + c.SigLIP.Dim + c.SAM.FeatureDim(); sh[1] != want {
			return fieldErr("sam.merge", "the towers give %d features (%d + %d + %d·%d²), the projector takes %d",
				want, c.DINO.Dim, c.SigLIP.Dim, c.SAM.NeckChannels, c.SAM.Merge, sh[1])
		}
	}
	return nil
}

// checkViT validates one ViT tower's fields (vit.Config.Validate) and
// compares them with the checkpoint's shapes.
func checkViT(src core.Source, prefix, name string, c vit.Config) error {
	f := func(field string) string { return name + "." + field }
	pw := shape(src, prefix+"patch_embed.proj.weight")
	if len(pw) != 4 {
		return fmt.Errorf("vision: %s tower: tensor %spatch_embed.proj.weight missing or not 4-D (%v)", name, prefix, pw)
	}
	if err := c.Validate(); err != nil {
		return towerErr(name, err)
	}
	switch {
	case c.Patch != pw[2]:
		return fieldErr(f("patch"), "%d, the checkpoint's patch embedding is %d×%d", c.Patch, pw[2], pw[3])
	case c.Dim != pw[0]:
		return fieldErr(f("embed_dim"), "%d, the checkpoint's is %d", c.Dim, pw[0])
	}
	if depth := blockCount(src, prefix, "attn.qkv.weight"); c.Depth > depth {
		return fieldErr(f("depth"), "%d, the checkpoint has %d blocks", c.Depth, depth)
	}
	if sh := shape(src, prefix+"blocks.0.mlp.fc1.weight"); len(sh) == 2 && c.MLPHidden != sh[0] {
		return fieldErr(f("mlp_hidden"), "%d, the checkpoint's is %d", c.MLPHidden, sh[0])
	}
	_, hasCls := src.Lookup(prefix + "cls_token")
	if c.ClassToken != hasCls {
		return fieldErr(f("class_token"), "%v, but the checkpoint %s one", c.ClassToken, has(hasCls))
	}
	reg := 0
	if sh := shape(src, prefix+"reg_token"); len(sh) == 3 {
		reg = sh[1]
	}
	if c.Registers != reg {
		return fieldErr(f("reg_tokens"), "%d, the checkpoint has %d", c.Registers, reg)
	}
	_, hasLS := src.Lookup(prefix + "blocks.0.ls1.gamma")
	if c.LayerScale != hasLS {
		return fieldErr(f("layer_scale"), "%v, but the checkpoint %s LayerScale", c.LayerScale, has(hasLS))
	}
	if sh := shape(src, prefix+"pos_embed"); len(sh) == 3 {
		if n := c.Patches(); sh[1] != n && sh[1] != n+reg+btoi(hasCls) {
			return fieldErr(f("image_size"), "%d gives %d patches, the checkpoint's position table has %d rows",
				c.ImageSize, n, sh[1])
		}
	}
	return nil
}

// checkSAM validates the SAM tower's fields (sam.Config.Validate) and
// compares them with the checkpoint's shapes.
func checkSAM(src core.Source, name string, c sam.Config) error {
	f := func(field string) string { return name + "." + field }
	pw := shape(src, samPrefix+"patch_embed.proj.weight")
	if len(pw) != 4 {
		return fmt.Errorf("vision: SAM tower: tensor %spatch_embed.proj.weight missing or not 4-D (%v)", samPrefix, pw)
	}
	if err := c.Validate(); err != nil {
		return towerErr(name, err)
	}
	switch {
	case c.Patch != pw[2]:
		return fieldErr(f("patch"), "%d, the checkpoint's patch embedding is %d×%d", c.Patch, pw[2], pw[3])
	case c.EmbedDim != pw[0]:
		return fieldErr(f("embed_dim"), "%d, the checkpoint's is %d", c.EmbedDim, pw[0])
	}
	G := c.Grid()
	if sh := shape(src, samPrefix+"pos_embed"); len(sh) == 4 && (sh[1] != G || sh[2] != G) {
		return fieldErr(f("image_size"), "%d gives a %d×%d patch grid, the checkpoint's position table is %d×%d",
			c.ImageSize, G, G, sh[1], sh[2])
	}
	if depth := blockCount(src, samPrefix, "attn.qkv.weight"); c.Depth > depth {
		return fieldErr(f("depth"), "%d, the checkpoint has %d blocks", c.Depth, depth)
	}
	if sh := shape(src, samPrefix+"blocks.0.mlp.lin1.weight"); len(sh) == 2 && c.MLPHidden != sh[0] {
		return fieldErr(f("mlp_hidden"), "%d, the checkpoint's is %d", c.MLPHidden, sh[0])
	}
	if sh := shape(src, samPrefix+"blocks.0.attn.rel_pos_h"); len(sh) == 2 && c.EmbedDim/c.Heads != sh[1] {
		return fieldErr(f("heads"), "%d heads of %d, the checkpoint's relative-position tables are %d wide (%d heads)",
			c.Heads, c.EmbedDim/c.Heads, sh[1], c.EmbedDim/max(sh[1], 1))
	}
	if sh := shape(src, samPrefix+"neck.0.weight"); len(sh) == 4 && c.NeckChannels != sh[0] {
		return fieldErr(f("neck_channels"), "%d, the checkpoint's is %d", c.NeckChannels, sh[0])
	}
	return nil
}

func has(b bool) string {
	if b {
		return "has"
	}
	return "has no"
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// knownHeads maps the width of a released ViT to its head count (64-wide
// heads, except SigLIP-So400m's 72): checkpoints do not store it.
var knownHeads = map[int]int{384: 6, 768: 12, 1024: 16, 1152: 16, 1280: 16, 1536: 24}

// FromCheckpoint reads a VisualRWKV-7 checkpoint's tower sizes from its
// tensor shapes: widths, depths, patch sizes, patch grids (hence image
// sizes), MLP widths, registers, class tokens, LayerScale, SAM's heads
// (from its relative-position tables), window and global blocks, neck
// width and merge factor. ViT head counts are not stored: they come from
// the widths of the released towers (384, 768, 1024, 1152, 1280, 1536);
// another width is an error that says to pass a configuration. The
// feature block is the second-to-last, as VisualRWKV-7 uses. A checkpoint
// without the towers' tensors is "not a VisualRWKV-7 checkpoint".
func FromCheckpoint(src core.Source) (Config, error) {
	if !IsCheckpoint(src) {
		return Config{}, ErrNotVisual
	}
	var c Config
	var err error
	if c.DINO, err = inferViT(src, dinoPrefix, "dino"); err != nil {
		return Config{}, err
	}
	if c.SigLIP, err = inferViT(src, siglipPrefix, "siglip"); err != nil {
		return Config{}, err
	}
	if c.SAM, err = inferSAM(src, c.DINO.Dim+c.SigLIP.Dim); err != nil {
		return Config{}, err
	}
	if err := c.Check(src); err != nil {
		return Config{}, fmt.Errorf("%w (the sizes read from the checkpoint do not fit; pass a configuration)", err)
	}
	return c, nil
}

// ErrNotVisual says a checkpoint has no VisualRWKV-7 image towers.
var ErrNotVisual = fmt.Errorf("not a VisualRWKV-7 checkpoint (no language model under \"rwkv.\" with image towers under \"vit.\")")

// needConfig is the error for a size the checkpoint does not store.
func needConfig(field, why string) error {
	return fieldErr(field, "%s; pass --config FILE (VisualRWKV-7 JSON with dino, siglip and sam objects) giving it", why)
}

func inferViT(src core.Source, prefix, name string) (vit.Config, error) {
	var c vit.Config
	pw := shape(src, prefix+"patch_embed.proj.weight")
	if len(pw) != 4 || pw[2] != pw[3] || pw[2] <= 0 {
		return c, fmt.Errorf("vision: %s tower: tensor %spatch_embed.proj.weight missing or not a square 4-D kernel (%v)", name, prefix, pw)
	}
	c.Dim, c.Patch = pw[0], pw[2]
	c.Depth = blockCount(src, prefix, "attn.qkv.weight")
	if c.Depth < 2 {
		return c, fmt.Errorf("vision: %s tower: %d blocks in the checkpoint, want at least 2", name, c.Depth)
	}
	c.FeatureBlock = c.Depth - 2
	_, c.ClassToken = src.Lookup(prefix + "cls_token")
	if sh := shape(src, prefix+"reg_token"); len(sh) == 3 {
		c.Registers = sh[1]
	}
	_, c.LayerScale = src.Lookup(prefix + "blocks.0.ls1.gamma")
	if sh := shape(src, prefix+"blocks.0.mlp.fc1.weight"); len(sh) == 2 {
		c.MLPHidden = sh[0]
	}
	pos := shape(src, prefix+"pos_embed")
	if len(pos) != 3 {
		return c, fmt.Errorf("vision: %s tower: tensor %spos_embed missing or not 3-D (%v)", name, prefix, pos)
	}
	n := pos[1]
	if g := isqrt(n); g*g != n {
		n -= c.Registers + btoi(c.ClassToken)
	}
	g := isqrt(n)
	if g <= 0 || g*g != n {
		return c, fmt.Errorf("vision: %s tower: position table of %d rows is not a square patch grid", name, pos[1])
	}
	c.ImageSize = g * c.Patch
	c.LNEps = 1e-6
	c.GELU = "erf"
	h, ok := knownHeads[c.Dim]
	if !ok {
		return c, needConfig(name+".heads", fmt.Sprintf("the head count of a width-%d tower is not stored in checkpoints and not one of the released towers'", c.Dim))
	}
	c.Heads = h
	return c, nil
}

func inferSAM(src core.Source, vitFeatures int) (sam.Config, error) {
	c := sam.Config{RelPos: true, GELU: "erf", LNEps: 1e-6}
	pw := shape(src, samPrefix+"patch_embed.proj.weight")
	if len(pw) != 4 || pw[2] != pw[3] || pw[2] <= 0 {
		return c, fmt.Errorf("vision: SAM tower: tensor %spatch_embed.proj.weight missing or not a square 4-D kernel (%v)", samPrefix, pw)
	}
	c.EmbedDim, c.Patch = pw[0], pw[2]
	pos := shape(src, samPrefix+"pos_embed")
	if len(pos) != 4 || pos[1] != pos[2] || pos[1] <= 0 {
		return c, fmt.Errorf("vision: SAM tower: tensor %spos_embed missing or not a square grid (%v)", samPrefix, pos)
	}
	G := pos[1]
	c.ImageSize = G * c.Patch
	c.Depth = blockCount(src, samPrefix, "attn.qkv.weight")
	if c.Depth == 0 {
		return c, fmt.Errorf("vision: SAM tower: no blocks in the checkpoint")
	}
	if sh := shape(src, samPrefix+"blocks.0.mlp.lin1.weight"); len(sh) == 2 {
		c.MLPHidden = sh[0]
	}
	rel := shape(src, samPrefix+"blocks.0.attn.rel_pos_h")
	if len(rel) != 2 || rel[1] <= 0 || c.EmbedDim%rel[1] != 0 {
		return c, fmt.Errorf("vision: SAM tower: tensor %sblocks.0.attn.rel_pos_h missing or misshapen (%v)", samPrefix, rel)
	}
	c.Heads = c.EmbedDim / rel[1]
	// A block's table has 2·span−1 rows: the grid's side for a global
	// block, the window's for a windowed one.
	for i := range c.Depth {
		sh := shape(src, fmt.Sprintf("%sblocks.%d.attn.rel_pos_h", samPrefix, i))
		if len(sh) != 2 || sh[0]%2 == 0 {
			return c, fmt.Errorf("vision: SAM tower: block %d's relative-position table is %v, want [2·span−1, %d]", i, sh, rel[1])
		}
		span := (sh[0] + 1) / 2
		switch {
		case span == G:
			c.GlobalBlocks = append(c.GlobalBlocks, i)
		case c.Window == 0 || c.Window == span:
			c.Window = span
		default:
			return c, needConfig("sam.window", fmt.Sprintf("blocks have relative-position tables for windows of %d and %d", c.Window, span))
		}
	}
	if sh := shape(src, samPrefix+"neck.0.weight"); len(sh) == 4 {
		c.NeckChannels = sh[0]
	}
	gate := shape(src, "proj.gate.weight")
	if len(gate) != 2 || c.NeckChannels <= 0 {
		return c, fmt.Errorf("vision: missing or misshapen projector proj.gate.weight (%v) or SAM neck", gate)
	}
	rest := gate[1] - vitFeatures
	m := isqrt(max(rest/c.NeckChannels, 0))
	if m <= 0 || m*m*c.NeckChannels != rest {
		return c, needConfig("sam.merge", fmt.Sprintf("the projector's %d inputs minus the ViTs' %d are not the SAM neck's %d channels times a square", gate[1], vitFeatures, c.NeckChannels))
	}
	c.Merge = m
	slices.Sort(c.GlobalBlocks)
	return c, nil
}

// isqrt is ⌊√n⌋ for n ≥ 0.
func isqrt(n int) int {
	if n <= 0 {
		return 0
	}
	r := int(math.Sqrt(float64(n)))
	for r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return r
}

// FLOPs counts the floating-point operations (2 per multiply-add) of one
// image through each tower and the projector: the matrix products
// (patch embedding, qkv, proj, MLP, SAM's neck, the projector's two) and
// attention's two products per head; the element-wise work is left out.
// lmWidth is the language model's width (the projector's output).
func (c Config) FLOPs(lmWidth int) (dino, siglip, samF, proj float64) {
	vitF := func(v vit.Config) float64 {
		N, D, H, P := float64(v.Patches()), float64(v.Dim), float64(v.MLPHidden), float64(v.Patch)
		T := N + float64(v.Registers+btoi(v.ClassToken))
		f := 2 * N * 3 * P * P * D
		per := 2*T*(4*D*D+2*D*H) + 4*T*T*D
		return f + per*float64(v.FeatureBlock+1)
	}
	s := c.SAM
	G, D, H, P, N := float64(s.Grid()), float64(s.EmbedDim), float64(s.MLPHidden), float64(s.Patch), float64(s.NeckChannels)
	T := G * G
	samF = 2 * T * 3 * P * P * D
	for i := range s.Depth {
		rows, n, groups := T, T, 1.0
		if !slices.Contains(s.GlobalBlocks, i) && s.Window > 0 {
			w := float64(s.Window)
			groups = float64(s.WindowCount())
			n = w * w
			rows = groups * n
		}
		samF += 2*rows*4*D*D + 2*T*2*D*H + groups*4*n*n*D
	}
	samF += 2*T*D*N + 2*T*9*N*N
	in := float64(c.DINO.Dim + c.SigLIP.Dim + s.FeatureDim())
	tokens := float64(c.DINO.Patches())
	proj = 2 * tokens * (in*in + in*float64(lmWidth))
	return vitF(c.DINO), vitF(c.SigLIP), samF, proj
}
