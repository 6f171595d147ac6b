package qelem

import (
	"math"
	"sync"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Requant maps the codes an averaging or interpolating op computes from
// input (InScale, InZero) to output (OutScale, OutZero) codes within
// [Min, Max]. PyTorch's quantized pooling and upsampling keep the input
// qparams (InScale == OutScale, InZero == OutZero); other output qparams
// serve graphs (ONNX QLinearAveragePool and the like).
type Requant struct {
	InScale  float32
	InZero   int32
	OutScale float32
	OutZero  int32
	Min, Max int32
}

// Same reports whether input and output qparams are equal.
func (r *Requant) Same() bool { return r.InScale == r.OutScale && r.InZero == r.OutZero }

// roundDiv returns n/d rounded half to even, exactly (d > 0).
func roundDiv(n, d int64) int64 {
	q, m := n/d, n%d
	if m < 0 {
		q--
		m += d
	}
	if 2*m > d || (2*m == d && q&1 != 0) {
		q++
	}
	return q
}

// avgValue is the one rounding step of every average: s is the sum of
// (q - InZero) over a window's in-image elements and d its divisor
// (d = 0 only for a window with no element and no padding counted).
//
//	same qparams:  y = saturate(roundHalfEven((s + d*InZero) / d))  exactly,
//	               the rounded mean of the raw codes, padding counting as InZero
//	otherwise:     y = qmath.ClampRound(float32(float32(s) * m), OutZero, Min, Max)
//	               with m = float32(float32(InScale/OutScale) / float32(d))
//
// and y = saturate(OutZero) when d = 0.
func avgValue(s, d int64, r *Requant) int32 {
	if d == 0 {
		return qmath.Saturate(int64(r.OutZero), r.Min, r.Max)
	}
	if r.Same() {
		return qmath.Saturate(roundDiv(s+d*int64(r.InZero), d), r.Min, r.Max)
	}
	m := float32(float32(r.InScale/r.OutScale) / float32(d))
	return qmath.ClampRound(float32(float32(s)*m), r.OutZero, r.Min, r.Max)
}

// avgValueFast equals avgValue: for |n| < 2^52 the float64 quotient is
// correctly rounded, so it is an exact tie exactly when n/d is one, and
// otherwise lies on the same side of every tie as n/d.
func avgValueFast(s, d int64, r *Requant) int32 {
	if d == 0 {
		return qmath.Saturate(int64(r.OutZero), r.Min, r.Max)
	}
	if r.Same() {
		q := math.RoundToEven(float64(s+d*int64(r.InZero)) / float64(d))
		return qmath.Saturate(int64(q), r.Min, r.Max)
	}
	m := float32(float32(r.InScale/r.OutScale) / float32(d))
	return qmath.ClampRound(float32(float32(s)*m), r.OutZero, r.Min, r.Max)
}

// pgeom is a validated, normalized Pool2DParams.
type pgeom struct {
	planes, H, W, OH, OW, KH, KW, SH, SW, PH, PW, DH, DW int
	countPad                                             bool
	divisor                                              int
}

func poolGeom(op string, p pool.Pool2DParams, avg bool) pgeom {
	err := p.Validate()
	if avg && err == nil {
		err = p.ValidateAvg()
	}
	if err != nil {
		panic("qelem: " + op + ": " + err.Error())
	}
	q := p.Norm()
	return pgeom{planes: q.N * q.C, H: q.H, W: q.W, OH: q.OutH(), OW: q.OutW(), KH: q.KH, KW: q.KW,
		SH: q.StrideH, SW: q.StrideW, PH: q.PadH, PW: q.PadW, DH: q.DilH, DW: q.DilW,
		countPad: q.CountIncludePad, divisor: q.Divisor}
}

func (g *pgeom) check(op string, xLen, yLen int) {
	need(op, "x", xLen, g.planes*g.H*g.W)
	need(op, "y", yLen, g.planes*g.OH*g.OW)
}

// rowGrain is a parallel grain (in output rows) giving each goroutine at
// least about 16K input elements.
func rowGrain(perRow int) int { return max(1, grain/max(1, perRow)) }

type rowMaxFn func(dst, src []byte, signed bool)

// rowMaxVariants lists every tier of the row maximum, lowest first.
var rowMaxVariants = append([]variant[rowMaxFn]{{name: "generic", level: cpu.Generic, ok: true, fn: rowMaxGeneric}}, rowMaxArch...)

func rowMaxGeneric(dst, src []byte, signed bool) {
	src = src[:len(dst)]
	if signed {
		for i, b := range src {
			if int8(b) > int8(dst[i]) {
				dst[i] = b
			}
		}
		return
	}
	for i, b := range src {
		dst[i] = max(dst[i], b)
	}
}

// MaxPool2DReference is the specification of MaxPool2D
// (torch.nn.functional.max_pool2d on a quantized tensor, qparams passing
// through): each output is the largest code of its dilated window's
// in-image elements, or T's lowest value for a window with none.
func MaxPool2DReference[T Byte](p pool.Pool2DParams, x, y []T) {
	g := poolGeom("MaxPool2DReference", p, false)
	g.check("MaxPool2DReference", len(x), len(y))
	lowest, _ := typeRange[T]()
	for pl := 0; pl < g.planes; pl++ {
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				m := lowest
				for kh := 0; kh < g.KH; kh++ {
					ih := oh*g.SH - g.PH + kh*g.DH
					if ih < 0 || ih >= g.H {
						continue
					}
					for kw := 0; kw < g.KW; kw++ {
						iw := ow*g.SW - g.PW + kw*g.DW
						if iw < 0 || iw >= g.W {
							continue
						}
						m = max(m, int32(x[(pl*g.H+ih)*g.W+iw]))
					}
				}
				y[(pl*g.OH+oh)*g.OW+ow] = T(m)
			}
		}
	}
}

