package pool

import "github.com/quanta-go/quanta/internal/parallel"

// adaptiveSpans returns the window [floor(o*in/out), ceil((o+1)*in/out))
// of each output index.
func adaptiveSpans(out, in int) []span {
	sp := make([]span, out)
	for o := range sp {
		sp[o] = span{startIndex(o, out, in), endIndex(o, out, in)}
	}
	return sp
}

// AdaptiveAvgPool2DReference is PyTorch's CPU adaptive_avg_pool2d loop:
// output (oh, ow) is the float32 row-major sum of its window divided by
// the window height, then by its width.
func AdaptiveAvgPool2DReference(p AdaptivePool2DParams, x, y []float32) {
	p.mustValidate()
	for pl := 0; pl < p.N*p.C; pl++ {
		for oh := 0; oh < p.OutH; oh++ {
			ih0, ih1 := startIndex(oh, p.OutH, p.H), endIndex(oh, p.OutH, p.H)
			for ow := 0; ow < p.OutW; ow++ {
				iw0, iw1 := startIndex(ow, p.OutW, p.W), endIndex(ow, p.OutW, p.W)
				var sum float32
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						sum += x[(pl*p.H+ih)*p.W+iw]
					}
				}
				y[(pl*p.OutH+oh)*p.OutW+ow] = sum / float32(ih1-ih0) / float32(iw1-iw0)
			}
		}
	}
}

// AdaptiveAvgPool2D computes y = adaptive_avg_pool2d(x), with the same
// results as AdaptiveAvgPool2DReference. x is [N, C, H, W], y is
// [N, C, OutH, OutW], overwritten.
func AdaptiveAvgPool2D(p AdaptivePool2DParams, x, y []float32) {
	p.mustValidate()
	check("x", x, p.InputLen())
	check("y", y, p.OutputLen())
	rows, cols := adaptiveSpans(p.OutH, p.H), adaptiveSpans(p.OutW, p.W)
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	parallel.For(p.N*p.C, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			xp := x[pl*hw : (pl+1)*hw]
			yp := y[pl*ohw : (pl+1)*ohw]
			for oh, r := range rows {
				for ow, c := range cols {
					var sum float32
					for ih := r.lo; ih < r.hi; ih++ {
						for _, v := range xp[ih*p.W+c.lo : ih*p.W+c.hi] {
							sum += v
						}
					}
					yp[oh*p.OutW+ow] = sum / float32(r.hi-r.lo) / float32(c.hi-c.lo)
				}
			}
		}
	})
}

// AdaptiveAvgPool2DBackwardReference zeroes gx, then for each output in
// order adds gy/height/width to every element of its window.
func AdaptiveAvgPool2DBackwardReference(p AdaptivePool2DParams, gy, gx []float32) {
	p.mustValidate()
	clear(gx[:p.InputLen()])
	for pl := 0; pl < p.N*p.C; pl++ {
		for oh := 0; oh < p.OutH; oh++ {
			ih0, ih1 := startIndex(oh, p.OutH, p.H), endIndex(oh, p.OutH, p.H)
			for ow := 0; ow < p.OutW; ow++ {
				iw0, iw1 := startIndex(ow, p.OutW, p.W), endIndex(ow, p.OutW, p.W)
				d := gy[(pl*p.OutH+oh)*p.OutW+ow] / float32(ih1-ih0) / float32(iw1-iw0)
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						gx[(pl*p.H+ih)*p.W+iw] += d
					}
				}
			}
		}
	}
}

// AdaptiveAvgPool2DBackward computes the input gradient of
// AdaptiveAvgPool2D, with the same results as
// AdaptiveAvgPool2DBackwardReference. gx is overwritten.
func AdaptiveAvgPool2DBackward(p AdaptivePool2DParams, gy, gx []float32) {
	p.mustValidate()
	check("gy", gy, p.OutputLen())
	check("gx", gx, p.InputLen())
	rows, cols := adaptiveSpans(p.OutH, p.H), adaptiveSpans(p.OutW, p.W)
	hw, ohw := p.H*p.W, p.OutH*p.OutW
	parallel.For(p.N*p.C, grainFor(hw+ohw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			gp := gx[pl*hw : (pl+1)*hw]
			clear(gp)
			gyp := gy[pl*ohw : (pl+1)*ohw]
			for oh, r := range rows {
				for ow, c := range cols {
					d := gyp[oh*p.OutW+ow] / float32(r.hi-r.lo) / float32(c.hi-c.lo)
					for ih := r.lo; ih < r.hi; ih++ {
						row := gp[ih*p.W+c.lo : ih*p.W+c.hi]
						for i := range row {
							row[i] += d
						}
					}
				}
			}
		}
	})
}

