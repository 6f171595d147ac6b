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
// The weight gradient is gy*X^T on the wide grid: gy spread onto the grid
// with zeros at the dropped positions, and X the im2col matrix of the grid,
// whose rows are contiguous runs of the padded input, so a tile of it is
// built with long copies.

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
	convForwardWide(f, gy, *wb, nil, nil, gx)
}

// wideWeightGrad reports whether the wide weight-gradient path applies.
func (g *geom) wideWeightGrad() bool { return g.wide() }

// wideGradCols is the number of grid columns per tile of weightGradWide.
var wideGradCols = 1024

// weightGradWide is the weight gradient on the wide layout as one GEMM
// per tile of grid columns: the tile's im2col rows (c, kh, kw) are copied
// out of the padded input as long contiguous runs, gy is spread onto the
// grid, and gw[o][c,kh,kw] += gy_tile * col_tile^T accumulates over tiles
// and chunks of images in order, directly in gw's layout.
func weightGradWide(g *geom, x, gy, gw []float32) {
	cg, ocg, K, P := g.cg(), g.ocg(), g.kdim(), g.ohw()
	l := newWideLayout(g)
	tq := wideGradCols
	xb := getBuf(cg * l.ld)
	cb, yb := getBuf(K*tq), getBuf(ocg*tq)
	defer putBuf(xb)
	defer putBuf(cb)
	defer putBuf(yb)
	xp, col, gyw := *xb, *cb, *yb
	for grp := 0; grp < g.G; grp++ {
		wg := gw[grp*ocg*K : (grp+1)*ocg*K]
		var beta float32
		for n0 := 0; n0 < g.N; n0 += l.nb {
			m := min(l.nb, g.N-n0)
			cols := l.cols(g, m)
			padChunk(g, &l, x, grp, n0, m, xp)
			for q0 := 0; q0 < cols; q0 += tq {
				q1 := min(cols, q0+tq)
				n := q1 - q0
				parallel.For(K+ocg, 8, func(k0, k1 int) {
					for k := k0; k < k1; k++ {
						if k < K {
							kw := k % g.KW
							kh := (k / g.KW) % g.KH
							c := k / (g.KW * g.KH)
							s := c*l.ld + kh*g.DH*l.wp + kw*g.DW + q0
							copy(col[k*n:(k+1)*n], xp[s:s+n])
							continue
						}
						// Spread gy row o over grid columns [q0, q1).
						o := k - K
						row := gyw[o*n : (o+1)*n]
						clear(row)
						for r := q0 / l.wp; r*l.wp < q1; r++ {
							i, oh := r/l.hp, r%l.hp
							if oh >= g.OH {
								continue
							}
							a, b := max(q0, r*l.wp), min(q1, r*l.wp+g.OW)
							if a >= b {
								continue
							}
							src := gy[((n0+i)*g.OutC+grp*ocg+o)*P+oh*g.OW:]
							copy(row[a-q0:b-q0], src[a-r*l.wp:b-r*l.wp])
						}
					}
				})
				sgemm.Sgemm(false, true, ocg, K, n, 1, gyw, n, col, n, beta, wg, K)
				beta = 1
			}
		}
	}
}