// MaxPool2D computes MaxPool2DReference: per output row, the maximum of
// the window's input rows (a vectorized row maximum), then of the
// window's columns, read as stride-1 runs of the row split into stride
// phases. Work is split over output rows.
func MaxPool2D[T Byte](p pool.Pool2DParams, x, y []T) {
	g := poolGeom("MaxPool2D", p, false)
	g.check("MaxPool2D", len(x), len(y))
	rv := pick(rowMaxVariants)
	if rv.level == cpu.Generic {
		maxPoolDirect(&g, x, y)
		return
	}
	signed := isSigned[T]()
	lo, _ := typeRange[T]()
	lowest := byte(lo)
	rowMax := rv.fn
	split := pick(deinterleaveVariants).fn
	xb, yb := bytesOf(x), bytesOf(y)
	if g.pairs() {
		maxPoolPairs(&g, xb, yb, signed, rowMax, split)
		return
	}
	// Padded row: PW lowest values, the row, lowest values up to the last
	// column any window reads.
	L := max((g.OW-1)*g.SW+(g.KW-1)*g.DW+1, g.PW+g.W)
	P := (L + g.SW - 1) / g.SW
	parallel.For(g.planes*g.OH, rowGrain(g.KH*g.W), func(s, e int) {
		buf := make([]byte, L)
		var phases []byte
		if g.SW > 1 {
			phases = make([]byte, g.SW*P)
		}
		for t := s; t < e; t++ {
			pl, oh := t/g.OH, t%g.OH
			out := yb[t*g.OW : (t+1)*g.OW]
			first := true
			for kh := 0; kh < g.KH; kh++ {
				ih := oh*g.SH - g.PH + kh*g.DH
				if ih < 0 || ih >= g.H {
					continue
				}
				row := xb[(pl*g.H+ih)*g.W : (pl*g.H+ih+1)*g.W]
				if first {
					fillBytes(buf[:g.PW], lowest)
					fillBytes(buf[g.PW+g.W:], lowest)
					copy(buf[g.PW:], row)
					first = false
				} else {
					rowMax(buf[g.PW:g.PW+g.W], row, signed)
				}
			}
			if first {
				fillBytes(out, lowest)
				continue
			}
			src := buf
			switch {
			case g.SW == 2:
				// L <= 2P: pad the last odd entry when L is odd.
				phases[2*P-1] = lowest
				n := L / 2
				split(phases[:n], phases[P:P+n], buf[:2*n])
				if L%2 == 1 {
					phases[n] = buf[L-1]
				}
				src = phases
			case g.SW > 2:
				fillBytes(phases, lowest)
				for r := 0; r < g.SW; r++ {
					ph := phases[r*P : (r+1)*P]
					for j, i := 0, r; i < L; j, i = j+1, i+g.SW {
						ph[j] = buf[i]
					}
				}
				src = phases
			}
			for kw := 0; kw < g.KW; kw++ {
				off := kw * g.DW
				r, sh := off%g.SW, off/g.SW
				run := src[r*P+sh : r*P+sh+g.OW]
				if kw == 0 {
					copy(out, run)
				} else {
					rowMax(out, run, signed)
				}
			}
		}
	})
}

