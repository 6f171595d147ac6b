//go:build !purego

package sgemm

// packCopyAVX512 copies kc rows of up to 32 floats:
//
//	for p < kc, j < 32:
//		if bit j of smask: dst[p*ds+j] = (bit j of lmask ? src[p*ss+j] : 0)
//
// It requires kc >= 1 and lmask a subset of smask.
//
//go:noescape
func packCopyAVX512(dst *float32, ds int, src *float32, ss int, kc int, lmask, smask uint32)

// transpose14AVX512 transposes blocks of 16 columns of 14 rows:
//
//	for q < blocks, p < 16, r < 14: dst[(16*q+p)*ds+r] = src[r*ss+16*q+p]
//
//go:noescape
func transpose14AVX512(dst *float32, ds int, src *float32, ss int, blocks int)

// transpose16AVX512 is transpose14AVX512 for 16 rows:
//
//	for q < blocks, p < 16, r < 16: dst[(16*q+p)*ds+r] = src[r*ss+16*q+p]
//
//go:noescape
func transpose16AVX512(dst *float32, ds int, src *float32, ss int, blocks int)

// packA512 is packA for the AVX-512 variant (mr = 14).
func packA512(dst []float32, mr int, transA bool, a []float32, lda, i0, mc, p0, kc int) {
	const smask = 1<<mr512 - 1
	for r0 := 0; r0 < mc; r0 += mr512 {
		rows := min(mr512, mc-r0)
		panel := dst[(r0/mr512)*kc*mr512 : (r0/mr512+1)*kc*mr512]
		lmask := uint32(1)<<rows - 1
		if transA {
			// Row p of the panel is a[(p0+p)*lda+i0+r0 : +rows].
			_ = a[(p0+kc-1)*lda+i0+r0+rows-1]
			packCopyAVX512(&panel[0], mr512, &a[p0*lda+i0+r0], lda, kc, lmask, smask)
			continue
		}
		// Column r of the panel is row i0+r0+r of A from p0 on: whole
		// panels are transposed 16 columns at a time, the rest in Go.
		if rows == mr512 && kc >= 16 {
			_ = a[(i0+r0+rows-1)*lda+p0+kc-1]
			kc16 := kc &^ 15
			transpose14AVX512(&panel[0], mr512, &a[(i0+r0)*lda+p0], lda, kc16/16)
			if kc16 < kc {
				for r := 0; r < rows; r++ {
					src := a[(i0+r0+r)*lda+p0+kc16 : (i0+r0+r)*lda+p0+kc]
					for p, x := range src {
						panel[(kc16+p)*mr512+r] = x
					}
				}
			}
			continue
		}
		packA(panel, mr512, false, a, lda, i0+r0, rows, p0, kc)
	}
}

// packB512 is packB for the AVX-512 variant (nr = 32).
func packB512(dst []float32, nr int, transB bool, b []float32, ldb, p0, kc, j0, nc int) {
	const smask = 1<<nr512 - 1
	for c0 := 0; c0 < nc; c0 += nr512 {
		cols := min(nr512, nc-c0)
		panel := dst[(c0/nr512)*kc*nr512 : (c0/nr512+1)*kc*nr512]
		lmask := uint32(1)<<cols - 1
		if cols == 32 {
			lmask = smask
		}
		if !transB {
			_ = b[(p0+kc-1)*ldb+j0+c0+cols-1]
			packCopyAVX512(&panel[0], nr512, &b[p0*ldb+j0+c0], ldb, kc, lmask, smask)
			continue
		}
		if cols == nr512 && kc >= 16 {
			_ = b[(j0+c0+cols-1)*ldb+p0+kc-1]
			kc16 := kc &^ 15
			transpose16AVX512(&panel[0], nr512, &b[(j0+c0)*ldb+p0], ldb, kc16/16)
			transpose16AVX512(&panel[16], nr512, &b[(j0+c0+16)*ldb+p0], ldb, kc16/16)
			if kc16 < kc {
				for j := 0; j < cols; j++ {
					src := b[(j0+c0+j)*ldb+p0+kc16 : (j0+c0+j)*ldb+p0+kc]
					for p, x := range src {
						panel[(kc16+p)*nr512+j] = x
					}
				}
			}
			continue
		}
		packB(panel, nr512, true, b, ldb, p0, kc, j0+c0, cols)
	}
}
