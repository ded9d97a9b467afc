package vision

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// randomSource is an in-memory VisualRWKV-7 checkpoint whose tower and
// projector tensors are generated (bf16) when first read.
type randomSource struct {
	lm    core.Source // the language model, names without "rwkv."
	infos []checkpoint.Info
	index map[string]int
	kind  map[string]randKind
	seed  uint64

	mu   sync.Mutex
	data map[string][]byte
}

// randKind says how a random tensor is filled.
type randKind struct {
	mean, scale float32 // uniform in mean ± scale
}

// RandomSource returns a VisualRWKV-7 checkpoint with towers of cfg's
// sizes, a projector to the language model's width and the language model
// lm (core.OfficialShape) under "rwkv.", with random, well-scaled bf16
// weights (a forward pass stays finite), deterministic in seed. Speed does
// not depend on weight values, so benchmarks at the released sizes use it.
// Tower tensors are generated when first read, so that looking at shapes
// (FromCheckpoint) costs nothing.
func RandomSource(cfg Config, lm core.Config, seed uint64) (core.Source, error) {
	lmSrc, err := core.RandomSource(lm, seed)
	if err != nil {
		return nil, err
	}
	s := &randomSource{lm: lmSrc, index: map[string]int{}, kind: map[string]randKind{}, seed: seed, data: map[string][]byte{}}
	for _, t := range lmSrc.Tensors() {
		t.Name = "rwkv." + t.Name
		s.add(t.Name, randKind{}, t.Shape...)
		s.infos[len(s.infos)-1].DType = t.DType
	}
	weight := func(fanIn int) randKind { return randKind{scale: float32(math.Sqrt(3 / float64(fanIn)))} }
	ones := randKind{mean: 1, scale: 0.1}
	small := randKind{scale: 0.02}
	for _, t := range []struct {
		prefix string
		c      func() (D, P, N, depth, H int, cls bool, reg int, ls bool)
	}{
		{dinoPrefix, func() (int, int, int, int, int, bool, int, bool) {
			c := cfg.DINO
			return c.Dim, c.Patch, c.Patches(), c.Depth, c.MLPHidden, c.ClassToken, c.Registers, c.LayerScale
		}},
		{siglipPrefix, func() (int, int, int, int, int, bool, int, bool) {
			c := cfg.SigLIP
			return c.Dim, c.Patch, c.Patches(), c.Depth, c.MLPHidden, c.ClassToken, c.Registers, c.LayerScale
		}},
	} {
		D, P, N, depth, H, cls, reg, ls := t.c()
		p := t.prefix
		s.add(p+"patch_embed.proj.weight", weight(3*P*P), D, 3, P, P)
		s.add(p+"patch_embed.proj.bias", small, D)
		s.add(p+"pos_embed", small, 1, N, D)
		if cls {
			s.add(p+"cls_token", small, 1, 1, D)
		}
		if reg > 0 {
			s.add(p+"reg_token", small, 1, reg, D)
		}
		for i := range depth {
			b := fmt.Sprintf("%sblocks.%d.", p, i)
			s.add(b+"norm1.weight", ones, D)
			s.add(b+"norm1.bias", small, D)
			s.add(b+"attn.qkv.weight", weight(D), 3*D, D)
			s.add(b+"attn.qkv.bias", small, 3*D)
			s.add(b+"attn.proj.weight", weight(D), D, D)
			s.add(b+"attn.proj.bias", small, D)
			s.add(b+"norm2.weight", ones, D)
			s.add(b+"norm2.bias", small, D)
			s.add(b+"mlp.fc1.weight", weight(D), H, D)
			s.add(b+"mlp.fc1.bias", small, H)
			s.add(b+"mlp.fc2.weight", weight(H), D, H)
			s.add(b+"mlp.fc2.bias", small, D)
			if ls {
				s.add(b+"ls1.gamma", randKind{mean: 0.1, scale: 0.05}, D)
				s.add(b+"ls2.gamma", randKind{mean: 0.1, scale: 0.05}, D)
			}
		}
	}
	c := cfg.SAM
	D, P, G, N, hd := c.EmbedDim, c.Patch, c.Grid(), c.NeckChannels, c.EmbedDim/max(c.Heads, 1)
	p := samPrefix
	s.add(p+"patch_embed.proj.weight", weight(3*P*P), D, 3, P, P)
	s.add(p+"patch_embed.proj.bias", small, D)
	s.add(p+"pos_embed", small, 1, G, G, D)
	for i := range c.Depth {
		b := fmt.Sprintf("%sblocks.%d.", p, i)
		span := c.Window
		for _, g := range c.GlobalBlocks {
			if g == i {
				span = G
			}
		}
		s.add(b+"norm1.weight", ones, D)
		s.add(b+"norm1.bias", small, D)
		s.add(b+"attn.qkv.weight", weight(D), 3*D, D)
		s.add(b+"attn.qkv.bias", small, 3*D)
		s.add(b+"attn.proj.weight", weight(D), D, D)
		s.add(b+"attn.proj.bias", small, D)
		s.add(b+"attn.rel_pos_h", small, 2*span-1, hd)
		s.add(b+"attn.rel_pos_w", small, 2*span-1, hd)
		s.add(b+"norm2.weight", ones, D)
		s.add(b+"norm2.bias", small, D)
		s.add(b+"mlp.lin1.weight", weight(D), c.MLPHidden, D)
		s.add(b+"mlp.lin1.bias", small, c.MLPHidden)
		s.add(b+"mlp.lin2.weight", weight(c.MLPHidden), D, c.MLPHidden)
		s.add(b+"mlp.lin2.bias", small, D)
	}
	s.add(p+"neck.0.weight", weight(D), N, D, 1, 1)
	s.add(p+"neck.1.weight", ones, N)
	s.add(p+"neck.1.bias", small, N)
	s.add(p+"neck.2.weight", weight(9*N), N, N, 3, 3)
	s.add(p+"neck.3.weight", ones, N)
	s.add(p+"neck.3.bias", small, N)
	in := cfg.DINO.Dim + cfg.SigLIP.Dim + c.FeatureDim()
	s.add("proj.gate.weight", weight(in), in, in)
	s.add("proj.o_proj.weight", weight(in), lm.Width, in)
	s.add("proj.ln_v.weight", ones, lm.Width)
	s.add("proj.ln_v.bias", small, lm.Width)
	return s, nil
}

