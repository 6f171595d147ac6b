package sgemm

import "sync"

// packA copies the mc×kc block of op(A) starting at row i0, column p0 into
// dst as micro-panels of mr rows: dst[(r/mr)*kc*mr + p*mr + r%mr] =
// op(A)[i0+r][p0+p], zero-padded to a whole number of panels.
func packA(dst []float32, mr int, transA bool, a []float32, lda, i0, mc, p0, kc int) {
	for r0 := 0; r0 < mc; r0 += mr {
		rows := min(mr, mc-r0)
		panel := dst[(r0/mr)*kc*mr : (r0/mr+1)*kc*mr]
		if transA {
			// op(A)[i][p] = a[p*lda+i]: each p is a contiguous run of rows.
			for p := 0; p < kc; p++ {
				src := a[(p0+p)*lda+i0+r0:]
				d := panel[p*mr : p*mr+mr]
				copy(d, src[:rows])
				clear(d[rows:])
			}
			continue
		}
		if rows == mr {
			packARows(panel, mr, a, (i0+r0)*lda+p0, lda, kc)
			continue
		}
		for r := 0; r < rows; r++ {
			src := a[(i0+r0+r)*lda+p0:]
			src = src[:kc]
			d := panel[r:]
			for p, x := range src {
				d[p*mr] = x
			}
		}
		if rows < mr {
			for p := 0; p < kc; p++ {
				clear(panel[p*mr+rows : p*mr+mr])
			}
		}
	}
}

// packB copies the kc×nc block of op(B) starting at row p0, column j0 into
// dst as micro-panels of nr columns: dst[(c/nr)*kc*nr + p*nr + c%nr] =
// op(B)[p0+p][j0+c], zero-padded to a whole number of panels.
func packB(dst []float32, nr int, transB bool, b []float32, ldb, p0, kc, j0, nc int) {
	for c0 := 0; c0 < nc; c0 += nr {
		cols := min(nr, nc-c0)
		panel := dst[(c0/nr)*kc*nr : (c0/nr+1)*kc*nr]
		if !transB {
			for p := 0; p < kc; p++ {
				src := b[(p0+p)*ldb+j0+c0:]
				d := panel[p*nr : p*nr+nr]
				copy(d, src[:cols])
				clear(d[cols:])
			}
			continue
		}
		// op(B)[p][j] = b[j*ldb+p]: each column is a contiguous run of p.
		if cols == nr && nr <= 16 {
			packARows(panel, nr, b, (j0+c0)*ldb+p0, ldb, kc)
			continue
		}
		for j := 0; j < cols; j++ {
			src := b[(j0+c0+j)*ldb+p0:]
			src = src[:kc]
			d := panel[j:]
			for p, x := range src {
				d[p*nr] = x
			}
		}
		if cols < nr {
			for p := 0; p < kc; p++ {
				clear(panel[p*nr+cols : p*nr+nr])
			}
		}
	}
}

// workspace holds one goroutine's packing buffers.
type workspace struct {
	a, b []float32
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// grow returns buf resized to n elements, reallocating when too small.
func grow(buf []float32, n int) []float32 {
	if cap(buf) < n {
		return make([]float32, n)
	}
	return buf[:n]
}

// packARows transposes mr <= 16 whole rows of a matrix (row r starts at
// a[off+r*lda]) into panel[p*mr+r] for p < kc, walking the rows side by
// side so that panel is written sequentially. It packs rows of A, and
// columns of B when B is transposed.
func packARows(panel []float32, mr int, a []float32, off, lda, kc int) {
	var rows [16][]float32
	for r := 0; r < mr; r++ {
		rows[r] = a[off+r*lda : off+r*lda+kc]
	}
	panel = panel[:kc*mr]
	switch mr {
	case 4:
		r0, r1, r2, r3 := rows[0], rows[1], rows[2], rows[3]
		for p := 0; p < kc; p++ {
			d := panel[p*4 : p*4+4 : p*4+4]
			d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
		}
	default:
		for p := 0; p < kc; p++ {
			d := panel[p*mr : p*mr+mr]
			for r := range d {
				d[r] = rows[r][p]
			}
		}
	}
}
