//go:build !purego

package sgemm

// transpose6AVX2 transposes blocks of 8 columns of 6 rows:
//
//	for q < blocks, p < 8, r < 6: dst[(8*q+p)*ds+r] = src[r*ss+8*q+p]
//
//go:noescape
func transpose6AVX2(dst *float32, ds int, src *float32, ss int, blocks int)

// transpose8AVX2 is transpose6AVX2 for 8 rows:
//
//	for q < blocks, p < 8, r < 8: dst[(8*q+p)*ds+r] = src[r*ss+8*q+p]
//
//go:noescape
func transpose8AVX2(dst *float32, ds int, src *float32, ss int, blocks int)

// packA256 is packA for the AVX2 variant (mr = 6).
func packA256(dst []float32, mr int, transA bool, a []float32, lda, i0, mc, p0, kc int) {
	if transA || kc < 8 {
		packA(dst, mr, transA, a, lda, i0, mc, p0, kc)
		return
	}
	for r0 := 0; r0 < mc; r0 += mr256 {
		rows := min(mr256, mc-r0)
		panel := dst[(r0/mr256)*kc*mr256 : (r0/mr256+1)*kc*mr256]
		if rows < mr256 {
			packA(panel, mr256, false, a, lda, i0+r0, rows, p0, kc)
			continue
		}
		_ = a[(i0+r0+rows-1)*lda+p0+kc-1]
		kc8 := kc &^ 7
		transpose6AVX2(&panel[0], mr256, &a[(i0+r0)*lda+p0], lda, kc8/8)
		for r := 0; r < rows; r++ {
			src := a[(i0+r0+r)*lda+p0+kc8 : (i0+r0+r)*lda+p0+kc]
			for p, x := range src {
				panel[(kc8+p)*mr256+r] = x
			}
		}
	}
}

// packB256 is packB for the AVX2 variant (nr = 16).
func packB256(dst []float32, nr int, transB bool, b []float32, ldb, p0, kc, j0, nc int) {
	if !transB || kc < 8 {
		packB(dst, nr, transB, b, ldb, p0, kc, j0, nc)
		return
	}
	for c0 := 0; c0 < nc; c0 += nr256 {
		cols := min(nr256, nc-c0)
		panel := dst[(c0/nr256)*kc*nr256 : (c0/nr256+1)*kc*nr256]
		if cols < nr256 {
			packB(panel, nr256, true, b, ldb, p0, kc, j0+c0, cols)
			continue
		}
		_ = b[(j0+c0+cols-1)*ldb+p0+kc-1]
		kc8 := kc &^ 7
		transpose8AVX2(&panel[0], nr256, &b[(j0+c0)*ldb+p0], ldb, kc8/8)
		transpose8AVX2(&panel[8], nr256, &b[(j0+c0+8)*ldb+p0], ldb, kc8/8)
		for j := 0; j < cols; j++ {
			src := b[(j0+c0+j)*ldb+p0+kc8 : (j0+c0+j)*ldb+p0+kc]
			for p, x := range src {
				panel[(kc8+p)*nr256+j] = x
			}
		}
	}
}