func (s *randomSource) add(name string, k randKind, shape ...int) {
	s.index[name] = len(s.infos)
	s.kind[name] = k
	s.infos = append(s.infos, checkpoint.Info{Name: name, DType: kernels.BF16, Shape: shape})
}

func (s *randomSource) Tensors() []checkpoint.Info { return s.infos }

func (s *randomSource) Lookup(name string) (checkpoint.Info, bool) {
	i, ok := s.index[name]
	if !ok {
		return checkpoint.Info{}, false
	}
	return s.infos[i], true
}

// Bytes returns a tensor's little-endian elements, generating them on
// first use.
func (s *randomSource) Bytes(name string) ([]byte, error) {
	i, ok := s.index[name]
	if !ok {
		return nil, fmt.Errorf("random checkpoint: no tensor %s", name)
	}
	if lmName, isLM := strings.CutPrefix(name, "rwkv."); isLM {
		return s.lm.Bytes(lmName)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.data[name]; ok {
		return b, nil
	}
	b := fillBF16(s.infos[i].Len(), s.kind[name], s.seed^hashName(name))
	s.data[name] = b
	return b, nil
}

// hashName is FNV-1a of a tensor name, to seed its values.
func hashName(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// fillBF16 returns n bf16 values uniform in k.mean ± k.scale, generated
// in parallel with a splitmix64 stream per chunk.
func fillBF16(n int, k randKind, seed uint64) []byte {
	out := make([]byte, 2*n)
	const chunk = 1 << 16
	chunks := (n + chunk - 1) / chunk
	workers := min(runtime.GOMAXPROCS(0), max(chunks, 1))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := w; c < chunks; c += workers {
				x := seed + uint64(c)*0x9e3779b97f4a7c15
				for i := c * chunk; i < min(n, (c+1)*chunk); i++ {
					x += 0x9e3779b97f4a7c15
					z := x
					z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
					z = (z ^ z>>27) * 0x94d049bb133111eb
					z ^= z >> 31
					u := float32(z>>40)/float32(1<<24)*2 - 1 // [-1, 1)
					binary.LittleEndian.PutUint16(out[2*i:], half.F32ToBF16(k.mean+k.scale*u))
				}
			}
		}()
	}
	wg.Wait()
	return out
}
