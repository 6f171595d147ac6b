package conv

import (
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// The "wide" forward path serves stride-1 convolutions without im2col. The
// input group is copied once into a zero-padded buffer of rows Wp = W+2*PW
// wide, and the output is computed on a grid of the same row width (columns
// OW..Wp-1 of each grid row are computed and dropped). On that grid, the
// rows of the im2col matrix for one kernel tap (kh, kw) are the padded input
// planes shifted by kh*DH*Wp + kw*DW: a matrix with row stride Hp*Wp that
// the GEMM reads in place. So the convolution is a sum of KH*KW GEMMs, one
// per tap (K = C/Groups each), accumulated into a grid tile in tap order.
// It is used when the extra columns cost at most 1/8 of the work and each
// GEMM has at least minWideChannels input channels to sum over.

// wideCols is the target number of grid columns per tile, and wideTileElems
// caps the tile's size (output channels x columns) so it stays in L2.
var wideCols, wideTileElems = 960, 128 * 1024

// wideTile returns the grid columns per tile for ocg output channels.
func wideTile(ocg int) int { return max(64, min(wideCols, wideTileElems/ocg)) }

// minWideChannels is the fewest input channels per group for the wide
// path: each of its GEMMs has K = C/Groups (and the weight gradient's N).
const minWideChannels = 16

// wide reports whether the wide forward path applies and pays.
func (g *geom) wide() bool {
	if g.SH != 1 || g.SW != 1 || g.pointwise() || g.cg() < minWideChannels {
		return false
	}
	return (g.W+2*g.PW)*8 <= g.OW*9
}

// padGroup copies channels [c0, c1) of the image group x[Cg, H, W] into xp,
// planes of [H+2*PH, W+2*PW] with zero borders.
func padGroup(g *geom, x []float32, c0, c1 int, xp []float32) {
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	for c := c0; c < c1; c++ {
		dst := xp[c*hp*wp : (c+1)*hp*wp]
		clear(dst[:g.PH*wp])
		clear(dst[(g.PH+g.H)*wp:])
		for ih := 0; ih < g.H; ih++ {
			row := dst[(ih+g.PH)*wp : (ih+g.PH+1)*wp]
			clear(row[:g.PW])
			copy(row[g.PW:], x[(c*g.H+ih)*g.W:(c*g.H+ih+1)*g.W])
			clear(row[g.PW+g.W:])
		}
	}
}

func convForwardWide(g *geom, x, w, bias, y []float32) {
	cg, ocg, K, P := g.cg(), g.ocg(), g.kdim(), g.ohw()
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	plane := hp * wp
	nq := (g.OH-1)*wp + g.OW // grid columns that are read
	rpt := max(1, wideTile(ocg)/wp)
	tiles := (g.OH + rpt - 1) / rpt
	items := g.N * g.G
	th := parallel.NumThreads()
	if items < 2*th && tiles > 1 && tiles%th != 0 {
		// Tiles will be shared among threads: make their number a
		// multiple of the thread count. Tiling only groups output columns
		// into GEMM calls; each element's arithmetic is the same.
		want := (tiles + th - 1) / th * th
		rpt = max(1, (g.OH+want-1)/want)
		tiles = (g.OH + rpt - 1) / rpt
	}
	maxTq := min(nq, rpt*wp)
	// wt[grp][tap][o][c] = w[grp*ocg+o][c][tap]: one ocg×cg matrix per tap.
	kk := g.KH * g.KW
	wb := getBuf(g.OutC * K)
	defer putBuf(wb)
	wt := *wb
	for grp := 0; grp < g.G; grp++ {
		for o := 0; o < ocg; o++ {
			for c := 0; c < cg; c++ {
				for tap := 0; tap < kk; tap++ {
					wt[((grp*kk+tap)*ocg+o)*cg+c] = w[((grp*ocg+o)*cg+c)*kk+tap]
				}
			}
		}
	}

	// tile computes output rows [t*rpt, ...) of one image group from its
	// padded copy xp into y, through the scratch grid tile yw [ocg*maxTq].
	tile := func(n, grp, t int, xp, yw []float32) {
		oh0 := t * rpt
		oh1 := min(g.OH, oh0+rpt)
		q0 := oh0 * wp
		q1 := min(nq, oh1*wp)
		tq := q1 - q0
		var beta float32
		for tap := 0; tap < g.KH*g.KW; tap++ {
			kh, kw := tap/g.KW, tap%g.KW
			s := kh*g.DH*wp + kw*g.DW + q0
			sgemm.Sgemm(false, false, ocg, tq, cg, 1, wt[(grp*g.KH*g.KW+tap)*ocg*cg:], cg, xp[s:], plane, beta, yw, tq)
			beta = 1
		}
		for o := 0; o < ocg; o++ {
			oc := grp*ocg + o
			yo := y[(n*g.OutC+oc)*P:]
			for oh := oh0; oh < oh1; oh++ {
				src := yw[o*tq+(oh-oh0)*wp:][:g.OW]
				dst := yo[oh*g.OW : (oh+1)*g.OW]
				if bias == nil {
					copy(dst, src)
					continue
				}
				b := bias[oc]
				for i, v := range src {
					dst[i] = v + b
				}
			}
		}
	}

	if items >= 2*th || tiles == 1 {
		// Whole image groups per worker.
		parallel.For(items, 1, func(i0, i1 int) {
			xb, yb := getBuf(cg*plane), getBuf(ocg*maxTq)
			defer putBuf(xb)
			defer putBuf(yb)
			for it := i0; it < i1; it++ {
				n, grp := it/g.G, it%g.G
				padGroup(g, x[(n*g.C+grp*cg)*g.hw():], 0, cg, *xb)
				for t := 0; t < tiles; t++ {
					tile(n, grp, t, *xb, *yb)
				}
			}
		})
		return
	}
	// Few image groups: pad each in parallel over channels, then split its
	// tiles over workers.
	xb := getBuf(cg * plane)
	defer putBuf(xb)
	for it := 0; it < items; it++ {
		n, grp := it/g.G, it%g.G
		xg := x[(n*g.C+grp*cg)*g.hw():]
		parallel.For(cg, 4, func(c0, c1 int) { padGroup(g, xg, c0, c1, *xb) })
		parallel.For(tiles, 1, func(t0, t1 int) {
			yb := getBuf(ocg * maxTq)
			defer putBuf(yb)
			for t := t0; t < t1; t++ {
				tile(n, grp, t, *xb, *yb)
			}
		})
	}
}
