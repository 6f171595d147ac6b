package conv

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Depthwise convolutions (C/Groups == 1: each output channel reads one
// input channel, OutC/C outputs per input channel) run direct kernels built
// on one primitive, the rows kernel
//
//	y[r*ystride+i] = b + sum over t of w[t] * base[offs[t]+r*bstride+i],
//	r < rows, i < n,
//
// accumulated in tap order. The input plane is first laid out so that every
// tap of every output row is a contiguous run of base: zero columns are added
// for horizontal padding, and for a horizontal stride s the columns are split
// into s phase planes (column j goes to phase j%s at j/s). Rows outside the
// image are skipped rather than padded: the output rows whose taps all lie
// inside the image form one call, each border row its own call.

// maxDirectMult is the largest channel multiplier (outputs per input
// channel) computed by the direct kernels; from it on, a depthwise
// convolution is a GEMM with M = multiplier, K = KH*KW, which is faster.
const maxDirectMult = 7

// direct reports whether the depthwise direct kernels compute g: one input
// channel per group and at most maxDirectMult outputs per group.
func (g *geom) direct() bool { return g.cg() == 1 && g.ocg() <= maxDirectMult }

// rowsFunc is the signature of the rows kernel.
type rowsFunc func(y []float32, n, rows, ystride int, base []float32, bstride int, offs []int, w []float32, b float32)

// rowKernel is one implementation of the depthwise rows primitive.
type rowKernel struct {
	name  string
	level cpu.Level
	row   rowsFunc
}

// rowKernels lists the implementations, lowest level first; the _amd64
// files append theirs. Dispatch takes the last one cpu.Max allows.
var rowKernels = []rowKernel{{"generic", cpu.Generic, dwRowsGeneric}}

func pickRow() rowsFunc {
	for i := len(rowKernels) - 1; i > 0; i-- {
		if cpu.Has(rowKernels[i].level) {
			return rowKernels[i].row
		}
	}
	return rowKernels[0].row
}

// checkRows panics unless every element the rows kernel touches is in
// range.
func checkRows(y []float32, n, rows, ystride int, base []float32, bstride int, offs []int, w []float32) {
	if n < 0 || rows < 0 {
		panic("conv: negative rows-kernel size")
	}
	if n == 0 || rows == 0 {
		return
	}
	if ystride < n || bstride < 0 || (rows-1)*ystride+n > len(y) {
		panic("conv: rows kernel output out of range")
	}
	if len(w) < len(offs) {
		panic("conv: rows kernel has fewer weights than taps")
	}
	last := (rows-1)*bstride + n
	for _, o := range offs {
		if o < 0 || o+last > len(base) {
			panic("conv: rows kernel tap out of range")
		}
	}
}

// dwRowsGeneric is the plain-Go rows kernel.
func dwRowsGeneric(y []float32, n, rows, ystride int, base []float32, bstride int, offs []int, w []float32, b float32) {
	checkRows(y, n, rows, ystride, base, bstride, offs, w)
	for r := 0; r < rows; r++ {
		yr := y[r*ystride : r*ystride+n]
		for i := range yr {
			yr[i] = b
		}
		for t, off := range offs {
			wt := w[t]
			src := base[off+r*bstride : off+r*bstride+n]
			for i, v := range src {
				yr[i] += wt * v
			}
		}
	}
}

// planeLayout places one zero-padded, phase-split input plane in a buffer.
type planeLayout struct {
	h, w, pw, s int   // image height and width, horizontal padding, horizontal stride
	wq          int   // row stride of the laid-out plane (width of each phase)
	direct      bool  // stride 1 without padding: the plane is used in place
	col         []int // col[kw]: offset of padded column kw*DW for output column 0
}

func newPlaneLayout(g *geom) planeLayout {
	l := planeLayout{h: g.H, w: g.W, pw: g.PW, s: g.SW}
	l.direct = g.SW == 1 && g.PW == 0
	l.wq = (g.W + 2*g.PW + g.SW - 1) / g.SW
	if l.direct {
		l.wq = g.W
	}
	l.col = make([]int, g.KW)
	for kw := range l.col {
		jc := kw * g.DW
		l.col[kw] = (jc%l.s)*l.h*l.wq + jc/l.s
	}
	return l
}

func (l *planeLayout) size() int {
	if l.direct {
		return 0
	}
	return l.s * l.h * l.wq
}

// build lays plane [h, w] out in buf and returns the base the offsets
// r*wq + col[kw] refer to. tmp holds at least s*wq elements.
func (l *planeLayout) build(plane, buf, tmp []float32, split deinterleaveFunc) []float32 {
	if l.direct {
		return plane[:l.h*l.w]
	}
	buf = buf[:l.size()]
	ph := l.h * l.wq
	if l.s <= 2 {
		// Pad each row into tmp, then copy it (stride 1) or split it
		// into even and odd columns (stride 2).
		row := tmp[:l.s*l.wq]
		clear(row[:l.pw])
		clear(row[l.pw+l.w:])
		for r := 0; r < l.h; r++ {
			if l.s == 1 {
				dst := buf[r*l.wq : (r+1)*l.wq]
				clear(dst[:l.pw])
				copy(dst[l.pw:], plane[r*l.w:(r+1)*l.w])
				clear(dst[l.pw+l.w:])
				continue
			}
			copy(row[l.pw:], plane[r*l.w:(r+1)*l.w])
			split(buf[r*l.wq:(r+1)*l.wq], buf[ph+r*l.wq:ph+(r+1)*l.wq], row)
		}
		return buf
	}
	for q := 0; q < l.s; q++ {
		// Phase q holds padded columns j*s+q, image columns j*s+q-pw:
		// inside the image for j in [lo, hi).
		lo, hi := validRange(l.wq, l.w, l.s, q-l.pw)
		for r := 0; r < l.h; r++ {
			src := plane[r*l.w : (r+1)*l.w]
			dst := buf[q*ph+r*l.wq : q*ph+(r+1)*l.wq]
			clear(dst[:lo])
			clear(dst[hi:])
			if lo >= hi {
				continue
			}
			gatherStrided(dst[lo:hi], src[lo*l.s+q-l.pw:], l.s)
		}
	}
	return buf
}

// deinterleaveFunc sets even[j] = src[2j] and odd[j] = src[2j+1] for
// j < len(even).
type deinterleaveFunc func(even, odd, src []float32)

// deinterleaveKernel is one implementation of deinterleaveFunc.
type deinterleaveKernel struct {
	name  string
	level cpu.Level
	split deinterleaveFunc
}

// deinterleaveKernels lists the implementations, lowest level first.
var deinterleaveKernels = []deinterleaveKernel{{"generic", cpu.Generic, deinterleaveGeneric}}

func pickDeinterleave() deinterleaveFunc {
	for i := len(deinterleaveKernels) - 1; i > 0; i-- {
		if cpu.Has(deinterleaveKernels[i].level) {
			return deinterleaveKernels[i].split
		}
	}
	return deinterleaveKernels[0].split
}

func deinterleaveGeneric(even, odd, src []float32) {
	n := len(even)
	odd, src = odd[:n], src[:2*n]
	for j := range even {
		even[j] = src[2*j]
		odd[j] = src[2*j+1]
	}
}

// gatherStrided sets dst[j] = src[j*s].
func gatherStrided(dst, src []float32, s int) {
	if len(dst) == 0 {
		return
	}
	src = src[:(len(dst)-1)*s+1]
	if s == 2 {
		for len(dst) >= 4 && len(src) >= 8 {
			dst[0], dst[1], dst[2], dst[3] = src[0], src[2], src[4], src[6]
			dst, src = dst[4:], src[8:]
		}
	}
	for j := range dst {
		dst[j] = src[j*s]
	}
}

// interior returns the output rows [lo, hi) whose taps oh*s-pad+k*d,
// k < kn, all lie in [0, in).
func interior(out, in, kn, s, pad, d int) (lo, hi int) {
	lo = min((pad+s-1)/s, out)
	last := in - 1 + pad - (kn-1)*d
	if last < 0 {
		return lo, lo
	}
	hi = min(last/s+1, out)
	return lo, max(lo, hi)
}

// dwGrainMACs is the least work (multiply-adds) of the depthwise forward
// pass handed to a thread: smaller passes take a few microseconds, about
// what waking a second thread costs.
const dwGrainMACs = 1 << 16

func depthwiseForward(g *geom, x, w, bias, y []float32) {
	row, split := pickRow(), pickDeinterleave()
	m := g.ocg()
	lay := newPlaneLayout(g)
	kk := g.KH * g.KW
	ilo, ihi := interior(g.OH, g.H, g.KH, g.SH, g.PH, g.DH)
	mc := multChunk(m)
	chunks := (m + mc - 1) / mc
	// Items of about dwGrainMACs multiply-adds at least per thread.
	grain := max(1, dwGrainMACs/max(1, min(mc, m)*g.ohw()*kk))
	parallel.For(g.N*g.C*chunks, grain, func(i0, i1 int) {
		buf, tmp := getBuf(lay.size()), getBuf(lay.s*lay.wq)
		defer putBuf(buf)
		defer putBuf(tmp)
		offs := make([]int, kk)
		ws := make([]float32, kk)
		for it := i0; it < i1; it++ {
			n, c, ch := it/(g.C*chunks), (it/chunks)%g.C, it%chunks
			base := lay.build(x[(n*g.C+c)*g.hw():], *buf, *tmp, split)
			for j := ch * mc; j < min(m, (ch+1)*mc); j++ {
				o := c*m + j
				wo := w[o*kk : (o+1)*kk]
				var b float32
				if bias != nil {
					b = bias[o]
				}
				yo := y[(n*g.OutC+o)*g.ohw() : (n*g.OutC+o+1)*g.ohw()]
				// rows emits output rows [oh, oh+rows) over the taps
				// whose first row is inside the image.
				rows := func(oh, rows int) {
					nt := 0
					for kh := 0; kh < g.KH; kh++ {
						ih := oh*g.SH - g.PH + kh*g.DH
						if ih < 0 || ih >= g.H {
							continue
						}
						for kw := 0; kw < g.KW; kw++ {
							offs[nt] = ih*lay.wq + lay.col[kw]
							ws[nt] = wo[kh*g.KW+kw]
							nt++
						}
					}
					row(yo[oh*g.OW:], g.OW, rows, g.OW, base, g.SH*lay.wq, offs[:nt], ws[:nt], b)
				}
				for oh := 0; oh < ilo; oh++ {
					rows(oh, 1)
				}
				if ihi > ilo {
					rows(ilo, ihi-ilo)
				}
				for oh := max(ihi, ilo); oh < g.OH; oh++ {
					rows(oh, 1)
				}
			}
		}
	})
}

// multChunk is how many of the m outputs of one input channel one work
// item computes: all of them for a plain depthwise convolution, a few when
// a large multiplier (such as a first layer with one input channel) would
// otherwise leave too few items to share among threads.
func multChunk(m int) int { return min(m, 8) }

// depthwiseBackwardInput computes gx by gathering: each image row of gx is
// a rows-kernel output over the gy rows that reach it. For a horizontal
// stride s, gy rows are spread out with s-1 zeros between elements, so a
// tap is again a contiguous run. The gy planes of the multiplier outputs of
// one input channel share one buffer. Rows that the same taps reach from
// consecutive gy rows form one call (see backwardRowPlan).
func depthwiseBackwardInput(g *geom, w, gy, gx []float32) {
	row := pickRow()
	m := g.ocg()
	kk := g.KH * g.KW
	lm := (g.KW - 1) * g.DW // left margin of a spread row
	wu := max(g.W+g.PW+lm, (g.OW-1)*g.SW+1+lm)
	up := g.OH * wu // one spread plane
	plan := backwardRowPlan(g)
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
			rows := func(ih, rows int) {
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
				row(gxc[ih*g.W:], g.W, rows, g.SH*g.W, u, wu, offs[:nt], ws[:nt], 0)
			}
			for _, b := range plan {
				rows(b.ih, b.rows)
			}
		}
	})
}

