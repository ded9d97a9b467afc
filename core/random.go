package core

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/atomicfile"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/kernels"
)

// OfficialShape returns the dimensions of an official RWKV-7 World model:
// "0.1b", "0.4b", "1.5b" or "2.9b" (rwkv7-core.md §4).
func OfficialShape(name string) (Config, bool) {
	type dims struct{ L, C, dw, da, dv, dg int }
	d, ok := map[string]dims{
		"0.1b": {12, 768, 64, 64, 32, 128},
		"0.4b": {24, 1024, 64, 64, 32, 128},
		"1.5b": {24, 2048, 96, 96, 64, 256},
		"2.9b": {32, 2560, 96, 96, 64, 320},
	}[strings.ToLower(name)]
	if !ok {
		return Config{}, false
	}
	return Config{Layers: d.L, Width: d.C, Heads: d.C / 64, HeadSize: 64, Vocab: 65536, FFN: 4 * d.C,
		DecayLoRA: d.dw, AlphaLoRA: d.da, ValueLoRA: d.dv, GateLoRA: d.dg, DType: kernels.BF16}, true
}

// randomSource is an in-memory checkpoint with random weights.
type randomSource struct {
	infos []checkpoint.Info
	data  map[string][]byte
}

// RandomSource returns a checkpoint of the given dimensions whose weights
// are random but well scaled (a forward pass stays finite and the logits
// vary), deterministic in seed. Speed does not depend on weight values, so
// benchmarks at the official shapes use it. Matrices take cfg.DType.
func RandomSource(cfg Config, seed uint64) (Source, error) {
	if cfg.Layers <= 0 || cfg.Width <= 0 || cfg.Width%64 != 0 || cfg.Vocab <= 0 {
		return nil, fmt.Errorf("random model: bad dimensions %d layers × width %d, vocab %d", cfg.Layers, cfg.Width, cfg.Vocab)
	}
	if cfg.DecayLoRA <= 0 || cfg.AlphaLoRA <= 0 || cfg.GateLoRA <= 0 || (cfg.Layers > 1 && cfg.ValueLoRA <= 0) {
		return nil, fmt.Errorf("random model: LoRA ranks must be positive (decay %d, a %d, v %d, gate %d)", cfg.DecayLoRA, cfg.AlphaLoRA, cfg.ValueLoRA, cfg.GateLoRA)
	}
	cfg.HeadSize, cfg.Heads = 64, cfg.Width/64
	if cfg.FFN == 0 {
		cfg.FFN = 4 * cfg.Width
	}
	if cfg.DType.Size() == 0 || cfg.DType == kernels.I32 {
		cfg.DType = kernels.BF16
	}
	shapes := expectedShapes(cfg)
	names := slices.Sorted(maps.Keys(shapes))
	src := &randomSource{data: make(map[string][]byte, len(shapes)), infos: make([]checkpoint.Info, len(names))}
	blobs := make([][]byte, len(names))
	// Fill tensors in parallel: the 2.9B shape has 3 G values.
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				name, shape := names[i], shapes[names[i]]
				dt := cfg.DType
				if len(shape) == 1 || strings.HasSuffix(name, "r_k") {
					dt = kernels.F32
				}
				n := 1
				for _, d := range shape {
					n *= d
				}
				h := fnv.New64a()
				h.Write([]byte(name))
				rng := rand.New(rand.NewPCG(seed, h.Sum64()))
				vals := make([]float32, n)
				fillRandom(vals, name, shape, rng)
				src.infos[i] = checkpoint.Info{Name: name, DType: dt, Shape: slices.Clone(shape)}
				blobs[i] = encodeFloats(vals, dt)
			}
		}()
	}
	for i := range names {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, name := range names {
		src.data[name] = blobs[i]
	}
	return src, nil
}