// pairs reports whether g's windows are two columns wide and tile every
// row (stride 2, no column padding or dilation, an even width) and read
// only rows inside the image (no row padding or dilation, no window past
// the last row): MaxPool2D's common 2x2, stride-2 case.
func (g *pgeom) pairs() bool {
	return g.KW == 2 && g.SW == 2 && g.DW == 1 && g.PW == 0 && g.W == 2*g.OW &&
		g.PH == 0 && g.DH == 1 && (g.OH-1)*g.SH+g.KH <= g.H
}

// pairPiece bounds the bytes of input rows maxPoolPairs gathers at once.
const pairPiece = 1 << 13

// pairBufs holds maxPoolPairs' buffers.
var pairBufs = sync.Pool{New: func() any { return new([]byte) }}

// maxPoolPairs is MaxPool2D for windows that pairs accepts. Per piece of
// output rows it gathers each row's window maximum over the input rows
// (whole rows, vectorized), then splits the piece's columns into even and
// odd ones once and takes their maximum: two calls per piece instead of
// several per output row, which dominate for short rows.
func maxPoolPairs(g *pgeom, xb, yb []byte, signed bool, rowMax rowMaxFn, split deinterleaveFn) {
	per := max(1, pairPiece/g.W)
	parallel.For(g.planes*g.OH, rowGrain(g.KH*g.W), func(s, e int) {
		bp := pairBufs.Get().(*[]byte)
		defer pairBufs.Put(bp)
		need := min(e-s, per) * (g.W + g.OW)
		if cap(*bp) < need {
			*bp = make([]byte, need)
		}
		for r0 := s; r0 < e; r0 += per {
			r1 := min(e, r0+per)
			rows, odd := (*bp)[:(r1-r0)*g.W], (*bp)[(r1-r0)*g.W:(r1-r0)*(g.W+g.OW)]
			for t := r0; t < r1; t++ {
				pl, oh := t/g.OH, t%g.OH
				in := xb[(pl*g.H+oh*g.SH)*g.W:]
				dst := rows[(t-r0)*g.W : (t-r0+1)*g.W]
				copy(dst, in[:g.W])
				for kh := 1; kh < g.KH; kh++ {
					rowMax(dst, in[kh*g.W:(kh+1)*g.W], signed)
				}
			}
			out := yb[r0*g.OW : r1*g.OW]
			split(out, odd, rows)
			rowMax(out, odd, signed)
		}
	})
}

type deinterleaveFn func(even, odd, src []byte)

// deinterleaveVariants lists every tier of the stride-2 split, lowest
// first.
var deinterleaveVariants = append([]variant[deinterleaveFn]{{name: "generic", level: cpu.Generic, ok: true, fn: deinterleaveGeneric}}, deinterleaveArch...)

// deinterleaveGeneric sets even[i], odd[i] = src[2i], src[2i+1] for
// i < len(even).
func deinterleaveGeneric(even, odd, src []byte) {
	odd, src = odd[:len(even)], src[:2*len(even)]
	for i := range even {
		even[i], odd[i] = src[2*i], src[2*i+1]
	}
}