// rowBatch is a run of gx rows ih, ih+SH, ... (rows of them) that one
// rows-kernel call computes: the same taps reach each of them, from
// consecutive gy rows.
type rowBatch struct{ ih, rows int }

// backwardRowPlan groups the rows of the depthwise input gradient into
// batches. Rows congruent modulo SH are reached by the same kernel rows
// kh (those with ih+PH-kh*DH divisible by SH); a run of such rows is one
// batch when every one of those kh lands inside gy, and every other row is
// a batch of its own.
func backwardRowPlan(g *geom) []rowBatch {
	full := func(ih int) bool {
		for kh := 0; kh < g.KH; kh++ {
			r := ih + g.PH - kh*g.DH
			if r%g.SH == 0 && (r < 0 || r/g.SH >= g.OH) {
				return false
			}
		}
		return true
	}
	var plan []rowBatch
	for res := 0; res < min(g.SH, g.H); res++ {
		for ih := res; ih < g.H; ih += g.SH {
			if !full(ih) {
				plan = append(plan, rowBatch{ih, 1})
				continue
			}
			n := 1
			for ih+n*g.SH < g.H && full(ih+n*g.SH) {
				n++
			}
			plan = append(plan, rowBatch{ih, n})
			ih += (n - 1) * g.SH
		}
	}
	return plan
}

