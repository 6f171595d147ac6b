package sgemm

import "github.com/quanta-go/quanta/internal/parallel"

// minParallelRow is the smallest k*n single-row product split across
// threads: below it (4 MB of B) the goroutine start-up costs more than the
// second core gains on a bandwidth-bound product.
const minParallelRow = 1 << 20

// rowThreads returns the thread count for a single-row product.
func rowThreads(n, k int) int {
	if n*k < minParallelRow {
		return 1
	}
	return parallel.NumThreads()
}

// rowGenericBlock is the number of columns one goroutine step covers.
const rowGenericBlock = 256

// rowGeneric is the plain-Go single-row product from an unpacked B, with
// the arithmetic of kernelGeneric: per column, s += a[p]*b[p][j] from zero
// over each k block, then c = alpha*s + beta*c. A transposed B takes the
// tiled path.
func rowGeneric(v *variant, transB bool, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	if transB {
		gemmParallel(v, false, 1, n, k, alpha, a, k, unpackedB(v, true, b, ldb), beta, c, n)
		return
	}
	t := rowThreads(n, k)
	blocks := (n + rowGenericBlock - 1) / rowGenericBlock
	parallel.ForThreads(t, blocks, (blocks+t-1)/t, func(s, e int) {
		var acc [rowGenericBlock]float32
		for blk := s; blk < e; blk++ {
			j0 := blk * rowGenericBlock
			cols := min(rowGenericBlock, n-j0)
			for pc := 0; pc < k; pc += v.kc {
				kc := min(v.kc, k-pc)
				sum := acc[:cols]
				clear(sum)
				for p := pc; p < pc+kc; p++ {
					ap := a[p]
					brow := b[p*ldb+j0 : p*ldb+j0+cols]
					for j, x := range brow {
						sum[j] += ap * x
					}
				}
				storeRow(c[j0:j0+cols], sum, alpha, beta, pc)
			}
		}
	})
}

// rowPackedGeneric is rowPacked for the generic variant (panels of 4).
func rowPackedGeneric(kc int, a, bp []float32, panels int, c []float32, alpha, beta float32, n int) {
	var acc [rowPackedPanels * 4]float32
	a = a[:kc]
	for q := 0; q < panels; q++ {
		panel := bp[q*kc*4 : (q+1)*kc*4]
		s0, s1, s2, s3 := float32(0), float32(0), float32(0), float32(0)
		for p, ap := range a {
			bv := panel[p*4 : p*4+4 : p*4+4]
			s0 += ap * bv[0]
			s1 += ap * bv[1]
			s2 += ap * bv[2]
			s3 += ap * bv[3]
		}
		acc[q*4], acc[q*4+1], acc[q*4+2], acc[q*4+3] = s0, s1, s2, s3
	}
	storeRow(c[:n], acc[:n], alpha, beta, 0)
}

// storeRow sets c = alpha*s + beta*c (c not read when beta == 0), or
// c = alpha*s + c for later k blocks (pc > 0).
func storeRow(c, s []float32, alpha, beta float32, pc int) {
	if pc > 0 {
		beta = 1
	}
	s = s[:len(c)]
	for j := range c {
		if beta == 0 {
			c[j] = alpha * s[j]
		} else {
			c[j] = alpha*s[j] + beta*c[j]
		}
	}
}