// maxPoolDirect is the plain-Go path of MaxPool2D: per output, the
// window's valid taps precomputed per row and column, so the inner loops
// have no bounds tests.
func maxPoolDirect[T Byte](g *pgeom, x, y []T) {
	lowest, _ := typeRange[T]()
	type taps struct{ lo, hi int }
	span := func(o, s, pad, k, d, in int) taps {
		base := o*s - pad
		a, b := 0, k
		for a < k && base+a*d < 0 {
			a++
		}
		for b > a && base+(b-1)*d >= in {
			b--
		}
		return taps{a, b}
	}
	cols := make([]taps, g.OW)
	for ow := range cols {
		cols[ow] = span(ow, g.SW, g.PW, g.KW, g.DW, g.W)
	}
	parallel.For(g.planes*g.OH, rowGrain(g.KH*g.W), func(s, e int) {
		for t := s; t < e; t++ {
			pl, oh := t/g.OH, t%g.OH
			rt := span(oh, g.SH, g.PH, g.KH, g.DH, g.H)
			out := y[t*g.OW : (t+1)*g.OW]
			for ow, ct := range cols {
				m := lowest
				for kh := rt.lo; kh < rt.hi; kh++ {
					ih := oh*g.SH - g.PH + kh*g.DH
					row := x[(pl*g.H+ih)*g.W : (pl*g.H+ih+1)*g.W]
					base := ow*g.SW - g.PW
					for kw := ct.lo; kw < ct.hi; kw++ {
						m = max(m, int32(row[base+kw*g.DW]))
					}
				}
				out[ow] = T(m)
			}
		}
	})
}

