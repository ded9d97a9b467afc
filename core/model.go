package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/goose-rwkv/goose/core/block"
	"github.com/goose-rwkv/goose/core/checkpoint"
	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/memfault"
	"github.com/goose-rwkv/goose/kernels"
)

// Source provides a checkpoint's named tensors. *checkpoint.File
// implements it; so does the in-memory source of RandomSource.
//
// A Source backed by a file may also have the methods Path() string (used
// in error messages) and Changed() error (see checkpoint.File.Changed):
// the model then checks before each forward pass that its weights file
// was not truncated or rewritten on disk.
type Source = weights.Source

// Config holds a model's dimensions, all read from tensor shapes.
type Config struct {
	Layers    int // n_layer
	Width     int // n_embd, C
	Heads     int // C / HeadSize
	HeadSize  int // 64 in every official model
	Vocab     int
	FFN       int // channel-mix hidden width (4C)
	DecayLoRA int // w1 columns
	AlphaLoRA int // a1 columns
	ValueLoRA int // v1 columns
	GateLoRA  int // g1 columns
	// DType is the dtype of the embedding matrix (all official files are
	// uniformly bf16).
	DType kernels.DType
	// Params is the number of parameters the model uses; WeightBytes is
	// their size in memory.
	Params      int64
	WeightBytes int64
}

// StateBytes is the size of one recurrent state: per layer two shift
// vectors and H 64×64 WKV matrices, all float32.
func (c Config) StateBytes() int64 {
	return int64(c.Layers) * int64(2*c.Width+c.Width*c.HeadSize) * 4
}

// defaultChunk is the most tokens per sequence-mode call on a backend that
// states no preference (kernels.Capabilities.PrefillChunk).
const defaultChunk = 256

// LoadOptions configure Load.
type LoadOptions struct {
	// Backend runs the model. Required.
	Backend kernels.Backend
	// Progress, if set, is called with the fraction of weights placed.
	Progress func(frac float64)
	// Quant, if not QuantNone, stores the large matrices in a smaller
	// encoding, converted at load from the checkpoint's bf16/f16/f32.
	Quant Quantization
}

// Quantization selects how Load stores the model's large matrices.
type Quantization uint8

const (
	// QuantNone keeps every matrix in its checkpoint dtype.
	QuantNone Quantization = iota
	// QuantInt8 stores the Linear weights (the time-mix receptance, key,
	// value and output, the channel-mix key and value, and the head) as
	// int8 with one float32 scale per output channel (kernels.I8), about
	// half the bytes of bf16; activations stay float32. The embedding and
	// the small LoRA matrices keep their dtype.
	QuantInt8
)

// String returns "none" or "int8".
func (q Quantization) String() string {
	switch q {
	case QuantNone:
		return "none"
	case QuantInt8:
		return "int8"
	}
	return fmt.Sprintf("quant(%d)", uint8(q))
}

// ParseQuantization reads "none" (or "") and "int8".
func ParseQuantization(s string) (Quantization, error) {
	switch strings.ToLower(s) {
	case "", "none", "off":
		return QuantNone, nil
	case "int8", "i8", "q8":
		return QuantInt8, nil
	}
	return QuantNone, fmt.Errorf("quantization %q: want none or int8", s)
}

// Model is an RWKV-7 (x070) language model on a backend. It is immutable
// after loading, and Forward may be called from several goroutines with
// different States.
type Model struct {
	cfg Config
	be  kernels.Backend
	src Source
	// path names src's file in errors ("" for an in-memory source).
	path string

	emb             kernels.Tensor // [V, C], file dtype
	ln0w, ln0b      kernels.Tensor
	lnOutW, lnOutB  kernels.Tensor
	head            kernels.Tensor // [V, C]
	layers          []block.Layer
	owned           []kernels.Tensor
	closeSrc        func() error
	mu              sync.Mutex
	free            []*scratch // scratch buffers not in use
	freeSteps       int        // the most one-token scratch kept free (maxFreeStepScratch)
	freeSize        int64      // the most bytes of larger scratch kept free (maxFreeScratchSize)
	graphsSupported bool
	closed          bool
	chunk           int
	verifying       sync.WaitGroup       // running Verify calls
	stopVerify      []context.CancelFunc // cancels them
	quant           Quantization
	resident        int64 // bytes of weights placed on the backend
}