// depthwiseBackwardWeight computes gw[o, 0, kh, kw] = sum over n, oh, ow of
// gy[n, o, oh, ow] * xpad[n, c, oh*SH+kh*DH, ow*SW+kw*DW], split over input
// channels and multiplier chunks; each tap's sum runs over n, then over the
// rows above the interior, the interior rows (one multi-row dot product),
// and the rows below.
func depthwiseBackwardWeight(g *geom, x, gy, gw []float32) {
	dot, split := pickDot(), pickDeinterleave()
	m := g.ocg()
	lay := newPlaneLayout(g)
	kk := g.KH * g.KW
	ilo, ihi := interior(g.OH, g.H, g.KH, g.SH, g.PH, g.DH)
	mc := multChunk(m)
	chunks := (m + mc - 1) / mc
	parallel.For(g.C*chunks, 1, func(i0, i1 int) {
		buf, tmp := getBuf(lay.size()), getBuf(lay.s*lay.wq)
		defer putBuf(buf)
		defer putBuf(tmp)
		for it := i0; it < i1; it++ {
			c, ch := it/chunks, it%chunks
			j0, j1 := ch*mc, min(m, (ch+1)*mc)
			clear(gw[(c*m+j0)*kk : (c*m+j1)*kk])
			acc := gw[c*m*kk : (c+1)*m*kk]
			for n := 0; n < g.N; n++ {
				base := lay.build(x[(n*g.C+c)*g.hw():], *buf, *tmp, split)
				for j := j0; j < j1; j++ {
					o := c*m + j
					gyo := gy[(n*g.OutC+o)*g.ohw():]
					for kh := 0; kh < g.KH; kh++ {
						for kw := 0; kw < g.KW; kw++ {
							// rows adds output rows [oh, oh+rows) of this tap.
							rows := func(oh, rows int) float32 {
								ih := oh*g.SH - g.PH + kh*g.DH
								if ih < 0 || ih >= g.H {
									return 0
								}
								return dot(gyo[oh*g.OW:], g.OW, base[ih*lay.wq+lay.col[kw]:], g.SH*lay.wq, g.OW, rows)
							}
							s := acc[j*kk+kh*g.KW+kw]
							for oh := 0; oh < ilo; oh++ {
								s += rows(oh, 1)
							}
							if ihi > ilo {
								s += rows(ilo, ihi-ilo)
							}
							for oh := max(ihi, ilo); oh < g.OH; oh++ {
								s += rows(oh, 1)
							}
							acc[j*kk+kh*g.KW+kw] = s
						}
					}
				}
			}
		}
	})
}