// fillRandom chooses values in the ranges real checkpoints have.
func fillRandom(v []float32, name string, shape []int, rng *rand.Rand) {
	uniform := func(lo, hi float64) {
		for i := range v {
			v[i] = float32(lo + (hi-lo)*rng.Float64())
		}
	}
	switch {
	case strings.HasSuffix(name, "ln0.weight"), strings.HasSuffix(name, "ln1.weight"),
		strings.HasSuffix(name, "ln2.weight"), strings.HasSuffix(name, "ln_out.weight"), strings.HasSuffix(name, "ln_x.weight"):
		uniform(0.8, 1.2)
	case strings.HasSuffix(name, ".bias"):
		uniform(-0.1, 0.1)
	case strings.Contains(name, ".x_"):
		uniform(0, 1)
	case strings.HasSuffix(name, "w0"):
		uniform(-6, -1)
	case strings.HasSuffix(name, "a0"), strings.HasSuffix(name, "v0"):
		uniform(-1, 1)
	case strings.HasSuffix(name, "k_k"):
		uniform(0.5, 1)
	case strings.HasSuffix(name, "k_a"):
		uniform(0.8, 1.2)
	case strings.HasSuffix(name, "r_k"):
		uniform(-0.3, 0.3)
	case name == "emb.weight":
		uniform(-1, 1)
	default: // matrices: keep activations O(1)
		fan := shape[len(shape)-1]
		if strings.Contains(name, "att.") && !strings.HasSuffix(name, ".weight") {
			fan = shape[0] // LoRA factors are [in, out]
		}
		s := math.Sqrt(3 / float64(fan))
		uniform(-s, s)
	}
}

func encodeFloats(v []float32, dt kernels.DType) []byte {
	b := make([]byte, len(v)*dt.Size())
	for i, x := range v {
		switch dt {
		case kernels.BF16:
			binary.LittleEndian.PutUint16(b[2*i:], half.F32ToBF16(x))
		case kernels.F16:
			binary.LittleEndian.PutUint16(b[2*i:], half.F32ToF16(x))
		default:
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
	}
	return b
}

func (s *randomSource) Tensors() []checkpoint.Info { return s.infos }

func (s *randomSource) Lookup(name string) (checkpoint.Info, bool) {
	i, ok := slices.BinarySearchFunc(s.infos, name, func(a checkpoint.Info, n string) int { return strings.Compare(a.Name, n) })
	if !ok {
		return checkpoint.Info{}, false
	}
	return s.infos[i], true
}

func (s *randomSource) Bytes(name string) ([]byte, error) {
	b, ok := s.data[name]
	if !ok {
		return nil, fmt.Errorf("no tensor %q", name)
	}
	return b, nil
}

// WriteRandom writes a random-weight checkpoint (see RandomSource) to path
// in safetensors format. Tests and demos use it to get a model with the
// full World vocabulary without storing one.
func WriteRandom(path string, cfg Config, seed uint64) error {
	src, err := RandomSource(cfg, seed)
	if err != nil {
		return err
	}
	return WriteSafetensors(path, src)
}

// WriteSafetensors writes every tensor of src to path in safetensors
// format, atomically (a temporary file renamed into place).
func WriteSafetensors(path string, src Source) error {
	type entry struct {
		DType   string   `json:"dtype"`
		Shape   []int    `json:"shape"`
		Offsets [2]int64 `json:"data_offsets"`
	}
	header := map[string]entry{}
	var off int64
	infos := src.Tensors()
	for _, info := range infos {
		n := int64(info.Len() * info.DType.Size())
		name := map[kernels.DType]string{kernels.F32: "F32", kernels.F16: "F16", kernels.BF16: "BF16"}[info.DType]
		header[info.Name] = entry{DType: name, Shape: info.Shape, Offsets: [2]int64{int64(off), int64(off + n)}}
		off += n
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return err
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if err := binary.Write(w, binary.LittleEndian, uint64(len(hj))); err != nil {
			return err
		}
		if _, err := w.Write(hj); err != nil {
			return err
		}
		for _, info := range infos {
			b, err := src.Bytes(info.Name)
			if err != nil {
				return err
			}
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}
