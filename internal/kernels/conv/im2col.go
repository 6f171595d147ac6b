package conv

import (
	"math/bits"
	"sync"
)

// im2col writes columns [p0, p1) of the im2col matrix of one image group
// x[Cg, H, W] into col, whose rows have stride ld: row k = (c*KH+kh)*KW+kw,
// column p = oh*OW+ow holds x[c, oh*SH-PH+kh*DH, ow*SW-PW+kw*DW], or 0
// outside the image. Rows [k0, k1) only are written.
func im2col(g *geom, x []float32, k0, k1, p0, p1 int, col []float32, ld int) {
	if g.SW == 1 && p0%g.OW == 0 && p1%g.OW == 0 {
		im2colRows(g, x, k0, k1, p0/g.OW, p1/g.OW, col, ld)
		return
	}
	for k := k0; k < k1; k++ {
		kw := k % g.KW
		kh := (k / g.KW) % g.KH
		c := k / (g.KW * g.KH)
		row := col[(k-k0)*ld : (k-k0)*ld+(p1-p0)]
		xc := x[c*g.H*g.W : (c+1)*g.H*g.W]
		// Valid output columns [lo, hi) read inside the image.
		lo, hi := validRange(g.OW, g.W, g.SW, kw*g.DW-g.PW)
		p := p0
		for p < p1 {
			oh, ow := p/g.OW, p%g.OW
			end := min(p1, (oh+1)*g.OW) // end of this output row within the range
			seg := row[p-p0 : end-p0]
			ih := oh*g.SH - g.PH + kh*g.DH
			if ih < 0 || ih >= g.H {
				clear(seg)
				p = end
				continue
			}
			xr := xc[ih*g.W : (ih+1)*g.W]
			ow1 := ow + len(seg)
			a, b := max(ow, lo), min(ow1, hi)
			if a >= b {
				clear(seg)
				p = end
				continue
			}
			clear(seg[:a-ow])
			clear(seg[b-ow:])
			off := kw*g.DW - g.PW
			dst := seg[a-ow : b-ow]
			if g.SW == 1 {
				copy(dst, xr[a+off:b+off])
			} else {
				src := a*g.SW + off
				for i := range dst {
					dst[i] = xr[src]
					src += g.SW
				}
			}
			p = end
		}
	}
}

// im2colRows is im2col for horizontal stride 1 over whole output rows
// [oh0, oh1): each row segment is zeros, a run of the input row, zeros.
func im2colRows(g *geom, x []float32, k0, k1, oh0, oh1 int, col []float32, ld int) {
	ow := g.OW
	for k := k0; k < k1; k++ {
		kw := k % g.KW
		kh := (k / g.KW) % g.KH
		c := k / (g.KW * g.KH)
		row := col[(k-k0)*ld : (k-k0)*ld+(oh1-oh0)*ow]
		xc := x[c*g.H*g.W : (c+1)*g.H*g.W]
		off := kw*g.DW - g.PW
		lo, hi := validRange(ow, g.W, 1, off)
		for oh := oh0; oh < oh1; oh++ {
			seg := row[(oh-oh0)*ow : (oh-oh0+1)*ow]
			ih := oh*g.SH - g.PH + kh*g.DH
			if ih < 0 || ih >= g.H || lo >= hi {
				clear(seg)
				continue
			}
			src := xc[ih*g.W+lo+off : ih*g.W+hi+off]
			for i := 0; i < lo; i++ {
				seg[i] = 0
			}
			if len(src) < 32 {
				dst := seg[lo:hi]
				for i, v := range src {
					dst[i] = v
				}
			} else {
				copy(seg[lo:hi], src)
			}
			for i := hi; i < ow; i++ {
				seg[i] = 0
			}
		}
	}
}

// validRange returns the output positions [lo, hi) in [0, out) whose input
// position o*s+off lies in [0, in).
func validRange(out, in, s, off int) (lo, hi int) {
	// o*s + off >= 0  <=>  o >= ceil(-off/s)
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	// o*s + off <= in-1  <=>  o <= floor((in-1-off)/s)
	if in-1-off < 0 {
		return 0, 0
	}
	hi = (in-1-off)/s + 1
	lo = min(lo, out)
	hi = min(hi, out)
	if hi < lo {
		hi = lo
	}
	return lo, hi
}

// col2im adds the columns of col (row stride ld), which hold output rows
// [oh0, oh1) (column (oh-oh0)*OW+ow), back into the image group
// gx[Cg, H, W] for channels [c0, c1): the adjoint of im2col. Each channel's
// sum runs over kh, kw, oh, ow in increasing order.
func col2im(g *geom, col []float32, ld int, c0, c1 int, gx []float32, oh0, oh1 int) {
	for c := c0; c < c1; c++ {
		gc := gx[c*g.H*g.W : (c+1)*g.H*g.W]
		for kh := 0; kh < g.KH; kh++ {
			for kw := 0; kw < g.KW; kw++ {
				k := (c*g.KH+kh)*g.KW + kw
				row := col[k*ld : k*ld+(oh1-oh0)*g.OW]
				off := kw*g.DW - g.PW
				lo, hi := validRange(g.OW, g.W, g.SW, off)
				if lo >= hi {
					continue
				}
				for oh := oh0; oh < oh1; oh++ {
					ih := oh*g.SH - g.PH + kh*g.DH
					if ih < 0 || ih >= g.H {
						continue
					}
					src := row[(oh-oh0)*g.OW+lo : (oh-oh0)*g.OW+hi]
					dr := gc[ih*g.W : (ih+1)*g.W]
					if g.SW == 1 {
						dst := dr[lo+off : hi+off]
						for i, v := range src {
							dst[i] += v
						}
					} else {
						j := lo*g.SW + off
						for _, v := range src {
							dr[j] += v
							j += g.SW
						}
					}
				}
			}
		}
	}
}

// scratch pools float32 buffers by size class (powers of two), so
// repeated calls do not allocate and buffers of different sizes in flight
// at once do not evict each other.
var scratch [40]sync.Pool

func getBuf(n int) *[]float32 {
	c := bits.Len(uint(max(n, 1) - 1))
	if b, ok := scratch[c].Get().(*[]float32); ok {
		*b = (*b)[:n]
		return b
	}
	s := make([]float32, n, 1<<c)
	return &s
}

func putBuf(b *[]float32) {
	c := bits.Len(uint(cap(*b) - 1))
	if cap(*b) == 1<<c {
		scratch[c].Put(b)
	}
}
