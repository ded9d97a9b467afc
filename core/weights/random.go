package weights

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/internal/half"
	"github.com/goose-rwkv/goose/internal/hugemem"
	"github.com/goose-rwkv/goose/kernels"
)

// randomSource is an in-memory checkpoint with random weights.
type randomSource struct {
	infos []checkpoint.Info
	data  map[string][]byte
}

// RandomSource returns an in-memory checkpoint holding a tensor of each
// given name and shape, with random values in the ranges real RWKV-7
// checkpoints have (chosen by name), deterministic in seed. Vectors (one
// dimension) and r_k are F32; everything else takes dtype dt. Speed does
// not depend on weight values, so benchmarks at real shapes use it.
func RandomSource(shapes map[string][]int, dt kernels.DType, seed uint64) Source {
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
				tdt := dt
				if len(shape) == 1 || strings.HasSuffix(name, "r_k") {
					tdt = kernels.F32
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
				src.infos[i] = checkpoint.Info{Name: name, DType: tdt, Shape: slices.Clone(shape)}
				blobs[i] = encodeFloats(vals, tdt)
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
	return src
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
	case name == "emb.weight" && len(shape) == 2: // a vocabulary
		uniform(-1, 1)
	case strings.HasSuffix(name, "time_shift.weight"): // A-RWKV's 3×3 shift kernels
		uniform(-0.3, 0.3)
	case name == "pos_embed":
		uniform(-0.05, 0.05)
	default: // matrices: keep activations O(1)
		fan := shape[len(shape)-1]
		if len(shape) == 4 { // a convolution [out, in, kh, kw]
			fan = shape[1] * shape[2] * shape[3]
		}
		if strings.HasSuffix(name, "gate.weight") && len(shape) == 3 { // A-RWKV's per-head gate [H, 64, 1]
			fan = shape[1]
		}
		if strings.Contains(name, "att.") && !strings.HasSuffix(name, ".weight") {
			fan = shape[0] // LoRA factors are [in, out]
		}
		s := math.Sqrt(3 / float64(fan))
		uniform(-s, s)
	}
}

func encodeFloats(v []float32, dt kernels.DType) []byte {
	b := hugemem.Make(len(v) * dt.Size())
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
