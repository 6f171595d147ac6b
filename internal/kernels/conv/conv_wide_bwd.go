package conv

import (
	"github.com/quanta-go/quanta/internal/kernels/sgemm"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Stride-1 backward passes reuse the wide layout of conv_wide.go.
//
// The input gradient of a stride-1 convolution is itself a stride-1
// convolution: of gy, zero-padded by DH*(KH-1)-PH rows and DW*(KW-1)-PW
// columns, with the kernel flipped in both axes and its input and output
// channels exchanged. When those paddings are non-negative it runs on the
// wide forward path.
//
// The weight gradient of tap (kh, kw) is gy*Xtap^T, where Xtap is the
// padded input shifted by the tap on the wide grid (rows of stride Hp*Wp,
// read in place) and gy is spread to the grid's row width with zeros in the
// extra columns: one GEMM per tap and image, summed over images in order.

// flipGeom returns the stride-1 convolution that computes g's input
// gradient, and whether it exists and suits the wide path.
func (g *geom) flipGeom() (geom, bool) {
	if g.SH != 1 || g.SW != 1 || g.pointwise() {
		return geom{}, false
	}
	ph, pw := g.DH*(g.KH-1)-g.PH, g.DW*(g.KW-1)-g.PW
	if ph < 0 || pw < 0 {
		return geom{}, false
	}
	f := geom{N: g.N, C: g.OutC, H: g.OH, W: g.OW, OutC: g.C, KH: g.KH, KW: g.KW,
		SH: 1, SW: 1, PH: ph, PW: pw, DH: g.DH, DW: g.DW, G: g.G, OH: g.H, OW: g.W}
	return f, f.wide()
}

// flipWeights writes wf[grp*cg+c][o][KH-1-kh][KW-1-kw] = w[grp*ocg+o][c][kh][kw].
func flipWeights(g *geom, w, wf []float32) {
	cg, ocg, kk := g.cg(), g.ocg(), g.KH*g.KW
	for grp := 0; grp < g.G; grp++ {
		for o := 0; o < ocg; o++ {
			for c := 0; c < cg; c++ {
				src := w[((grp*ocg+o)*cg+c)*kk:][:kk]
				dst := wf[((grp*cg+c)*ocg+o)*kk:][:kk]
				for t, v := range src {
					dst[kk-1-t] = v
				}
			}
		}
	}
}

// adjointWide computes gx = conv^T(gy) as the flipped stride-1 convolution
// f on the wide path.
func adjointWide(g, f *geom, w, gy, gx []float32) {
	wb := getBuf(len(w[:g.OutC*g.kdim()]))
	defer putBuf(wb)
	flipWeights(g, w, *wb)
	convForwardWide(f, gy, *wb, nil, gx)
}

// wideWeightGrad reports whether the wide weight-gradient path applies.
func (g *geom) wideWeightGrad() bool { return g.wide() }

// weightGradWide accumulates gw with one GEMM per tap and chunk of images,
// gy spread onto the wide grid with zeros at the dropped positions. Each
// worker owns a contiguous range of taps and walks all chunks, laying out
// its own padded input and spread gy, so there is one fork and join per
// group; each tap's sum runs over chunks in order.
func weightGradWide(g *geom, x, gy, gw []float32) {
	cg, ocg, P := g.cg(), g.ocg(), g.ohw()
	kk := g.KH * g.KW
	l := newWideLayout(g)
	tb := getBuf(kk * ocg * cg)
	defer putBuf(tb)
	gwt := *tb // gwt[tap][o][c]
	th := parallel.NumThreads()
	for grp := 0; grp < g.G; grp++ {
		parallel.For(kk, (kk+th-1)/th, func(t0, t1 int) {
			xb, yb := getBuf(cg*l.ld), getBuf(ocg*l.cols(g, l.nb))
			defer putBuf(xb)
			defer putBuf(yb)
			xp, gyw := *xb, *yb
			for n0 := 0; n0 < g.N; n0 += l.nb {
				m := min(l.nb, g.N-n0)
				rows, cols := l.rows(g, m), l.cols(g, m)
				for i := 0; i < m; i++ {
					for c := 0; c < cg; c++ {
						src := x[((n0+i)*g.C+grp*cg+c)*g.hw():][:g.hw()]
						padPlane(g, &l, src, xp[c*l.ld+i*l.plane:][:l.plane])
					}
				}
				for o := 0; o < ocg; o++ {
					row := gyw[o*cols : (o+1)*cols]
					clear(row)
					for r := 0; r < rows; r++ {
						i, oh := r/l.hp, r%l.hp
						if oh < g.OH {
							copy(row[r*l.wp:], gy[((n0+i)*g.OutC+grp*ocg+o)*P+oh*g.OW:][:g.OW])
						}
					}
				}
				var beta float32
				if n0 > 0 {
					beta = 1
				}
				for tap := t0; tap < t1; tap++ {
					kh, kw := tap/g.KW, tap%g.KW
					s := kh*g.DH*l.wp + kw*g.DW
					sgemm.Sgemm(false, true, ocg, cg, cols, 1, gyw, cols, xp[s:], l.ld, beta, gwt[tap*ocg*cg:], cg)
				}
			}
		})
		// gw[grp*ocg+o][c][tap] = gwt[tap][o][c]
		parallel.For(ocg, 4, func(o0, o1 int) {
			for o := o0; o < o1; o++ {
				for c := 0; c < cg; c++ {
					dst := gw[((grp*ocg+o)*cg+c)*kk:][:kk]
					for tap := range dst {
						dst[tap] = gwt[(tap*ocg+o)*cg+c]
					}
				}
			}
		})
	}
}
