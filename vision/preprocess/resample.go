package preprocess

import (
	"math"
	"runtime"
	"sync"
)

// precisionBits is the number of fraction bits of Pillow's fixed-point
// resampling weights (PRECISION_BITS = 32 − 8 − 2 in Resample.c).
const precisionBits = 32 - 8 - 2

// bicubicSupport is the radius of the cubic kernel at scale 1.
const bicubicSupport = 2.0

// bicubic is the Keys cubic convolution kernel with a = −0.5, as Pillow
// defines its BICUBIC filter.
func bicubic(x float64) float64 {
	const a = -0.5
	if x < 0 {
		x = -x
	}
	if x < 1 {
		return ((a+2)*x-(a+3))*x*x + 1
	}
	if x < 2 {
		return (((x-5)*x+8)*x - 4) * a
	}
	return 0
}

// coeffs holds the fixed-point filter taps for one resampling direction:
// output pixel i reads inputs start[i] .. start[i]+n[i]-1 with weights
// k[i*ksize : i*ksize+n[i]].
type coeffs struct {
	ksize int
	start []int
	n     []int
	k     []int32
}

// precompute builds the taps that map inSize pixels onto outSize, following
// Pillow's precompute_coeffs and normalize_coeffs_8bpc: the kernel is
// stretched by the downscale factor, each output's weights are normalised to
// sum to one and then rounded (half away from zero) to precisionBits bits.
func precompute(inSize, outSize int) coeffs {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := bicubicSupport * filterscale
	ksize := int(math.Ceil(support))*2 + 1
	c := coeffs{
		ksize: ksize,
		start: make([]int, outSize),
		n:     make([]int, outSize),
		k:     make([]int32, outSize*ksize),
	}
	w := make([]float64, ksize)
	ss := 1 / filterscale
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		if xmax > ksize { // cannot happen for finite sizes; keeps slicing safe
			xmax = ksize
		}
		sum := 0.0
		for x := 0; x < xmax; x++ {
			v := bicubic((float64(x+xmin) - center + 0.5) * ss)
			w[x] = v
			sum += v
		}
		k := c.k[xx*ksize : xx*ksize+ksize]
		for x := 0; x < xmax; x++ {
			v := w[x]
			if sum != 0 {
				v /= sum
			}
			if v < 0 {
				k[x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				k[x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		c.start[xx] = xmin
		c.n[xx] = xmax
	}
	return c
}

// clip8 turns a fixed-point accumulator into a byte, as Pillow's clip8.
func clip8(v int64) uint8 {
	if v >= 1<<precisionBits<<8 {
		return 255
	}
	if v <= 0 {
		return 0
	}
	return uint8(v >> precisionBits)
}

// resampleBicubic resizes src to w×h like Pillow's Image.resize with
// Resampling.BICUBIC on an RGB image: a horizontal pass into an 8-bit
// intermediate, then a vertical pass, each skipped when that dimension does
// not change. An empty source gives a black image.
func resampleBicubic(src rgbImage, w, h int) rgbImage {
	if src.w <= 0 || src.h <= 0 {
		return rgbImage{w: w, h: h, pix: make([]uint8, 3*w*h)}
	}
	cur := src
	if w != src.w {
		cur = resampleHorizontal(cur, w)
	}
	if h != src.h {
		cur = resampleVertical(cur, h)
	}
	if cur.w == src.w && cur.h == src.h {
		// Neither pass ran: return a copy so the caller owns the result.
		cp := make([]uint8, len(src.pix))
		copy(cp, src.pix)
		cur = rgbImage{w: src.w, h: src.h, pix: cp}
	}
	return cur
}

// resampleHorizontal resizes every row of src to width w.
func resampleHorizontal(src rgbImage, w int) rgbImage {
	c := precompute(src.w, w)
	out := rgbImage{w: w, h: src.h, pix: make([]uint8, 3*w*src.h)}
	const half = int64(1) << (precisionBits - 1)
	parallelRows(src.h, func(y0, y1 int) {
		for y := y0; y < y1; y++ {
			in := src.pix[3*y*src.w : 3*(y+1)*src.w]
			o := out.pix[3*y*w : 3*(y+1)*w]
			for xx := 0; xx < w; xx++ {
				k := c.k[xx*c.ksize : xx*c.ksize+c.n[xx]]
				p := in[3*c.start[xx]:]
				s0, s1, s2 := half, half, half
				for x, kv := range k {
					kk := int64(kv)
					s0 += int64(p[3*x]) * kk
					s1 += int64(p[3*x+1]) * kk
					s2 += int64(p[3*x+2]) * kk
				}
				o[3*xx], o[3*xx+1], o[3*xx+2] = clip8(s0), clip8(s1), clip8(s2)
			}
		}
	})
	return out
}

// resampleVertical resizes every column of src to height h.
func resampleVertical(src rgbImage, h int) rgbImage {
	c := precompute(src.h, h)
	rowLen := 3 * src.w
	out := rgbImage{w: src.w, h: h, pix: make([]uint8, rowLen*h)}
	const half = int64(1) << (precisionBits - 1)
	parallelRows(h, func(y0, y1 int) {
		acc := make([]int64, rowLen)
		for yy := y0; yy < y1; yy++ {
			for i := range acc {
				acc[i] = half
			}
			base := c.start[yy]
			for y, kv := range c.k[yy*c.ksize : yy*c.ksize+c.n[yy]] {
				kk := int64(kv)
				row := src.pix[(base+y)*rowLen : (base+y+1)*rowLen]
				for i, v := range row {
					acc[i] += int64(v) * kk
				}
			}
			o := out.pix[yy*rowLen : (yy+1)*rowLen]
			for i, v := range acc {
				o[i] = clip8(v)
			}
		}
	})
	return out
}

// parallelRows splits rows 0..n-1 into contiguous bands and runs fn on each
// band in its own goroutine, one band per CPU. Each output row depends only
// on the input, so the bands are independent.
func parallelRows(n int, fn func(y0, y1 int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 || n < 64 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		y0, y1 := n*w/workers, n*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(y0, y1)
		}()
	}
	wg.Wait()
}