// Config returns the model's dimensions.
func (m *Model) Config() Config { return m.cfg }

// Quantization returns how the model's matrices are stored.
func (m *Model) Quantization() Quantization { return m.quant }

// WeightBytes is the size of the weights as placed on the backend: the
// checkpoint's Config().WeightBytes, less what quantization saved (vectors
// count as float32).
func (m *Model) WeightBytes() int64 { return m.resident }

// Backend returns the backend the model runs on.
func (m *Model) Backend() kernels.Backend { return m.be }

// LoadFile opens a checkpoint (.pth or .safetensors) and loads its language
// model onto be (for a multimodal checkpoint, the part under "rwkv.").
// The file stays memory-mapped while the model lives; Close releases it.
func LoadFile(path string, opts LoadOptions) (*Model, error) {
	f, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	m, err := Load(LanguageModel(f), opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m.closeSrc = f.Close
	return m, nil
}

// maxLayers bounds a layer index read from a tensor name. The largest
// RWKV-7 release has 32 layers (61 for the 13.3B G1); an index past this is
// reported as an unexpected tensor.
const maxLayers = 1 << 12

var blockKey = regexp.MustCompile(`^blocks\.(\d+)\.(.+)$`)

// Inspect reads a checkpoint's dimensions from its tensor shapes without
// loading it, and checks that every tensor an RWKV-7 model needs is there
// with the right shape.
func Inspect(src Source) (Config, error) {
	var c Config
	emb, ok := src.Lookup("emb.weight")
	if !ok {
		return c, &MissingError{Names: []string{"emb.weight"}}
	}
	if len(emb.Shape) != 2 {
		return c, &ShapeError{Name: "emb.weight", Got: emb.Shape, Want: "[vocab, n_embd]"}
	}
	c.Vocab, c.Width, c.DType = emb.Shape[0], emb.Shape[1], emb.DType
	var unexpected []string
	present := make(map[int]bool) // layer indices with at least one tensor
	for _, t := range src.Tensors() {
		mm := blockKey.FindStringSubmatch(t.Name)
		if mm == nil {
			continue
		}
		l, err := strconv.Atoi(mm[1])
		if err != nil || l > maxLayers {
			unexpected = append(unexpected, t.Name)
			continue
		}
		present[l] = true
		c.Layers = max(c.Layers, l+1)
	}
	if c.Layers == 0 {
		return c, errors.New("no blocks.N tensors: not an RWKV-7 checkpoint")
	}
	// Every layer below the highest index must be there. Checked before
	// expectedShapes lists every tensor of every layer: one absurd index
	// would otherwise cost a list of millions of names.
	if len(present) != c.Layers {
		var gaps []string
		for l := 0; l < c.Layers && len(gaps) <= 8; l++ {
			if !present[l] {
				gaps = append(gaps, fmt.Sprintf("blocks.%d.*", l))
			}
		}
		return c, fmt.Errorf("layers missing: the checkpoint has tensors for %d layers but its highest layer index is %d (missing %s)",
			len(present), c.Layers-1, weights.ListNames(gaps))
	}
	rk, ok := src.Lookup("blocks.0.att.r_k")
	if !ok {
		return c, &MissingError{Names: []string{"blocks.0.att.r_k"}}
	}
	if len(rk.Shape) != 2 || rk.Shape[0]*rk.Shape[1] != c.Width {
		return c, &ShapeError{Name: "blocks.0.att.r_k", Got: rk.Shape, Want: fmt.Sprintf("[heads, head_size] with heads·head_size = %d", c.Width)}
	}
	c.Heads, c.HeadSize = rk.Shape[0], rk.Shape[1]
	if c.HeadSize != 64 {
		return c, fmt.Errorf("head size %d unsupported (every RWKV-7 release uses 64)", c.HeadSize)
	}
	dim := func(name string, axis int) int {
		if t, ok := src.Lookup(name); ok && len(t.Shape) == 2 {
			return t.Shape[axis]
		}
		return 0
	}
	c.DecayLoRA = dim("blocks.0.att.w1", 1)
	c.AlphaLoRA = dim("blocks.0.att.a1", 1)
	c.GateLoRA = dim("blocks.0.att.g1", 1)
	c.FFN = dim("blocks.0.ffn.key.weight", 0)
	if c.Layers > 1 {
		c.ValueLoRA = dim("blocks.1.att.v1", 1)
	}

	want := expectedShapes(c)
	var missing []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		info, ok := src.Lookup(name)
		if !ok {
			missing = append(missing, name)
			continue
		}
		if !weights.ShapeMatches(info.Shape, want[name]) {
			return c, &ShapeError{Name: name, Got: info.Shape, Want: fmt.Sprint(want[name])}
		}
		c.Params += int64(info.Len())
		c.WeightBytes += int64(info.Len() * info.DType.Size())
	}
	if len(missing) > 0 {
		return c, &MissingError{Names: missing}
	}
	for _, t := range src.Tensors() {
		if _, ok := want[t.Name]; ok {
			continue
		}
		if strings.HasPrefix(t.Name, "blocks.0.att.v") && len(t.Name) == len("blocks.0.att.v0") {
			continue // layer 0 has no value residual; some files carry unused v0/v1/v2
		}
		unexpected = append(unexpected, t.Name)
	}
	if len(unexpected) > 0 {
		slices.Sort(unexpected)
		return c, fmt.Errorf("unexpected tensors %s: not a plain RWKV-7 x070 checkpoint (rwkv7a/rwkv7b variants are not supported)", weights.ListNames(unexpected))
	}
	return c, nil
}

