package pool

import "github.com/quanta-go/quanta/internal/parallel"

// avgWindow is one average-pooling window: rows [h0, h1), columns
// [w0, w1) clipped to the image, and its divisor; empty windows have
// h0 >= h1 or w0 >= w1.
type avgWindow struct{ lo, hi, size int }

// avgSpans returns the clipped ranges and padded sizes along one axis, as
// PyTorch's avg_pool2d computes them: the window [o*s-pad, o*s-pad+k) is
// first clipped to [-pad, in+pad) (its padded size), then to [0, in).
func avgSpans(out, in, k, s, pad int) []avgWindow {
	sp := make([]avgWindow, out)
	for o := range sp {
		lo := o*s - pad
		hi := min(lo+k, in+pad)
		size := hi - lo
		sp[o] = avgWindow{max(lo, 0), min(hi, in), size}
	}
	return sp
}

// divisor is the divisor PyTorch uses for a window.
func (g *geom) avgDivisor(r, c avgWindow) float32 {
	switch {
	case g.divisor != 0:
		return float32(g.divisor)
	case g.countPad:
		return float32(r.size * c.size)
	}
	return float32((r.hi - r.lo) * (c.hi - c.lo))
}

func (p Pool2DParams) avgGeom() geom {
	if err := p.ValidateAvg(); err != nil {
		panic(err.Error())
	}
	return p.geom()
}

// AvgPool2DReference is PyTorch's CPU avg_pool2d loop: each output is the
// float32 sum of its window's in-image elements in row-major order, divided
// by Divisor if set, else by the window size counting padding
// (CountIncludePad) or not; a window with no in-image element gives 0.
func AvgPool2DReference(p Pool2DParams, x, y []float32) {
	g := p.avgGeom()
	for pl := 0; pl < g.planes; pl++ {
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				ih0 := oh*g.SH - g.PH
				iw0 := ow*g.SW - g.PW
				ih1 := min(ih0+g.KH, g.H+g.PH)
				iw1 := min(iw0+g.KW, g.W+g.PW)
				poolSize := (ih1 - ih0) * (iw1 - iw0)
				ih0, iw0 = max(ih0, 0), max(iw0, 0)
				ih1, iw1 = min(ih1, g.H), min(iw1, g.W)
				o := (pl*g.OH+oh)*g.OW + ow
				if ih0 >= ih1 || iw0 >= iw1 {
					y[o] = 0
					continue
				}
				var sum float32
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						sum += x[(pl*g.H+ih)*g.W+iw]
					}
				}
				div := (ih1 - ih0) * (iw1 - iw0)
				if g.divisor != 0 {
					div = g.divisor
				} else if g.countPad {
					div = poolSize
				}
				y[o] = sum / float32(div)
			}
		}
	}
}

// AvgPool2D computes y = avg_pool2d(x), with the same results as
// AvgPool2DReference. x is [N, C, H, W], y is [N, C, OutH, OutW],
// overwritten. Dilation must be 1 (see ValidateAvg).
func AvgPool2D(p Pool2DParams, x, y []float32) {
	g := p.avgGeom()
	check("x", x, p.InputLen())
	check("y", y, p.OutputLen())
	rows := avgSpans(g.OH, g.H, g.KH, g.SH, g.PH)
	cols := avgSpans(g.OW, g.W, g.KW, g.SW, g.PW)
	hw, ohw := g.H*g.W, g.OH*g.OW
	parallel.For(g.planes, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*hw : (pl+1)*hw]
			yp := y[pl*ohw : (pl+1)*ohw]
			for oh, r := range rows {
				yr := yp[oh*g.OW : (oh+1)*g.OW]
				for ow, c := range cols {
					if r.lo >= r.hi || c.lo >= c.hi {
						yr[ow] = 0
						continue
					}
					var sum float32
					for ih := r.lo; ih < r.hi; ih++ {
						for _, v := range xp[ih*g.W+c.lo : ih*g.W+c.hi] {
							sum += v
						}
					}
					yr[ow] = sum / g.avgDivisor(r, c)
				}
			}
		}
	})
}

// AvgPool2DReference's adjoint, AvgPool2DBackwardReference, zeroes gx and
// then, for each output in order, adds gy/divisor to every in-image
// element of its window (PyTorch's avg_pool2d_backward).
func AvgPool2DBackwardReference(p Pool2DParams, gy, gx []float32) {
	g := p.avgGeom()
	clear(gx[:g.planes*g.H*g.W])
	for pl := 0; pl < g.planes; pl++ {
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				ih0 := oh*g.SH - g.PH
				iw0 := ow*g.SW - g.PW
				ih1 := min(ih0+g.KH, g.H+g.PH)
				iw1 := min(iw0+g.KW, g.W+g.PW)
				poolSize := (ih1 - ih0) * (iw1 - iw0)
				ih0, iw0 = max(ih0, 0), max(iw0, 0)
				ih1, iw1 = min(ih1, g.H), min(iw1, g.W)
				if ih0 >= ih1 || iw0 >= iw1 {
					continue
				}
				div := (ih1 - ih0) * (iw1 - iw0)
				if g.divisor != 0 {
					div = g.divisor
				} else if g.countPad {
					div = poolSize
				}
				d := gy[(pl*g.OH+oh)*g.OW+ow] / float32(div)
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						gx[(pl*g.H+ih)*g.W+iw] += d
					}
				}
			}
		}
	}
}

// AvgPool2DBackward computes the input gradient of AvgPool2D, with the
// same results as AvgPool2DBackwardReference. gx is overwritten.
func AvgPool2DBackward(p Pool2DParams, gy, gx []float32) {
	g := p.avgGeom()
	check("gy", gy, p.OutputLen())
	check("gx", gx, p.InputLen())
	rows := avgSpans(g.OH, g.H, g.KH, g.SH, g.PH)
	cols := avgSpans(g.OW, g.W, g.KW, g.SW, g.PW)
	hw, ohw := g.H*g.W, g.OH*g.OW
	parallel.For(g.planes, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			gp := gx[pl*hw : (pl+1)*hw]
			clear(gp)
			gyp := gy[pl*ohw : (pl+1)*ohw]
			for oh, r := range rows {
				for ow, c := range cols {
					if r.lo >= r.hi || c.lo >= c.hi {
						continue
					}
					d := gyp[oh*g.OW+ow] / g.avgDivisor(r, c)
					for ih := r.lo; ih < r.hi; ih++ {
						row := gp[ih*g.W+c.lo : ih*g.W+c.hi]
						for i := range row {
							row[i] += d
						}
					}
				}
			}
		}
	})
}
