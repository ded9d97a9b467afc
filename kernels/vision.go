package kernels

import "fmt"

// The GELU activations of the image towers, for Act and BiasAct. Their
// values leave room for other activations after ReLUSquared.
const (
	// GELU is the exact form x·Φ(x) = ½x(1 + erf(x/√2)).
	GELU Activation = 16
	// GELUTanh is the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
	GELUTanh Activation = 17
)

// VisionOps are the operations of the image towers (ViT, SAM) beyond the
// language model's: patch gathering, attention, SAM's windows, residual
// branches and the rearrangements of the features. Every tensor is F32.
type VisionOps interface {
	// Im2Col gathers the patches of a convolution into rows, so that the
	// convolution is a Linear with the weight [out, Channels·K·K]; see
	// Conv.
	Im2Col(dst, src Tensor, c Conv)
	// Attention runs multi-head self-attention; see Attention.
	Attention(a Attention)
	// WindowPartition copies the [Height·Width, C] token map src into
	// w.Tokens() rows of dst, window after window, zero rows for the
	// padding; see Window.
	WindowPartition(dst, src Tensor, w Window)
	// WindowMerge is the inverse of WindowPartition, accumulating: it adds
	// each window row of src that lies inside the map to its row of dst
	// [Height·Width, C] and drops the padding rows.
	WindowMerge(dst, src Tensor, w Window)
	// Residual sets dst = x + (y + bias)⊙gamma: a residual branch with its
	// last product's bias and a LayerScale. bias and gamma are [1, C] and
	// may be invalid (zero Tensors: no bias, no scale). dst may be x or y.
	Residual(dst, x, y, bias, gamma Tensor)
	// BiasAct sets dst = f(x + bias), bias [1, C] broadcast over the rows
	// (invalid: none). dst may be x.
	BiasAct(dst, x, bias Tensor, f Activation)
	// SpaceToDepth folds each f×f block of the [h·w, C] token map src into
	// one row of dst [(h/f)·(w/f), C·f·f], row-major over the blocks, with
	// channel c of block cell (dy, dx) at column c·f·f + dy·f + dx (SAM's
	// lossless merge in VisualRWKV-7).
	SpaceToDepth(dst, src Tensor, h, w, f int)
	// CopyCols copies src [R, n] into columns [col, col+n) of dst [R, m]
	// (concatenating features).
	CopyCols(dst, src Tensor, col int)
}

// Conv describes the patches Im2Col gathers: a Kernel×Kernel convolution
// with stride Stride and zero padding Pad over an image of Channels planes
// of Height×Width. src holds Channels·Height·Width values: planes one
// after another ([Channels, Height·Width], a normalised CHW image) or, with
// ChannelsLast, one row of Channels values per pixel ([Height·Width,
// Channels], a token map). dst is [OutHeight·OutWidth, Channels·Kernel²]:
// row oy·OutWidth + ox, column (c·Kernel + ky)·Kernel + kx, which is the
// order of a PyTorch Conv2d weight [out, Channels, Kernel, Kernel]. Values
// outside the image are 0.
type Conv struct {
	Channels, Height, Width int
	Kernel, Stride, Pad     int
	ChannelsLast            bool
}

// OutHeight is the number of output rows of the convolution.
func (c Conv) OutHeight() int { return (c.Height+2*c.Pad-c.Kernel)/c.Stride + 1 }

// OutWidth is the number of output columns of the convolution.
func (c Conv) OutWidth() int { return (c.Width+2*c.Pad-c.Kernel)/c.Stride + 1 }

// Check reports whether src and dst fit c.
func (c Conv) Check(dst, src Tensor) error {
	if c.Channels <= 0 || c.Height <= 0 || c.Width <= 0 || c.Kernel <= 0 || c.Stride <= 0 || c.Pad < 0 ||
		c.Kernel > c.Height+2*c.Pad || c.Kernel > c.Width+2*c.Pad {
		return fmt.Errorf("convolution %+v", c)
	}
	if src.Len() != c.Channels*c.Height*c.Width {
		return fmt.Errorf("src %v holds %d values, want %d×%d×%d", src, src.Len(), c.Channels, c.Height, c.Width)
	}
	if dst.Rows != c.OutHeight()*c.OutWidth() || dst.Cols != c.Channels*c.Kernel*c.Kernel {
		return fmt.Errorf("dst %v, want [%d,%d]", dst, c.OutHeight()*c.OutWidth(), c.Channels*c.Kernel*c.Kernel)
	}
	return nil
}

