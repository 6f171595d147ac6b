package conv

import (
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// The "wide" path serves stride-1 convolutions without im2col. A chunk of
// images of one group is copied once into a zero-padded buffer: for each
// channel, the chunk's padded planes [Hp, Wp] (Hp = H+2*PH, Wp = W+2*PW)
// one after another. The output is computed on a grid with the same layout:
// grid row R is row R%Hp of image R/Hp, Wp columns wide; columns OW..Wp-1
// of each row, and rows OH..Hp-1 of each image, are computed and dropped.
// On that grid, the rows of the im2col matrix for one kernel tap (kh, kw)
// are the padded channel buffers shifted by kh*DH*Wp + kw*DW: a matrix the
// GEMM reads in place, with the channel buffer length as its row stride. So
// the convolution is a sum of KH*KW GEMMs, one per tap (K = C/Groups each),
// accumulated into a grid tile in tap order.
//
// It is used when each GEMM has at least minWideChannels input channels to
// sum over and the dropped grid positions cost little: at most 1/8 extra
// for a single image (only the row ends are dropped), at most 35% for a
// chunk of several small images (which would otherwise need an im2col
// buffer nine times the input's size).

// wideCols is the target number of grid columns per tile, and wideTileElems
// caps the tile's size (output channels x columns) so it stays in L2.
var wideCols, wideTileElems = 960, 128 * 1024

// wideChunkElems bounds the padded input of one chunk of images (channels
// x images x Hp*Wp elements).
var wideChunkElems = 512 * 1024

// wideTile returns the grid columns per tile for ocg output channels.
func wideTile(ocg int) int { return max(64, min(wideCols, wideTileElems/ocg)) }

// minWideChannels is the fewest input channels per group for the wide
// path: each of its GEMMs has K = C/Groups (and the weight gradient's N).
const minWideChannels = 16

// wideChunk returns how many images one chunk of the wide path holds.
func (g *geom) wideChunk() int {
	plane := (g.H + 2*g.PH) * (g.W + 2*g.PW)
	return max(1, min(g.N, wideChunkElems/(g.cg()*plane)))
}

// wide reports whether the wide path applies and pays.
func (g *geom) wide() bool {
	if g.SH != 1 || g.SW != 1 || g.pointwise() || g.cg() < minWideChannels {
		return false
	}
	if g.wideChunk() > 1 {
		plane := (g.H + 2*g.PH) * (g.W + 2*g.PW)
		return plane*20 <= g.ohw()*27
	}
	return (g.W+2*g.PW)*8 <= g.OW*9
}

// wideLayout is the geometry of one chunk of m images on the wide grid.
type wideLayout struct {
	hp, wp, plane int
	nb            int // images per chunk (channel buffer holds nb planes)
	ld            int // channel buffer length, nb*plane
}

func newWideLayout(g *geom) wideLayout {
	hp, wp := g.H+2*g.PH, g.W+2*g.PW
	nb := g.wideChunk()
	return wideLayout{hp: hp, wp: wp, plane: hp * wp, nb: nb, ld: nb * hp * wp}
}

// rows returns the grid rows of a chunk of m images (the last image's rows
// below OH are not needed), and cols the grid columns read.
func (l *wideLayout) rows(g *geom, m int) int { return (m-1)*l.hp + g.OH }
func (l *wideLayout) cols(g *geom, m int) int { return (l.rows(g, m)-1)*l.wp + g.OW }

// padChunk copies images [n0, n0+m) of group grp of x into xp with zero
// borders, split over (image, channel) planes.
func padChunk(g *geom, l *wideLayout, x []float32, grp, n0, m int, xp []float32) {
	cg := g.cg()
	parallel.For(m*cg, max(1, 4096/l.plane), func(i0, i1 int) {
		for it := i0; it < i1; it++ {
			i, c := it/cg, it%cg
			src := x[((n0+i)*g.C+grp*cg+c)*g.hw():][:g.hw()]
			padPlane(g, l, src, xp[c*l.ld+i*l.plane:][:l.plane])
		}
	})
}

// padPlane copies one [H, W] plane into dst [Hp, Wp] with zero borders.
func padPlane(g *geom, l *wideLayout, src, dst []float32) {
	clear(dst[:g.PH*l.wp])
	clear(dst[(g.PH+g.H)*l.wp:])
	for ih := 0; ih < g.H; ih++ {
		row := dst[(ih+g.PH)*l.wp : (ih+g.PH+1)*l.wp]
		clear(row[:g.PW])
		copy(row[g.PW:], src[ih*g.W:(ih+1)*g.W])
		clear(row[g.PW+g.W:])
	}
}

// wideTaps writes wt[grp][tap][o][c] = w[grp*ocg+o][c][tap]: one ocg×cg
// matrix per group and kernel tap.
func wideTaps(g *geom, w, wt []float32) {
	cg, ocg, kk := g.cg(), g.ocg(), g.KH*g.KW
	for grp := 0; grp < g.G; grp++ {
		for o := 0; o < ocg; o++ {
			for c := 0; c < cg; c++ {
				for tap := 0; tap < kk; tap++ {
					wt[((grp*kk+tap)*ocg+o)*cg+c] = w[((grp*ocg+o)*cg+c)*kk+tap]
				}
			}
		}
	}
}

// wideTapsPacked returns the per-tap matrices of wideTaps packed for
// sgemm.SgemmInPlacePacked (index grp*KH*KW+tap), built on first use, or
// nil if they were built for another kernel size.
func (wp *Weights) wideTapsPacked(g *geom) []*sgemm.PackedA {
	wp.wideOnce.Do(func() {
		wp.wideKH, wp.wideKW = g.KH, g.KW
		wt := make([]float32, g.OutC*g.kdim())
		wideTaps(g, wp.w, wt)
		cg, ocg := g.cg(), g.ocg()
		for i := 0; i < g.G*g.KH*g.KW; i++ {
			wp.wide = append(wp.wide, sgemm.PackA(ocg, cg, wt[i*ocg*cg:], cg))
		}
	})
	if wp.wideKH != g.KH || wp.wideKW != g.KW {
		return nil
	}
	return wp.wide
}

func convForwardWide(g *geom, x, w []float32, wp *Weights, bias, y []float32) {
	cg, ocg, P := g.cg(), g.ocg(), g.ohw()
	kk := g.KH * g.KW
	l := newWideLayout(g)
	rpt := max(1, wideTile(ocg)/l.wp) // grid rows per tile
	maxTq := min(l.cols(g, l.nb), rpt*l.wp)

	var wt []float32
	var packed []*sgemm.PackedA
	if wp != nil {
		packed = wp.wideTapsPacked(g)
	}
	if packed == nil {
		wb := getBuf(g.OutC * g.kdim())
		defer putBuf(wb)
		wt = *wb
		wideTaps(g, w, wt)
	}

	xb := getBuf(cg * l.ld)
	defer putBuf(xb)
	xp := *xb
	th := parallel.NumThreads()
	for grp := 0; grp < g.G; grp++ {
		for n0 := 0; n0 < g.N; n0 += l.nb {
			m := min(l.nb, g.N-n0)
			rows, cols := l.rows(g, m), l.cols(g, m)
			rp := rpt
			tiles := (rows + rp - 1) / rp
			if tiles%th != 0 && rows >= th {
				// Make the tile count a multiple of the thread count (at
				// least one tile per thread).
				// Tiling only groups grid columns into GEMM calls; each
				// element's arithmetic is the same.
				want := (tiles + th - 1) / th * th
				rp = max(1, (rows+want-1)/want)
				tiles = (rows + rp - 1) / rp
			}
			padChunk(g, &l, x, grp, n0, m, xp)
			parallel.For(tiles, 1, func(t0, t1 int) {
				yb := getBuf(ocg * maxTq)
				defer putBuf(yb)
				yw := *yb
				for t := t0; t < t1; t++ {
					r0, r1 := t*rp, min(rows, (t+1)*rp)
					q0, q1 := r0*l.wp, min(cols, r1*l.wp)
					tq := q1 - q0
					for tap := 0; tap < kk; tap++ {
						kh, kw := tap/g.KW, tap%g.KW
						s := kh*g.DH*l.wp + kw*g.DW + q0
						if packed != nil {
							sgemm.SgemmInPlacePacked(packed[grp*kk+tap], tq, xp[s:], l.ld, nil, tap > 0, yw, tq)
						} else {
							sgemm.SgemmInPlace(ocg, tq, cg, wt[(grp*kk+tap)*ocg*cg:], cg, xp[s:], l.ld, nil, tap > 0, yw, tq)
						}
					}
					for o := 0; o < ocg; o++ {
						oc := grp*ocg + o
						for r := r0; r < r1; r++ {
							i, oh := r/l.hp, r%l.hp
							if oh >= g.OH {
								continue
							}
							src := yw[o*tq+(r-r0)*l.wp:][:g.OW]
							dst := y[((n0+i)*g.OutC+oc)*P+oh*g.OW:][:g.OW]
							if bias == nil {
								copy(dst, src)
								continue
							}
							b := bias[oc]
							for j, v := range src {
								dst[j] = v + b
							}
						}
					}
				}
			})
		}
	}
}
