//go:build !purego

package sgemm

import "github.com/quanta-go/quanta/internal/parallel"

// rowBlock is the number of columns one rowAVX512 call covers.
const rowBlock = 128

// minParallelRow is the smallest k*n split across threads on the row path.
const minParallelRow = 1 << 16

// rowThreads returns the thread count for a single-row product.
func rowThreads(n, k int) int {
	if n*k < minParallelRow {
		return 1
	}
	return parallel.NumThreads()
}

// forBlocks runs fn over [0, blocks) split into one contiguous range per
// thread.
func forBlocks(t, blocks int, fn func(s, e int)) {
	per := (blocks + t - 1) / t
	parallel.ForThreads(t, blocks, per, fn)
}

// row512 is the AVX-512 single-row product from an unpacked B.
func row512(v *variant, transB bool, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	if transB {
		rowDot512(n, k, alpha, a, b, ldb, beta, c)
		return
	}
	// Whole vectors of B are read in place, in blocks of rowBlock columns;
	// the last n%16 columns are copied to a zero-padded 16-wide panel.
	n16 := n &^ 15
	blocks := (n16 + rowBlock - 1) / rowBlock
	if n16 < n {
		blocks++
	}
	forBlocks(rowThreads(n, k), blocks, func(s, e int) {
		var tail []float32
		for blk := s; blk < e; blk++ {
			j0 := blk * rowBlock
			if j0 >= n16 {
				// The tail block.
				if tail == nil {
					tail = make([]float32, min(v.kc, k)*16)
				}
				for pc := 0; pc < k; pc += v.kc {
					kc := min(v.kc, k-pc)
					for p := 0; p < kc; p++ {
						d := tail[p*16 : p*16+16]
						clear(d[copy(d, b[(pc+p)*ldb+n16:(pc+p)*ldb+n]):])
					}
					be := beta
					if pc > 0 {
						be = 1
					}
					rowCall(kc, a[pc:], tail, 16, 32, c[n16:], alpha, be, n-n16, 1)
				}
				continue
			}
			cols := min(rowBlock, n16-j0)
			for pc := 0; pc < k; pc += v.kc {
				kc := min(v.kc, k-pc)
				be := beta
				if pc > 0 {
					be = 1
				}
				rowCall(kc, a[pc:], b[pc*ldb+j0:], ldb, 32, c[j0:], alpha, be, cols, cols/16)
			}
		}
	})
}

// rowPacked512 computes one row from a group of packed panels of one k
// block: bp holds panels of kc×32 floats back to back, n <= 32*panels <= 128.
func rowPacked512(kc int, a, bp []float32, panels int, c []float32, alpha, beta float32, n int) {
	rowCall(kc, a, bp, nr512, kc*nr512, c, alpha, beta, n, (n+15)/16)
}

// rowDot512 is the single-row product with a transposed B (n×k, row
// stride ldb): one dot product per output, four rows of B at a time.
func rowDot512(n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	const rows = 4
	blocks := (n + rows - 1) / rows
	forBlocks(rowThreads(n, k), (blocks+15)/16, func(s, e int) {
		var out [rows]float32
		for j := s * 16 * rows; j < min(e*16*rows, n); j += rows {
			if j+rows <= n {
				_ = b[(j+rows-1)*ldb+k-1]
				dotAVX512(k, &a[0], &b[j*ldb], ldb, &out)
			} else {
				// Fewer than four rows left: one at a time.
				for r := 0; r < n-j; r++ {
					_ = b[(j+r)*ldb+k-1]
					dotAVX512(k, &a[0], &b[(j+r)*ldb], 0, &out)
					storeDot(c, j+r, out[0], alpha, beta)
				}
				break
			}
			for r := 0; r < rows; r++ {
				storeDot(c, j+r, out[r], alpha, beta)
			}
		}
	})
}

// storeDot sets c[j] = alpha*s + beta*c[j] (c[j] not read when beta == 0).
func storeDot(c []float32, j int, s, alpha, beta float32) {
	if beta == 0 {
		c[j] = alpha * s
	} else {
		c[j] = alpha*s + beta*c[j]
	}
}