// dotRowsFunc returns the sum over r < rows and i < n of
// a[r*astride+i]*b[r*bstride+i].
type dotRowsFunc func(a []float32, astride int, b []float32, bstride int, n, rows int) float32

// dotKernel is one implementation of the strided multi-row dot product.
type dotKernel struct {
	name  string
	level cpu.Level
	dot   dotRowsFunc
}

// dotKernels lists the implementations, lowest level first.
var dotKernels = []dotKernel{{"generic", cpu.Generic, dotRowsGeneric}}

func pickDot() dotRowsFunc {
	for i := len(dotKernels) - 1; i > 0; i-- {
		if cpu.Has(dotKernels[i].level) {
			return dotKernels[i].dot
		}
	}
	return dotKernels[0].dot
}

// checkDotRows panics unless every element read is in range.
func checkDotRows(a []float32, astride int, b []float32, bstride int, n, rows int) {
	if n < 0 || rows < 0 || astride < 0 || bstride < 0 {
		panic("conv: negative dot-rows size")
	}
	if n == 0 || rows == 0 {
		return
	}
	if (rows-1)*astride+n > len(a) || (rows-1)*bstride+n > len(b) {
		panic("conv: dot rows out of range")
	}
}

// dotRowsGeneric accumulates in row-major order.
func dotRowsGeneric(a []float32, astride int, b []float32, bstride int, n, rows int) float32 {
	checkDotRows(a, astride, b, bstride, n, rows)
	var s float32
	for r := 0; r < rows; r++ {
		ar := a[r*astride : r*astride+n]
		br := b[r*bstride : r*bstride+n]
		for i, v := range ar {
			s += v * br[i]
		}
	}
	return s
}
