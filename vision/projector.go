// Package vision holds VisualRWKV-7's image side: preprocessing (package
// preprocess), and the projector that maps the vision towers' features to
// language-model embeddings, which core.Model.ForwardEmbeds splices into a
// prompt in place of the image placeholders.
package vision

import (
	"fmt"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision/internal/nn"
)

// Projector is VisualRWKV-7's MLP with context gating, on a compute backend:
//
//	g = σ(x·W_gᵀ);  y = LayerNorm((x ⊙ g)·W_oᵀ)   (eps 1e-5)
//
// x is a row of concatenated tower features (DINOv2 | SigLIP | SAM, 3200
// wide in the released models) and y an embedding row of the language model.
type Projector struct {
	be       kernels.Backend
	gate     kernels.Tensor // proj.gate.weight [D, D]
	out      kernels.Tensor // proj.o_proj.weight [C, D]
	lnW, lnB kernels.Tensor // proj.ln_v [C], float32
	owned    []kernels.Tensor
}

// LoadProjector places the projector of a VisualRWKV-7 checkpoint (keys
// proj.gate.weight, proj.o_proj.weight, proj.ln_v.weight, proj.ln_v.bias)
// on be.
func LoadProjector(src core.Source, be kernels.Backend) (*Projector, error) {
	p := &Projector{be: be}
	get := func(name string, dims int) ([]int, []byte, kernels.DType, error) {
		info, ok := src.Lookup(name)
		if !ok {
			return nil, nil, 0, fmt.Errorf("projector: missing tensor %s", name)
		}
		if len(info.Shape) != dims {
			return nil, nil, 0, fmt.Errorf("projector: tensor %s has shape %v, want %d dimensions", name, info.Shape, dims)
		}
		b, err := src.Bytes(name)
		return info.Shape, b, info.DType, err
	}
	matrix := func(name string) (kernels.Tensor, error) {
		shape, b, dt, err := get(name, 2)
		if err != nil {
			return kernels.Tensor{}, err
		}
		t, err := be.Weight(dt, shape[0], shape[1], b)
		if err == nil {
			p.owned = append(p.owned, t)
		}
		return t, err
	}
	vector := func(name string) (kernels.Tensor, error) {
		shape, b, dt, err := get(name, 1)
		if err != nil {
			return kernels.Tensor{}, err
		}
		f := make([]float32, shape[0])
		if err := dt.Decode(f, b); err != nil {
			return kernels.Tensor{}, fmt.Errorf("projector: tensor %s: %w", name, err)
		}
		t, err := be.Alloc(kernels.F32, 1, len(f))
		if err != nil {
			return kernels.Tensor{}, err
		}
		p.owned = append(p.owned, t)
		return t, be.Upload(t, nn.FloatBytes(f))
	}
	var err error
	if p.gate, err = matrix("proj.gate.weight"); err == nil {
		if p.out, err = matrix("proj.o_proj.weight"); err == nil {
			if p.lnW, err = vector("proj.ln_v.weight"); err == nil {
				p.lnB, err = vector("proj.ln_v.bias")
			}
		}
	}
	if err == nil {
		D, C := p.gate.Cols, p.out.Rows
		switch {
		case p.gate.Rows != D || p.out.Cols != D:
			err = fmt.Errorf("projector: gate %v and output %v do not fit together", p.gate, p.out)
		case p.lnW.Len() != C || p.lnB.Len() != C:
			err = fmt.Errorf("projector: layer norm of %d, output of %d", p.lnW.Len(), C)
		}
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// InDim is the width of a feature row.
func (p *Projector) InDim() int { return p.gate.Cols }

// OutDim is the width of an embedding row (the language model's n_embd).
func (p *Projector) OutDim() int { return p.out.Rows }

// Project maps feature rows (len a multiple of InDim) to embedding rows.
func (p *Projector) Project(features []float32) ([]float32, error) {
	D, C := p.InDim(), p.OutDim()
	if len(features) == 0 || len(features)%D != 0 {
		return nil, fmt.Errorf("projector: %d floats are not whole rows of %d features", len(features), D)
	}
	n := len(features) / D
	be := p.be
	var tmp []kernels.Tensor
	defer func() {
		for _, t := range tmp {
			be.Free(t)
		}
	}()
	alloc := func(rows, cols int) (kernels.Tensor, error) {
		t, err := be.Alloc(kernels.F32, rows, cols)
		if err == nil {
			tmp = append(tmp, t)
		}
		return t, err
	}
	x, err := alloc(n, D)
	if err != nil {
		return nil, err
	}
	g, err := alloc(n, D)
	if err != nil {
		return nil, err
	}
	h, err := alloc(n, C)
	if err != nil {
		return nil, err
	}
	y, err := alloc(n, C)
	if err != nil {
		return nil, err
	}
	if err := be.Upload(x, nn.FloatBytes(features)); err != nil {
		return nil, err
	}
	be.Linear(g, x, p.gate)
	be.Act(g, g, kernels.Sigmoid)
	be.Mul(g, x, g)
	be.Linear(h, g, p.out)
	be.LayerNorm(y, h, p.lnW, p.lnB, 1e-5)
	out := make([]float32, n*C)
	if err := be.Download(nn.FloatBytes(out), y); err != nil {
		return nil, err
	}
	return out, be.Sync()
}

// Close frees the projector's weights.
func (p *Projector) Close() {
	for _, t := range p.owned {
		p.be.Free(t)
	}
	p.owned = nil
}