func fillBytes(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

// AvgPool2DReference is the specification of AvgPool2D
// (torch.nn.functional.avg_pool2d on a quantized tensor): for each window
// [oh*SH-PH, +KH) x [ow*SW-PW, +KW), first clipped to the padded input,
// s is the integer sum of (q - InZero) over its in-image elements and d
// its divisor (Divisor if set, else the padded window size with
// CountIncludePad, else the number of in-image elements); the output is
// avgValue(s, d): with equal input and output qparams, the exact mean of
// the raw codes (padding counting as the zero point) rounded half to even,
// which is PyTorch's native kernel (nearbyint(sum/d + zp)). See avgValue
// for other output qparams.
func AvgPool2DReference[T Byte](p pool.Pool2DParams, r *Requant, x, y []T) {
	g := poolGeom("AvgPool2DReference", p, true)
	g.check("AvgPool2DReference", len(x), len(y))
	for pl := 0; pl < g.planes; pl++ {
		for oh := 0; oh < g.OH; oh++ {
			for ow := 0; ow < g.OW; ow++ {
				ih0, iw0 := oh*g.SH-g.PH, ow*g.SW-g.PW
				ih1, iw1 := min(ih0+g.KH, g.H+g.PH), min(iw0+g.KW, g.W+g.PW)
				padded := (ih1 - ih0) * (iw1 - iw0)
				ih0, iw0, ih1, iw1 = max(ih0, 0), max(iw0, 0), min(ih1, g.H), min(iw1, g.W)
				var s, count int64
				for ih := ih0; ih < ih1; ih++ {
					for iw := iw0; iw < iw1; iw++ {
						s += int64(x[(pl*g.H+ih)*g.W+iw]) - int64(r.InZero)
						count++
					}
				}
				d := count
				if g.divisor != 0 {
					d = int64(g.divisor)
				} else if g.countPad {
					d = int64(padded)
				}
				y[(pl*g.OH+oh)*g.OW+ow] = T(avgValue(s, d, r))
			}
		}
	}
}

// AvgPool2D computes AvgPool2DReference with separable integer sums
// (vectorized column sums of the window's rows, then prefix sums along
// the row) and per-column window bounds computed once; split over output
// rows.
func AvgPool2D[T Byte](p pool.Pool2DParams, r *Requant, x, y []T) {
	g := poolGeom("AvgPool2D", p, true)
	g.check("AvgPool2D", len(x), len(y))
	checkRange[T]("AvgPool2D", r.Min, r.Max)
	acc, xb, signed := pick(rowAccVariants).fn, bytesOf(x), isSigned[T]()
	type window struct{ lo, hi, pad int }
	cols := make([]window, g.OW)
	for ow := range cols {
		iw0 := ow*g.SW - g.PW
		iw1 := min(iw0+g.KW, g.W+g.PW)
		cols[ow] = window{max(iw0, 0), max(min(iw1, g.W), max(iw0, 0)), iw1 - iw0}
	}
	same, zIn := r.Same(), int64(r.InZero)
	parallel.For(g.planes*g.OH, rowGrain(g.KH*g.W), func(s, e int) {
		prefix := make([]int64, g.W+1)
		col := make([]int32, g.W)
		for t := s; t < e; t++ {
			pl, oh := t/g.OH, t%g.OH
			ih0 := oh*g.SH - g.PH
			ih1 := min(ih0+g.KH, g.H+g.PH)
			hPad := int64(ih1 - ih0)
			ih0, ih1 = max(ih0, 0), min(ih1, g.H)
			rows := int64(max(ih1-ih0, 0))
			columnSums(acc, xb[pl*g.H*g.W:], signed, g.W, ih0, max(ih1, ih0), col, prefix)
			out := y[t*g.OW : (t+1)*g.OW]
			for ow, c := range cols {
				count := rows * int64(c.hi-c.lo)
				raw := prefix[c.hi] - prefix[c.lo] // sum of the codes themselves
				d := count
				if g.divisor != 0 {
					d = int64(g.divisor)
				} else if g.countPad {
					d = hPad * int64(c.pad)
				}
				if same && d != 0 {
					// avgValue's exact rounding of (s + d*InZero)/d, with
					// s = raw - count*InZero (see avgValueFast).
					q := math.RoundToEven(float64(raw+(d-count)*zIn) / float64(d))
					out[ow] = T(qmath.Saturate(int64(q), r.Min, r.Max))
					continue
				}
				out[ow] = T(avgValue(raw-count*zIn, d, r))
			}
		}
	})
}

type rowAccFn func(dst []int32, src []byte, signed bool)

// rowAccVariants lists every tier of the widening row sum, lowest first.
var rowAccVariants = append([]variant[rowAccFn]{{name: "generic", level: cpu.Generic, ok: true, fn: rowAccGeneric}}, rowAccArch...)

func rowAccGeneric(dst []int32, src []byte, signed bool) {
	src = src[:len(dst)]
	if signed {
		for i, b := range src {
			dst[i] += int32(int8(b))
		}
		return
	}
	for i, b := range src {
		dst[i] += int32(b)
	}
}

// columnSums sets col[w] to the sum of rows [h0, h1) of the plane x (row
// length w; int8 when signed) and prefix[w] to the sum of col[:w].
func columnSums(acc rowAccFn, x []byte, signed bool, w, h0, h1 int, col []int32, prefix []int64) {
	clear(col)
	for h := h0; h < h1; h++ {
		acc(col, x[h*w:(h+1)*w], signed)
	}
	prefix[0] = 0
	for i, c := range col {
		prefix[i+1] = prefix[i] + int64(c)
	}
}

// adaptiveWindow returns output index a's input window [start, end) of
// an adaptive pooling from c inputs to b outputs:
// [floor(a*c/b), ceil((a+1)*c/b)).
func adaptiveWindow(a, b, c int) (int, int) {
	return (a/b)*c + ((a%b)*c)/b, 1 + ((a+1)*c-1)/b
}

func checkAdaptive(op string, p pool.AdaptivePool2DParams, xLen, yLen int) {
	if err := p.Validate(); err != nil {
		panic("qelem: " + op + ": " + err.Error())
	}
	need(op, "x", xLen, p.InputLen())
	need(op, "y", yLen, p.OutputLen())
}

// AdaptiveAvgPool2DReference is the specification of AdaptiveAvgPool2D
// (torch.nn.functional.adaptive_avg_pool2d on a quantized tensor): output
// (i, j) averages rows [floor(i*H/OutH), ceil((i+1)*H/OutH)) and the
// corresponding columns, with s the sum of (q - InZero) over the window,
// d its element count, and the output avgValue(s, d) (see
// AvgPool2DReference).
func AdaptiveAvgPool2DReference[T Byte](p pool.AdaptivePool2DParams, r *Requant, x, y []T) {
	checkAdaptive("AdaptiveAvgPool2DReference", p, len(x), len(y))
	for pl := 0; pl < p.N*p.C; pl++ {
		for i := 0; i < p.OutH; i++ {
			h0, h1 := adaptiveWindow(i, p.OutH, p.H)
			for j := 0; j < p.OutW; j++ {
				w0, w1 := adaptiveWindow(j, p.OutW, p.W)
				var s int64
				for h := h0; h < h1; h++ {
					for w := w0; w < w1; w++ {
						s += int64(x[(pl*p.H+h)*p.W+w]) - int64(r.InZero)
					}
				}
				y[(pl*p.OutH+i)*p.OutW+j] = T(avgValue(s, int64((h1-h0)*(w1-w0)), r))
			}
		}
	}
}

// AdaptiveAvgPool2D computes AdaptiveAvgPool2DReference with separable
// integer sums, split over output rows.
func AdaptiveAvgPool2D[T Byte](p pool.AdaptivePool2DParams, r *Requant, x, y []T) {
	checkAdaptive("AdaptiveAvgPool2D", p, len(x), len(y))
	checkRange[T]("AdaptiveAvgPool2D", r.Min, r.Max)
	if p.OutH == 1 && p.OutW == 1 {
		GlobalAvgPool2D(p.N*p.C, p.H*p.W, r, x, y)
		return
	}
	acc, xb, signed := pick(rowAccVariants).fn, bytesOf(x), isSigned[T]()
	parallel.For(p.N*p.C*p.OutH, rowGrain(p.W*(p.H/p.OutH+1)), func(s, e int) {
		prefix := make([]int64, p.W+1)
		col := make([]int32, p.W)
		for t := s; t < e; t++ {
			pl, i := t/p.OutH, t%p.OutH
			h0, h1 := adaptiveWindow(i, p.OutH, p.H)
			columnSums(acc, xb[pl*p.H*p.W:], signed, p.W, h0, h1, col, prefix)
			out := y[t*p.OutW : (t+1)*p.OutW]
			for j := range out {
				w0, w1 := adaptiveWindow(j, p.OutW, p.W)
				d := int64((h1 - h0) * (w1 - w0))
				s := prefix[w1] - prefix[w0] - d*int64(r.InZero)
				out[j] = T(avgValueFast(s, d, r))
			}
		}
	})
}

// GlobalAvgPool2DReference averages each of planes planes of hw elements
// into one output: y[p] = avgValue(sum of (q - InZero), hw) (see
// AvgPool2DReference); it is AdaptiveAvgPool2DReference to 1x1.
func GlobalAvgPool2DReference[T Byte](planes, hw int, r *Requant, x, y []T) {
	need("GlobalAvgPool2DReference", "x", len(x), planes*hw)
	need("GlobalAvgPool2DReference", "y", len(y), planes)
	for pl := 0; pl < planes; pl++ {
		var s int64
		for _, v := range x[pl*hw : (pl+1)*hw] {
			s += int64(v) - int64(r.InZero)
		}
		y[pl] = T(avgValue(s, int64(hw), r))
	}
}

// GlobalAvgPool2D computes GlobalAvgPool2DReference, split over planes.
func GlobalAvgPool2D[T Byte](planes, hw int, r *Requant, x, y []T) {
	need("GlobalAvgPool2D", "x", len(x), planes*hw)
	need("GlobalAvgPool2D", "y", len(y), planes)
	checkRange[T]("GlobalAvgPool2D", r.Min, r.Max)
	parallel.For(planes, rowGrain(hw), func(s, e int) {
		for pl := s; pl < e; pl++ {
			var sum int64
			for b := pl * hw; b < (pl+1)*hw; b += 1 << 20 {
				sum += sumBlock(x[b:min(b+1<<20, (pl+1)*hw)])
			}
			y[pl] = T(avgValueFast(sum-int64(hw)*int64(r.InZero), int64(hw), r))
		}
	})
}

// sumBlock sums up to 2^20 codes in four int32 lanes.
func sumBlock[T Byte](v []T) int64 {
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(v); i += 4 {
		s0 += int32(v[i])
		s1 += int32(v[i+1])
		s2 += int32(v[i+2])
		s3 += int32(v[i+3])
	}
	for ; i < len(v); i++ {
		s0 += int32(v[i])
	}
	return int64(s0) + int64(s1) + int64(s2) + int64(s3)
}
