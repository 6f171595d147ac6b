package conv

import (
	"fmt"
	"sync"

	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// colBudget is the number of float32 elements (1.5 MB) of one im2col
// buffer: the column matrix is built a slab of output positions (or a chunk
// of images) at a time, so the GEMM reads it back from cache; the size was
// tuned on 3x3 convolutions with 64-256 channels.
const colBudget = 384 * 1024

// adjointBand is the column-gradient buffer size (elements) of
// convAdjointImages; a variable so tests can force many bands.
var adjointBand = colBudget

// Conv2D computes y = conv2d(x, w) + bias (see Conv2DReference for the
// exact definition). x is [N, C, H, W], w is [OutC, C/Groups, KH, KW], bias
// is [OutC] or nil, and y is [N, OutC, OutH, OutW], overwritten.
//
// The path (direct depthwise, wide, batched or per-image im2col; see the
// package documentation) depends only on p. Conv1D is Conv2D of
// Conv1DParams.Conv2D().
func Conv2D(p Conv2DParams, x, w, bias, y []float32) { conv2D(p, x, w, nil, bias, y) }

// Weights is a convolution weight [OutC, C/Groups, KH, KW] packed once for
// the forward GEMMs (each group's [OutC/Groups, C/Groups*KH*KW] matrix as
// sgemm.PackA lays it out), for a weight used many times unchanged, such
// as a compiled model's. It is read-only after PackWeights.
type Weights struct {
	w            []float32
	outC, groups int
	k            int // C/Groups*KH*KW
	packed       []*sgemm.PackedA
	// wide holds the per-tap matrices of the wide path, packed on first
	// use (the kernel's height and width are not known before).
	wideOnce       sync.Once
	wide           []*sgemm.PackedA
	wideKH, wideKW int
	// narrow holds each group's weight transposed for narrowProduct,
	// packed on first use.
	narrowOnce sync.Once
	narrow     []*sgemm.PackedB
}

// PackWeights packs the weight w of a convolution with outC output
// channels in groups groups (w holds outC*k values, k = C/Groups*KH*KW).
// w is copied. It panics unless outC and groups are positive, groups
// divides outC and len(w) is a multiple of outC.
func PackWeights(w []float32, outC, groups int) *Weights {
	if outC < 1 || groups < 1 || outC%groups != 0 || len(w)%outC != 0 {
		panic(fmt.Sprintf("conv: PackWeights of %d values for %d output channels in %d groups", len(w), outC, groups))
	}
	k := len(w) / outC
	ocg := outC / groups
	wp := &Weights{w: append([]float32(nil), w...), outC: outC, groups: groups, k: k}
	for grp := 0; grp < groups; grp++ {
		wp.packed = append(wp.packed, sgemm.PackA(ocg, k, wp.w[grp*ocg*k:], k))
	}
	return wp
}

// Conv2DPacked is Conv2D with the weight packed by PackWeights: the same
// result, bit for bit. It panics if wp does not fit p.
func Conv2DPacked(p Conv2DParams, x []float32, wp *Weights, bias, y []float32) {
	q := p.Norm()
	if wp.outC != q.OutC || wp.groups != q.Groups || wp.k != q.C/q.Groups*q.KH*q.KW {
		panic(fmt.Sprintf("conv: packed weights for %d output channels, %d groups, %d per row do not fit %+v", wp.outC, wp.groups, wp.k, p))
	}
	conv2D(p, x, wp.w, wp, bias, y)
}

// narrowCols is the widest tile of output positions computed transposed
// (narrowProduct): the GEMM's rows are then positions, so a handful of
// them (a 1x1 squeeze-excite convolution has one) fill a register tile,
// and the output channels fill the vector lanes.
const narrowCols = 8

// narrowPacked returns each group's weight transposed and packed as the
// right-hand operand of sgemm.SgemmPackedB ([K, OutC/Groups]), built on
// first use.
func (wp *Weights) narrowPacked() []*sgemm.PackedB {
	wp.narrowOnce.Do(func() {
		ocg := wp.outC / wp.groups
		for grp := 0; grp < wp.groups; grp++ {
			wp.narrow = append(wp.narrow, sgemm.PackB(true, wp.k, ocg, wp.w[grp*ocg*wp.k:], wp.k))
		}
	})
	return wp.narrow
}

// narrowProduct computes y[o*ldy+p] = sum over k of W[o][k]*b[k*ldb+p] +
// bias[o] for p < n as the transposed product t = b^T W^T (n×ocg, started
// from the bias) and a transposing copy. Per element it performs the
// direct path's arithmetic (a chain of multiply-adds per k block, the
// first block's sum added to the bias, later ones to the running value),
// so the result is the same bits.
func narrowProduct(pb *sgemm.PackedB, n int, b []float32, ldb int, bias, y []float32, ldy int) {
	ocg := pb.N()
	tb := getBuf(n * ocg)
	defer putBuf(tb)
	t := *tb
	var beta float32
	if bias != nil {
		for p := 0; p < n; p++ {
			copy(t[p*ocg:(p+1)*ocg], bias[:ocg])
		}
		beta = 1
	}
	sgemm.SgemmPackedB(true, n, 1, b, ldb, pb, beta, t, ocg)
	for o := 0; o < ocg; o++ {
		row := y[o*ldy : o*ldy+n]
		for p := range row {
			row[p] = t[p*ocg+o]
		}
	}
}

// conv2D is Conv2D with, optionally, the weight packed (wp, else nil).
func conv2D(p Conv2DParams, x, w []float32, wp *Weights, bias, y []float32) {
	g := p.geom()
	g.check("x", x, p.InputLen())
	g.check("w", w, p.WeightLen())
	g.check("y", y, p.OutputLen())
	if bias != nil {
		g.check("bias", bias, g.OutC)
	}
	if g.N == 0 {
		return
	}
	if g.direct() {
		depthwiseForward(&g, x, w, bias, y)
		return
	}
	convForward(&g, x, w, wp, bias, y)
}

// Conv1D computes a 1-D convolution: Conv2D with p.Conv2D().
func Conv1D(p Conv1DParams, x, w, bias, y []float32) { Conv2D(p.Conv2D(), x, w, bias, y) }

func (g *geom) pointwise() bool {
	return g.KH == 1 && g.KW == 1 && g.SH == 1 && g.SW == 1 && g.PH == 0 && g.PW == 0
}

// tileCols is the number of output positions per im2col tile.
func (g *geom) tileCols() int {
	P := g.ohw()
	t := colBudget / g.kdim()
	if t >= P {
		return P
	}
	t = max(16, t&^15)
	return min(t, P)
}

// convForward runs the forward pass of a convolution that the direct
// depthwise kernels do not serve (also the input gradient of a transposed
// convolution): stride-1 convolutions on the wide path, other batches of
// small images as one GEMM per chunk of images, the rest by im2col tiles.
func convForward(g *geom, x, w []float32, wp *Weights, bias, y []float32) {
	if g.wide() {
		convForwardWide(g, x, w, wp, bias, y)
		return
	}
	if nb := g.batchImages(g.kdim()); nb > 0 {
		convForwardBatched(g, x, w, wp, bias, y, nb)
		return
	}
	convForwardTiles(g, x, w, wp, bias, y)
}

// convForwardTiles is the im2col forward pass, per image and group, a tile
// of output positions at a time; tiles run in parallel.
func convForwardTiles(g *geom, x, w []float32, wp *Weights, bias, y []float32) {
	cg, ocg, K, P := g.cg(), g.ocg(), g.kdim(), g.ohw()
	pw := g.pointwise()
	tc := P
	if !pw {
		tc = g.tileCols()
	}
	tiles := (P + tc - 1) / tc
	items := g.N * g.G * tiles
	parallel.For(items, 1, func(i0, i1 int) {
		var buf *[]float32
		if !pw {
			buf = getBuf(K * tc)
			defer putBuf(buf)
		}
		for it := i0; it < i1; it++ {
			t := it % tiles
			ng := it / tiles
			n, grp := ng/g.G, ng%g.G
			p0 := t * tc
			p1 := min(P, p0+tc)
			xg := x[(n*g.C+grp*cg)*g.hw():]
			yg := y[(n*g.OutC+grp*ocg)*P:]
			wg := w[grp*ocg*K:]
			var bg []float32
			if bias != nil {
				bg = bias[grp*ocg:]
			}
			// The GEMMs read their B (the input itself for a 1x1
			// convolution, else the im2col tile) in place and add the
			// bias in their epilogue.
			bsrc, ldb := xg[p0:], P
			if !pw {
				col := *buf
				im2col(g, xg, 0, K, p0, p1, col, p1-p0)
				bsrc, ldb = col, p1-p0
			}
			if wp != nil && p1-p0 <= narrowCols && ocg >= 2*narrowCols {
				narrowProduct(wp.narrowPacked()[grp], p1-p0, bsrc, ldb, bg, yg[p0:], P)
			} else if wp != nil {
				sgemm.SgemmInPlacePacked(wp.packed[grp], p1-p0, bsrc, ldb, bg, false, yg[p0:], P)
			} else {
				sgemm.SgemmInPlace(ocg, p1-p0, K, wg, K, bsrc, ldb, bg, false, yg[p0:], P)
			}
		}
	})
}

// Conv2DBackwardInput computes the input gradient gx[N, C, H, W] of Conv2D
// from the output gradient gy[N, OutC, OutH, OutW] and the weight w. gx is
// overwritten.
func Conv2DBackwardInput(p Conv2DParams, w, gy, gx []float32) {
	g := p.geom()
	g.check("w", w, p.WeightLen())
	g.check("gy", gy, p.OutputLen())
	g.check("gx", gx, p.InputLen())
	if g.N == 0 {
		return
	}
	if g.direct() {
		depthwiseBackwardInput(&g, w, gy, gx)
		return
	}
	convAdjoint(&g, w, gy, gx)
}

// convAdjoint computes gx = conv^T(gy) (the input gradient of a convolution
// and the forward pass of a transposed one): as a flipped stride-1
// convolution on the wide path when possible, else batched over images when
// they are small, else per image.
func convAdjoint(g *geom, w, gy, gx []float32) {
	if f, ok := g.flipGeom(); ok {
		adjointWide(g, &f, w, gy, gx)
		return
	}
	if nb := g.batchImages(g.ocg()); nb > 0 {
		convAdjointBatched(g, w, gy, gx, nb)
		return
	}
	convAdjointImages(g, w, gy, gx)
}

// convAdjointImages computes gx per image and group: the column gradient
// W^T*gy by GEMM, then col2im, a band of output rows at a time (the bands
// are fixed by the shapes, so each gx element's sum has a fixed order).
func convAdjointImages(g *geom, w, gy, gx []float32) {
	cg, ocg, K, P := g.cg(), g.ocg(), g.kdim(), g.ohw()
	pw := g.pointwise()
	items := g.N * g.G
	outer := items >= parallel.NumThreads()
	run := func(it int, inner bool) {
		n, grp := it/g.G, it%g.G
		gyg := gy[(n*g.OutC+grp*ocg)*P:]
		gxg := gx[(n*g.C+grp*cg)*g.hw() : (n*g.C+(grp+1)*cg)*g.hw()]
		wg := w[grp*ocg*K:]
		if pw {
			sgemm.Sgemm(true, false, cg, P, ocg, 1, wg, cg, gyg, P, 0, gxg, P)
			return
		}
		// The column gradient is built a band of output rows at a time.
		rows := max(1, min(g.OH, adjointBand/(K*g.OW)))
		buf := getBuf(K * rows * g.OW)
		defer putBuf(buf)
		col := *buf
		clear(gxg)
		for oh0 := 0; oh0 < g.OH; oh0 += rows {
			oh1 := min(g.OH, oh0+rows)
			pt := (oh1 - oh0) * g.OW
			sgemm.Sgemm(true, false, K, pt, ocg, 1, wg, K, gyg[oh0*g.OW:], P, 0, col, pt)
			if inner {
				parallel.For(cg, 1, func(c0, c1 int) { col2im(g, col, pt, c0, c1, gxg, oh0, oh1) })
			} else {
				col2im(g, col, pt, 0, cg, gxg, oh0, oh1)
			}
		}
	}
	if outer {
		parallel.For(items, 1, func(i0, i1 int) {
			for it := i0; it < i1; it++ {
				run(it, false)
			}
		})
		return
	}
	for it := 0; it < items; it++ {
		run(it, true)
	}
}

// Conv2DBackwardWeight computes the weight gradient gw[OutC, C/Groups, KH, KW]
// of Conv2D from the input x and the output gradient gy, summed over the
// batch. gw is overwritten.
func Conv2DBackwardWeight(p Conv2DParams, x, gy, gw []float32) {
	g := p.geom()
	g.check("x", x, p.InputLen())
	g.check("gy", gy, p.OutputLen())
	g.check("gw", gw, p.WeightLen())
	if g.N == 0 {
		clear(gw[:p.WeightLen()])
		return
	}
	if g.direct() {
		depthwiseBackwardWeight(&g, x, gy, gw)
		return
	}
	convWeightGrad(&g, x, gy, gw)
}

// convWeightGrad computes the weight gradient: per tap on the wide layout
// for stride 1, else batched over images when they are small, else per
// image.
func convWeightGrad(g *geom, x, gy, gw []float32) {
	if g.wideWeightGrad() {
		weightGradWide(g, x, gy, gw)
		return
	}
	// The weight gradient's GEMMs reduce over positions; its small output
	// cannot be split among threads well image by image, so batching pays
	// whatever the reduction length of the forward product.
	if nb := g.batchImages(minBatchRed); nb > 0 {
		convWeightGradBatched(g, x, gy, gw, nb)
		return
	}
	convWeightGradImages(g, x, gy, gw)
}

// convWeightGradImages accumulates gw_g = sum over images and position
// tiles of gy_tile * col_tile^T, in a fixed order. Groups run in parallel;
// within a group, im2col is split over its rows.
func convWeightGradImages(g *geom, x, gy, gw []float32) {
	cg, ocg, K, P := g.cg(), g.ocg(), g.kdim(), g.ohw()
	pw := g.pointwise()
	tc := P
	if !pw {
		tc = g.tileCols()
	}
	outer := g.G >= parallel.NumThreads()
	run := func(grp int, inner bool) {
		wg := gw[grp*ocg*K : (grp+1)*ocg*K]
		var buf *[]float32
		if !pw {
			buf = getBuf(K * tc)
			defer putBuf(buf)
		}
		var beta float32
		for n := 0; n < g.N; n++ {
			xg := x[(n*g.C+grp*cg)*g.hw():]
			gyg := gy[(n*g.OutC+grp*ocg)*P:]
			if pw {
				sgemm.Sgemm(false, true, ocg, cg, P, 1, gyg, P, xg, P, beta, wg, cg)
				beta = 1
				continue
			}
			col := *buf
			for p0 := 0; p0 < P; p0 += tc {
				p1 := min(P, p0+tc)
				ld := p1 - p0
				if inner {
					parallel.For(K, 8, func(k0, k1 int) { im2col(g, xg, k0, k1, p0, p1, col[k0*ld:], ld) })
				} else {
					im2col(g, xg, 0, K, p0, p1, col, ld)
				}
				sgemm.Sgemm(false, true, ocg, K, ld, 1, gyg[p0:], P, col, ld, beta, wg, K)
				beta = 1
			}
		}
	}
	if outer {
		parallel.For(g.G, 1, func(g0, g1 int) {
			for grp := g0; grp < g1; grp++ {
				run(grp, false)
			}
		})
		return
	}
	for grp := 0; grp < g.G; grp++ {
		run(grp, true)
	}
}

// Conv2DBackwardBias computes gb[o] = sum of gy[:, o, :, :], the bias
// gradient of Conv2D, summing in batch-then-position order. gb is
// overwritten.
func Conv2DBackwardBias(p Conv2DParams, gy, gb []float32) {
	g := p.geom()
	g.check("gy", gy, p.OutputLen())
	g.check("gb", gb, g.OutC)
	sumPlanes(g.N, g.OutC, g.ohw(), gy, gb)
}

// sumPlanes writes s[c] = sum over b and i of v[(b*c+ch)*plane+i] in that
// order, split over channels.
func sumPlanes(n, c, plane int, v, s []float32) {
	parallel.For(c, max(1, 4096/max(1, n*plane)), func(c0, c1 int) {
		for ch := c0; ch < c1; ch++ {
			var acc float32
			for b := 0; b < n; b++ {
				for _, e := range v[(b*c+ch)*plane : (b*c+ch+1)*plane] {
					acc += e
				}
			}
			s[ch] = acc
		}
	})
}
