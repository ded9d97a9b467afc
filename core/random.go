package core

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/goose-rwkv/goose/core/weights"
	"github.com/goose-rwkv/goose/internal/atomicfile"
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
	return weights.RandomSource(expectedShapes(cfg), cfg.DType, seed), nil
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