// expectedShapes lists every tensor a model of these dimensions uses.
// Vectors are listed as [C]; files store many as [1,1,C]
// (weights.ShapeMatches accepts both).
func expectedShapes(c Config) map[string][]int {
	C, V := c.Width, c.Vocab
	w := map[string][]int{
		"emb.weight":          {V, C},
		"blocks.0.ln0.weight": {C},
		"blocks.0.ln0.bias":   {C},
		"ln_out.weight":       {C},
		"ln_out.bias":         {C},
		"head.weight":         {V, C},
	}
	for l := range c.Layers {
		p := fmt.Sprintf("blocks.%d.", l)
		for _, n := range []string{"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias",
			"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g",
			"att.w0", "att.a0", "att.k_k", "att.k_a", "att.ln_x.weight", "att.ln_x.bias", "ffn.x_k"} {
			w[p+n] = []int{C}
		}
		w[p+"att.r_k"] = []int{c.Heads, c.HeadSize}
		w[p+"att.w1"], w[p+"att.w2"] = []int{C, c.DecayLoRA}, []int{c.DecayLoRA, C}
		w[p+"att.a1"], w[p+"att.a2"] = []int{C, c.AlphaLoRA}, []int{c.AlphaLoRA, C}
		w[p+"att.g1"], w[p+"att.g2"] = []int{C, c.GateLoRA}, []int{c.GateLoRA, C}
		if l > 0 {
			w[p+"att.v0"] = []int{C}
			w[p+"att.v1"], w[p+"att.v2"] = []int{C, c.ValueLoRA}, []int{c.ValueLoRA, C}
		}
		for _, n := range []string{"receptance", "key", "value", "output"} {
			w[p+"att."+n+".weight"] = []int{C, C}
		}
		w[p+"ffn.key.weight"] = []int{c.FFN, C}
		w[p+"ffn.value.weight"] = []int{C, c.FFN}
	}
	return w
}

// weightNames lists the tensors a model of these dimensions reads, sorted.
func weightNames(c Config) []string {
	return slices.Sorted(maps.Keys(expectedShapes(c)))
}

// MissingError lists tensors a checkpoint lacks.
type MissingError = weights.MissingError

// ShapeError reports a tensor whose shape does not fit the model.
type ShapeError = weights.ShapeError

