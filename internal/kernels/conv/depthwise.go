package conv

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Depthwise convolutions (C/Groups == 1: each output channel reads one
// input channel, OutC/C outputs per input channel) run direct kernels built
// on one primitive, the row kernel
//
//	y[i] = b + sum over t of w[t] * base[offs[t]+i],  i < len(y),
//
// accumulated in tap order. The input plane is first laid out so that every
// tap of every output row is a contiguous run of base: zero columns are added
// for horizontal padding, and for a horizontal stride s the columns are split
// into s phase planes (column j goes to phase j%s at j/s). Rows outside the
// image are skipped rather than padded.

// rowKernel is one implementation of the depthwise row primitive.
type rowKernel struct {
	name  string
	level cpu.Level
	row   func(y, base []float32, offs []int, w []float32, b float32)
}

// rowKernels lists the implementations, lowest level first; the _amd64
// files append theirs. Dispatch takes the last one cpu.Max allows.
var rowKernels = []rowKernel{{"generic", cpu.Generic, dwRowGeneric}}

func pickRow() func(y, base []float32, offs []int, w []float32, b float32) {
	for i := len(rowKernels) - 1; i > 0; i-- {
		if cpu.Has(rowKernels[i].level) {
			return rowKernels[i].row
		}
	}
	return rowKernels[0].row
}

// dwRowGeneric is the plain-Go row kernel.
func dwRowGeneric(y, base []float32, offs []int, w []float32, b float32) {
	for i := range y {
		y[i] = b
	}
	for t, off := range offs {
		wt := w[t]
		src := base[off : off+len(y)]
		for i, v := range src {
			y[i] += wt * v
		}
	}
}

// planeLayout places one zero-padded, phase-split input plane in a buffer.
type planeLayout struct {
	h, w, pw, s int // image height and width, horizontal padding, horizontal stride
	wq          int // width of each phase plane
	direct      bool
}

func newPlaneLayout(g *geom) planeLayout {
	l := planeLayout{h: g.H, w: g.W, pw: g.PW, s: g.SW}
	l.wq = (g.W + 2*g.PW + g.SW - 1) / g.SW
	l.direct = g.SW == 1 && g.PW == 0
	return l
}

func (l *planeLayout) size() int {
	if l.direct {
		return 0
	}
	return l.s * l.h * l.wq
}

// build lays plane [h, w] out in buf and returns the base the offsets of
// off refer to.
func (l *planeLayout) build(plane, buf []float32) []float32 {
	if l.direct {
		return plane[:l.h*l.w]
	}
	buf = buf[:l.size()]
	if l.s == 1 {
		for r := 0; r < l.h; r++ {
			dst := buf[r*l.wq : (r+1)*l.wq]
			clear(dst[:l.pw])
			copy(dst[l.pw:], plane[r*l.w:(r+1)*l.w])
			clear(dst[l.pw+l.w:])
		}
		return buf
	}
	ph := l.h * l.wq
	for r := 0; r < l.h; r++ {
		src := plane[r*l.w : (r+1)*l.w]
		for q := 0; q < l.s; q++ {
			dst := buf[q*ph+r*l.wq : q*ph+(r+1)*l.wq]
			// dst[j] holds padded column j*s+q, image column j*s+q-pw.
			for j := range dst {
				c := j*l.s + q - l.pw
				if c >= 0 && c < l.w {
					dst[j] = src[c]
				} else {
					dst[j] = 0
				}
			}
		}
	}
	return buf
}

// off is the offset of the element read by output column 0 for image row r
// and padded column jc (= kw*DW).
func (l *planeLayout) off(r, jc int) int {
	if l.direct {
		return r*l.w + jc
	}
	return (jc%l.s)*l.h*l.wq + r*l.wq + jc/l.s
}

func depthwiseForward(g *geom, x, w, bias, y []float32) {
	row := pickRow()
	m := g.ocg()
	lay := newPlaneLayout(g)
	kk := g.KH * g.KW
	parallel.For(g.N*g.C, 1, func(i0, i1 int) {
		buf := getBuf(lay.size())
		defer putBuf(buf)
		offs := make([]int, kk)
		ws := make([]float32, kk)
		for it := i0; it < i1; it++ {
			n, c := it/g.C, it%g.C
			base := lay.build(x[(n*g.C+c)*g.hw():], *buf)
			for j := 0; j < m; j++ {
				o := c*m + j
				wo := w[o*kk : (o+1)*kk]
				var b float32
				if bias != nil {
					b = bias[o]
				}
				yo := y[(n*g.OutC+o)*g.ohw() : (n*g.OutC+o+1)*g.ohw()]
				for oh := 0; oh < g.OH; oh++ {
					nt := 0
					for kh := 0; kh < g.KH; kh++ {
						ih := oh*g.SH - g.PH + kh*g.DH
						if ih < 0 || ih >= g.H {
							continue
						}
						for kw := 0; kw < g.KW; kw++ {
							offs[nt] = lay.off(ih, kw*g.DW)
							ws[nt] = wo[kh*g.KW+kw]
							nt++
						}
					}
					row(yo[oh*g.OW:(oh+1)*g.OW], base, offs[:nt], ws[:nt], b)
				}
			}
		}
	})
}

// depthwiseBackwardInput computes gx by gathering: each image row of gx is
// one row-kernel call over the gy rows that reach it. For a horizontal
// stride s, gy rows are spread out with s-1 zeros between elements, so a
// tap is again a contiguous run. The gy planes of the multiplier outputs of
// one input channel share one buffer.
func depthwiseBackwardInput(g *geom, w, gy, gx []float32) {
	row := pickRow()
	m := g.ocg()
	kk := g.KH * g.KW
	lm := (g.KW - 1) * g.DW // left margin of a spread row
	wu := max(g.W+g.PW+lm, (g.OW-1)*g.SW+1+lm)
	up := g.OH * wu // one spread plane
	parallel.For(g.N*g.C, 1, func(i0, i1 int) {
		buf := getBuf(m * up)
		defer putBuf(buf)
		u := *buf
		offs := make([]int, m*kk)
		ws := make([]float32, m*kk)
		for it := i0; it < i1; it++ {
			n, c := it/g.C, it%g.C
			for j := 0; j < m; j++ {
				o := c*m + j
				src := gy[(n*g.OutC+o)*g.ohw():]
				for oh := 0; oh < g.OH; oh++ {
					dst := u[j*up+oh*wu : j*up+(oh+1)*wu]
					sr := src[oh*g.OW : (oh+1)*g.OW]
					if g.SW == 1 {
						clear(dst[:lm])
						copy(dst[lm:], sr)
						clear(dst[lm+g.OW:])
						continue
					}
					clear(dst)
					for ow, v := range sr {
						dst[lm+ow*g.SW] = v
					}
				}
			}
			gxc := gx[(n*g.C+c)*g.hw() : (n*g.C+c+1)*g.hw()]
			for ih := 0; ih < g.H; ih++ {
				nt := 0
				for j := 0; j < m; j++ {
					wo := w[(c*m+j)*kk:]
					for kh := 0; kh < g.KH; kh++ {
						r := ih + g.PH - kh*g.DH
						if r < 0 || r%g.SH != 0 || r/g.SH >= g.OH {
							continue
						}
						oh := r / g.SH
						for kw := 0; kw < g.KW; kw++ {
							offs[nt] = j*up + oh*wu + g.PW + (g.KW-1-kw)*g.DW
							ws[nt] = wo[kh*g.KW+kw]
							nt++
						}
					}
				}
				row(gxc[ih*g.W:(ih+1)*g.W], u, offs[:nt], ws[:nt], 0)
			}
		}
	})
}

// depthwiseBackwardWeight computes gw[o, 0, kh, kw] = sum over n, oh, ow of
// gy[n, o, oh, ow] * xpad[n, c, oh*SH+kh*DH, ow*SW+kw*DW], split over input
// channels; each tap's sum runs over n, then oh, then ow.
func depthwiseBackwardWeight(g *geom, x, gy, gw []float32) {
	dot := pickDot()
	m := g.ocg()
	lay := newPlaneLayout(g)
	kk := g.KH * g.KW
	parallel.For(g.C, 1, func(c0, c1 int) {
		buf := getBuf(lay.size())
		defer putBuf(buf)
		for c := c0; c < c1; c++ {
			acc := gw[c*m*kk : (c+1)*m*kk]
			clear(acc)
			for n := 0; n < g.N; n++ {
				base := lay.build(x[(n*g.C+c)*g.hw():], *buf)
				for j := 0; j < m; j++ {
					o := c*m + j
					gyo := gy[(n*g.OutC+o)*g.ohw():]
					for kh := 0; kh < g.KH; kh++ {
						for kw := 0; kw < g.KW; kw++ {
							s := acc[j*kk+kh*g.KW+kw]
							for oh := 0; oh < g.OH; oh++ {
								ih := oh*g.SH - g.PH + kh*g.DH
								if ih < 0 || ih >= g.H {
									continue
								}
								off := lay.off(ih, kw*g.DW)
								s += dot(gyo[oh*g.OW:(oh+1)*g.OW], base[off:off+g.OW])
							}
							acc[j*kk+kh*g.KW+kw] = s
						}
					}
				}
			}
		}
	})
}

// dotKernel is one implementation of a float32 dot product.
type dotKernel struct {
	name  string
	level cpu.Level
	dot   func(a, b []float32) float32
}

// dotKernels lists the dot-product implementations, lowest level first.
var dotKernels = []dotKernel{{"generic", cpu.Generic, dotGeneric}}

func pickDot() func(a, b []float32) float32 {
	for i := len(dotKernels) - 1; i > 0; i-- {
		if cpu.Has(dotKernels[i].level) {
			return dotKernels[i].dot
		}
	}
	return dotKernels[0].dot
}

// dotGeneric returns sum of a[i]*b[i] accumulated in index order.
func dotGeneric(a, b []float32) float32 {
	var s float32
	b = b[:len(a)]
	for i, v := range a {
		s += v * b[i]
	}
	return s
}
