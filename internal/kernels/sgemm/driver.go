package sgemm

import "github.com/quanta-go/quanta/internal/parallel"

// bSource yields packed B: the kc×nc block of op(B) at row p0, column j0
// (j0 a multiple of nr) as micro-panels, panel q starting at q*kc*nr.
type bSource func(ws *workspace, p0, kc, j0, nc int) []float32

// unpackedB returns a bSource that packs op(B) on the fly.
func unpackedB(v *variant, transB bool, b []float32, ldb int) bSource {
	return func(ws *workspace, p0, kc, j0, nc int) []float32 {
		ws.b = grow(ws.b, (nc+v.nr-1)/v.nr*v.nr*kc)
		v.packB(ws.b, v.nr, transB, b, ldb, p0, kc, j0, nc)
		return ws.b
	}
}

// minParallelFlops is the smallest product (2*m*n*k) split across threads.
const minParallelFlops = 1 << 20

// sgemmVariant runs Sgemm with variant v.
func sgemmVariant(v *variant, transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleC(m, n, alpha, beta, c, ldc)
		return
	}
	if m == 1 && v.row != nil && (!transA || lda == 1 || k == 1) {
		v.row(v, transB, n, k, alpha, a, b, ldb, beta, c)
		return
	}
	gemmParallel(v, transA, m, n, k, alpha, a, lda, unpackedB(v, transB, b, ldb), beta, c, ldc)
}

// gemmParallel splits C into one block of rows or columns per thread (whole
// tiles, so the arithmetic of every element is unchanged) and runs
// gemmSerial on each.
func gemmParallel(v *variant, transA bool, m, n, k int, alpha float32, a []float32, lda int, bs bSource, beta float32, c []float32, ldc int) {
	t := parallel.NumThreads()
	if 2*m*n*k < minParallelFlops {
		t = 1
	}
	rowTiles := (m + v.mr - 1) / v.mr
	colTiles := (n + v.nr - 1) / v.nr
	// Split the dimension whose repacking is cheaper to duplicate: splitting
	// columns repacks A in every thread, splitting rows repacks B.
	splitCols := colTiles >= t && (n >= m || rowTiles < t)
	if t <= 1 || (!splitCols && rowTiles < 2) || (splitCols && colTiles < 2) {
		ws := workspaces.Get().(*workspace)
		gemmSerial(v, ws, transA, 0, m, 0, n, k, alpha, a, lda, bs, beta, c, ldc)
		workspaces.Put(ws)
		return
	}
	tiles := rowTiles
	if splitCols {
		tiles = colTiles
	}
	per := (tiles + t - 1) / t
	parallel.For(tiles, per, func(s, e int) {
		ws := workspaces.Get().(*workspace)
		if splitCols {
			gemmSerial(v, ws, transA, 0, m, s*v.nr, min(e*v.nr, n), k, alpha, a, lda, bs, beta, c, ldc)
		} else {
			gemmSerial(v, ws, transA, s*v.mr, min(e*v.mr, m), 0, n, k, alpha, a, lda, bs, beta, c, ldc)
		}
		workspaces.Put(ws)
	})
}

// gemmSerial computes rows [m0,m1) and columns [n0,n1) of C on the calling
// goroutine; n0 is a multiple of v.nr. Loops, outermost first: nc columns
// (op(B) block packed, kept in L2/L3), kc of the reduction, mc rows (op(A)
// block packed, kept in L2), nr-column micro-panels of B (kept in L1), and
// mr-row micro-panels of A streamed past them.
func gemmSerial(v *variant, ws *workspace, transA bool, m0, m1, n0, n1, k int, alpha float32, a []float32, lda int, bs bSource, beta float32, c []float32, ldc int) {
	mr, nr := v.mr, v.nr
	for jc := n0; jc < n1; jc += v.nc {
		nc := min(v.nc, n1-jc)
		for pc := 0; pc < k; pc += v.kc {
			kc := min(v.kc, k-pc)
			bp := bs(ws, pc, kc, jc, nc)
			be := beta
			if pc > 0 {
				be = 1
			}
			for ic := m0; ic < m1; ic += v.mc {
				mc := min(v.mc, m1-ic)
				ws.a = grow(ws.a, (mc+mr-1)/mr*mr*kc)
				v.packA(ws.a, mr, transA, a, lda, ic, mc, pc, kc)
				for jr := 0; jr < nc; jr += nr {
					nn := min(nr, nc-jr)
					bpanel := bp[(jr/nr)*kc*nr:]
					for ir := 0; ir < mc; ir += mr {
						v.kernel(kc, ws.a[(ir/mr)*kc*mr:], bpanel, c[(ic+ir)*ldc+jc+jr:], ldc, alpha, be, min(mr, mc-ir), nn)
					}
				}
			}
		}
	}
}