// Load places src's weights on opts.Backend. Matrices keep their dtype;
// vectors are converted to float32 (they are a few KB per layer).
//
// A file truncated under the loader (its memory mapping faults) fails the
// load with an error naming the file instead of crashing the process.
func Load(src Source, opts LoadOptions) (_ *Model, err error) {
	if opts.Backend == nil {
		return nil, errors.New("load: no backend")
	}
	defer memfault.CatchFile(SourcePath(src), &err)()
	cfg, err := Inspect(src)
	if err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, be: opts.Backend, src: src, path: SourcePath(src), chunk: defaultChunk, quant: opts.Quant,
		freeSteps: maxFreeStepScratch, freeSize: maxFreeScratchSize}
	switch opts.Quant {
	case QuantNone:
	case QuantInt8:
		if !slices.Contains(opts.Backend.Capabilities().Quant, kernels.I8) {
			return nil, fmt.Errorf("load: the %s backend cannot run int8 weights", opts.Backend.Name())
		}
	default:
		return nil, fmt.Errorf("load: unknown quantization %v", opts.Quant)
	}
	if c := opts.Backend.Capabilities().PrefillChunk; c > 0 {
		m.chunk = c
	}
	if _, ok := opts.Backend.(kernels.Grapher); ok {
		m.graphsSupported = true
	}
	if free := opts.Backend.Device().FreeMemory; free > 0 {
		if need := m.memoryNeeded(); need > free {
			return nil, &MemoryError{Device: opts.Backend.Device().Name, Need: need, Free: free}
		}
	}
	total := float64(len(expectedShapes(cfg)))
	placed := 0
	ld := weights.NewLoader(src, opts.Backend)
	ld.QuantizeLinear = opts.Quant == QuantInt8
	ld.Placed = func() {
		placed++
		if opts.Progress != nil {
			opts.Progress(float64(placed) / total)
		}
	}
	C, V := cfg.Width, cfg.Vocab
	m.emb = ld.Matrix("emb.weight", V, C)
	m.ln0w, m.ln0b = ld.Vector("blocks.0.ln0.weight", C), ld.Vector("blocks.0.ln0.bias", C)
	m.lnOutW, m.lnOutB = ld.Vector("ln_out.weight", C), ld.Vector("ln_out.bias", C)
	m.head = ld.Linear("head.weight", V, C)
	m.layers = make([]block.Layer, cfg.Layers)
	for l := range m.layers {
		m.layers[l] = block.Load(ld, l, m.dims(), block.LoadOptions{ValueResidual: l > 0})
	}
	m.owned = ld.Owned()
	m.resident = ld.Bytes()
	err = ld.Err()
	if err == nil {
		err = m.be.Sync()
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// dims returns the sizes of the model's blocks.
func (m *Model) dims() block.Dims {
	c := m.cfg
	return block.Dims{Width: c.Width, FFN: c.FFN, DecayLoRA: c.DecayLoRA, AlphaLoRA: c.AlphaLoRA,
		ValueLoRA: c.ValueLoRA, GateLoRA: c.GateLoRA}
}

// memoryNeeded estimates the device memory a loaded model uses: weights,
// activations for one prefill chunk and one decode step, and a few states.
func (m *Model) memoryNeeded() int64 {
	c := m.cfg
	perRow := int64(22*c.Width+c.FFN+c.DecayLoRA+c.AlphaLoRA+c.ValueLoRA+c.GateLoRA) * 4
	act := perRow*int64(m.chunk+1) + 2*int64(c.Vocab)*4
	w := c.WeightBytes
	if m.quant == QuantInt8 { // about half of the matrices' bf16 bytes
		w = w * 5 / 8
	}
	return w + act + 4*c.StateBytes() + 64<<20 // + kernels, cuBLAS workspace
}

// checkSource fails when the model's weights file changed on disk since it
// was opened (one fstat; see checkpoint.File.Changed).
func (m *Model) checkSource() error {
	return sourceChanged(m.src)
}

// MemoryError reports a model that does not fit in a device's free memory.
type MemoryError struct {
	Device     string
	Need, Free int64
}

func (e *MemoryError) Error() string {
	return fmt.Sprintf("not enough memory on %s: the model needs %.1f GB, %.1f GB free", e.Device, float64(e.Need)/1e9, float64(e.Free)/1e9)
}

// Close frees the model's device memory and closes its file.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, cancel := range m.stopVerify {
		cancel()
	}
	m.verifying.Wait() // Verify reads the weights Close is about to release
	for _, sc := range m.free {
		sc.release(m.be)
	}
	m.free = nil
	for _, t := range m.owned {
		m.be.Free(t)
	}
	m.owned = nil
	if m.closeSrc != nil {
		return m.closeSrc()
	}
	return nil
}