// AdaptiveMaxPool2DReference is PyTorch's CPU adaptive_max_pool2d loop:
// each window (as in AdaptiveAvgPool2D) is scanned row-major from -Inf, a
// value replacing the maximum when greater or NaN; idx (nil for none)
// receives its plane position ih*W+iw.
func AdaptiveMaxPool2DReference(p AdaptivePool2DParams, x, y []float32, idx []int32) {
	p.mustValidate()
	for pl := 0; pl < p.N*p.C; pl++ {
		for oh := 0; oh < p.OutH; oh++ {
			ih0, ih1 := startIndex(oh, p.OutH, p.H), endIndex(oh, p.OutH, p.H)
			for ow := 0; ow < p.OutW; ow++ {
				iw0, iw1 := startIndex(ow, p.OutW, p.W), endIndex(ow, p.OutW, p.W)
				m, mi := negInf, ih0*p.W+iw0
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						if v := x[(pl*p.H+ih)*p.W+iw]; v > m || v != v {
							m, mi = v, ih*p.W+iw
						}
					}
				}
				o := (pl*p.OutH+oh)*p.OutW + ow
				y[o] = m
				if idx != nil {
					idx[o] = int32(mi)
				}
			}
		}
	}
}

// AdaptiveMaxPool2D computes y = adaptive_max_pool2d(x) and, when idx is
// not nil, the argmax positions for AdaptiveMaxPool2DBackward, with the
// same results as AdaptiveMaxPool2DReference.
func AdaptiveMaxPool2D(p AdaptivePool2DParams, x, y []float32, idx []int32) {
	p.mustValidate()
	check("x", x, p.InputLen())
	check("y", y, p.OutputLen())
	if idx != nil {
		checkIdx(idx, p.OutputLen())
	}
	g := geom{planes: p.N * p.C, H: p.H, W: p.W, OH: p.OutH, OW: p.OutW, DH: 1, DW: 1}
	maxPlanes(&g, adaptiveSpans(p.OutH, p.H), adaptiveSpans(p.OutW, p.W), x, y, idx)
}

// AdaptiveMaxPool2DBackward computes the input gradient of
// AdaptiveMaxPool2D: gx is zeroed, then each gy element is added at its
// index, in output order.
func AdaptiveMaxPool2DBackward(p AdaptivePool2DParams, gy []float32, idx []int32, gx []float32) {
	p.mustValidate()
	check("gy", gy, p.OutputLen())
	checkIdx(idx, p.OutputLen())
	check("gx", gx, p.InputLen())
	scatterBackward(p.N*p.C, p.H*p.W, p.OutH*p.OutW, gy, idx, gx)
}

// GlobalAvgPool2D computes y[pl] = (sum of plane pl of x) / hw for planes
// planes of hw elements each (adaptive_avg_pool2d to 1x1, summed in order
// in float32; torch computes this case as a mean, whose summation order
// differs in the last bits).
func GlobalAvgPool2D(planes, hw int, x, y []float32) {
	if planes < 0 || hw < 1 {
		panic("pool: global pooling needs planes >= 0 and hw >= 1")
	}
	check("x", x, planes*hw)
	check("y", y, planes)
	parallel.For(planes, grainFor(hw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			var sum float32
			for _, v := range x[pl*hw : (pl+1)*hw] {
				sum += v
			}
			y[pl] = sum / float32(hw)
		}
	})
}

// GlobalAvgPool2DBackward sets every element of plane pl of gx to
// gy[pl] / hw.
func GlobalAvgPool2DBackward(planes, hw int, gy, gx []float32) {
	if planes < 0 || hw < 1 {
		panic("pool: global pooling needs planes >= 0 and hw >= 1")
	}
	check("gy", gy, planes)
	check("gx", gx, planes*hw)
	parallel.For(planes, grainFor(hw), func(p0, p1 int) {
		for pl := p0; pl < p1; pl++ {
			d := gy[pl] / float32(hw)
			row := gx[pl*hw : (pl+1)*hw]
			for i := range row {
				row[i] = d
			}
		}
	})
}
