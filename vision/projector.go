// Package vision holds VisualRWKV-7's image side: preprocessing (package
// preprocess), and the projector that maps the vision towers' features to
// language-model embeddings, which core.Model.ForwardEmbeds splices into a
// prompt in place of the image placeholders.
package vision

import (
	"fmt"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/internal/half"
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
	l        *nn.Loader
	gate     kernels.Tensor // proj.gate.weight [D, D]
	out      kernels.Tensor // proj.o_proj.weight [C, D]
	lnW, lnB kernels.Tensor // proj.ln_v [1, C], float32

	rows    int            // rows of the working memory
	g, h, y kernels.Tensor // [rows, D], [rows, C], [rows, C]
}

// LoadProjector places the projector of a VisualRWKV-7 checkpoint (keys
// proj.gate.weight, proj.o_proj.weight, proj.ln_v.weight, proj.ln_v.bias)
// on be.
func LoadProjector(src core.Source, be kernels.Backend) (*Projector, error) {
	l := &nn.Loader{Src: src, Prefix: "proj.", Be: be}
	p := &Projector{be: be, l: l}
	gs, os := l.Shape("gate.weight"), l.Shape("o_proj.weight")
	if l.Has("gate.weight") && len(gs) != 2 {
		l.Fail(fmt.Errorf("tensor proj.gate.weight has shape %v, want 2 dimensions", gs))
	}
	if l.Has("o_proj.weight") && len(os) != 2 {
		l.Fail(fmt.Errorf("tensor proj.o_proj.weight has shape %v, want 2 dimensions", os))
	}
	if l.Err() == nil {
		D := -1
		if len(gs) == 2 {
			D = gs[1]
		}
		p.gate = l.Matrix("gate.weight", max(D, 0), max(D, 0), D, D)
		C := -1
		if len(os) == 2 {
			C = os[0]
		}
		p.out = l.Matrix("o_proj.weight", max(C, 0), max(D, 0), C, D)
		p.lnW, p.lnB = l.Vector("ln_v.weight", C), l.Vector("ln_v.bias", C)
	}
	if err := l.Err(); err != nil {
		p.Close()
		return nil, fmt.Errorf("projector: %w", err)
	}
	return p, nil
}

// InDim is the width of a feature row.
func (p *Projector) InDim() int { return p.gate.Cols }

// OutDim is the width of an embedding row (the language model's n_embd).
func (p *Projector) OutDim() int { return p.out.Rows }

// Apply queues the projection of the feature rows x [n, InDim] on the
// backend and returns the embedding rows, an [n, OutDim] view of the
// projector's working memory valid until the next Apply. Apply is not safe
// for concurrent use.
func (p *Projector) Apply(x kernels.Tensor) (kernels.Tensor, error) {
	D, C := p.InDim(), p.OutDim()
	if x.Cols != D || x.Rows == 0 {
		return kernels.Tensor{}, fmt.Errorf("projector: input %v is not rows of %d features", x, D)
	}
	n := x.Rows
	if n > p.rows {
		p.freeScratch()
		ts, err := nn.Scratch(p.be, [2]int{n, D}, [2]int{n, C}, [2]int{n, C})
		if err != nil {
			return kernels.Tensor{}, fmt.Errorf("projector: %w", err)
		}
		p.g, p.h, p.y, p.rows = ts[0], ts[1], ts[2], n
	}
	be := p.be
	g, h, y := p.g.Slice(0, n), p.h.Slice(0, n), p.y.Slice(0, n)
	be.Linear(g, x, p.gate)
	be.Act(g, g, kernels.Sigmoid)
	be.Mul(g, x, g)
	be.Linear(h, g, p.out)
	be.LayerNorm(y, h, p.lnW, p.lnB, 1e-5)
	return y, nil
}

// Project maps feature rows (len a multiple of InDim) to embedding rows.
func (p *Projector) Project(features []float32) ([]float32, error) {
	D := p.InDim()
	if len(features) == 0 || len(features)%D != 0 {
		return nil, fmt.Errorf("projector: %d floats are not whole rows of %d features", len(features), D)
	}
	x, err := p.be.Alloc(kernels.F32, len(features)/D, D)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	defer p.be.Free(x)
	if err := p.be.Upload(x, half.Bytes(features)); err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	y, err := p.Apply(x)
	if err != nil {
		return nil, err
	}
	out, err := nn.Download(p.be, y)
	if err != nil {
		return nil, fmt.Errorf("projector: %w", err)
	}
	return out, nil
}

func (p *Projector) freeScratch() {
	if p.rows > 0 {
		for _, t := range []kernels.Tensor{p.g, p.h, p.y} {
			p.be.Free(t)
		}
		p.rows = 0
	}
}

// Close frees the projector's weights and working memory.
func (p *Projector) Close() {
	p.l.Free()
	p.freeScratch()
}