// Window describes SAM's windows over a Height×Width token map: the map is
// zero-padded at the bottom and right to multiples of Size and cut into
// Size×Size windows, row-major over the window grid, tokens row-major
// within a window.
type Window struct {
	Height, Width, Size int
}

// Count is the number of windows.
func (w Window) Count() int {
	if w.Size <= 0 {
		return 0
	}
	return ((w.Height + w.Size - 1) / w.Size) * ((w.Width + w.Size - 1) / w.Size)
}

// Tokens is the number of rows of the partitioned map, Count·Size².
func (w Window) Tokens() int { return w.Count() * w.Size * w.Size }

// Check reports whether the partitioned rows win and the map rows m fit w
// and each other.
func (w Window) Check(win, m Tensor) error {
	switch {
	case w.Height <= 0 || w.Width <= 0 || w.Size <= 0:
		return fmt.Errorf("window %+v", w)
	case m.Rows != w.Height*w.Width:
		return fmt.Errorf("map %v, want %d×%d rows", m, w.Height, w.Width)
	case win.Rows != w.Tokens() || win.Cols != m.Cols:
		return fmt.Errorf("windows %v, want [%d,%d]", win, w.Tokens(), m.Cols)
	}
	return nil
}

// Attention holds the operands of VisionOps.Attention: for each head and
// group of rows,
//
//	Dst = softmax(Scale·q·kᵀ + bias)·v
//
// over the keys of the query's group. QKV holds, per row, the queries of
// all heads, then the keys, then the values (a ViT's qkv product).
type Attention struct {
	Dst   Tensor // [T, Heads·HeadDim], heads concatenated
	QKV   Tensor // [T, 3·Heads·HeadDim]
	Heads int
	Scale float32
	// Groups splits the T rows into that many equal groups that attend
	// only within themselves (SAM's windows); 0 means 1.
	Groups int
	// RelH and RelW, when valid, add SAM's decomposed relative-position
	// bias: each group is a Span×Span grid of tokens (row-major) and the
	// score of query (qy, qx) and key (ky, kx) gets
	// q·RelH[qy−ky+Span−1] + q·RelW[qx−kx+Span−1], q unscaled. Both are
	// [2·Span−1, HeadDim].
	RelH, RelW Tensor
	Span       int
}

// HeadDim is the width of one head.
func (a Attention) HeadDim() int {
	if a.Heads <= 0 {
		return 0
	}
	return a.Dst.Cols / a.Heads
}

// GroupRows is the number of rows in one group.
func (a Attention) GroupRows() int {
	g := max(a.Groups, 1)
	return a.QKV.Rows / g
}

// Check reports whether the operands fit together.
func (a Attention) Check() error {
	g := max(a.Groups, 1)
	hd := a.HeadDim()
	switch {
	case a.Heads <= 0 || hd <= 0 || a.Dst.Cols != a.Heads*hd:
		return fmt.Errorf("%d heads do not divide dst %v", a.Heads, a.Dst)
	case a.QKV.Cols != 3*a.Dst.Cols || a.QKV.Rows != a.Dst.Rows:
		return fmt.Errorf("qkv %v does not fit dst %v", a.QKV, a.Dst)
	case a.QKV.Rows%g != 0:
		return fmt.Errorf("%d rows do not split into %d groups", a.QKV.Rows, g)
	}
	if a.RelH.Valid() || a.RelW.Valid() {
		s := a.Span
		switch {
		case s <= 0 || s*s != a.GroupRows():
			return fmt.Errorf("span %d does not give groups of %d rows", s, a.GroupRows())
		case a.RelH.Rows != 2*s-1 || a.RelH.Cols != hd || a.RelW.Rows != 2*s-1 || a.RelW.Cols != hd:
			return fmt.Errorf("relative-position tables %v, %v, want [%d,%d]", a.RelH, a.RelW, 2*s-1, hd)
		}
	}
	return nil
}
