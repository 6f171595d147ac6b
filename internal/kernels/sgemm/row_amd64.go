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
		rowT512(v, n, k, alpha, a, b, ldb, beta, c)
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

// rowT512 is the single-row product with a transposed B (n×k, row stride
// ldb): 32 outputs at a time, each the same chain of FMAs as in the tiled
// path. The last n%32 rows of B are copied to a zero-padded buffer.
func rowT512(v *variant, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	const rows = 32
	forBlocks(rowThreads(n, k), (n+rows-1)/rows, func(s, e int) {
		for blk := s; blk < e; blk++ {
			j0 := blk * rows
			cnt := min(rows, n-j0)
			src, off, ld := b, j0*ldb, ldb
			if cnt < rows {
				src = make([]float32, rows*k)
				for r := 0; r < cnt; r++ {
					copy(src[r*k:(r+1)*k], b[(j0+r)*ldb:])
				}
				off, ld = 0, k
			}
			_ = src[off+(rows-1)*ld+k-1]
			_ = c[j0+cnt-1]
			mask := uint32(colMask(cnt))
			for pc := 0; pc < k; pc += v.kc {
				kc := min(v.kc, k-pc)
				be := beta
				if pc > 0 {
					be = 1
				}
				rowTAVX512(kc, &a[pc], &src[off+pc], ld, &c[j0], alpha, be, mask)
			}
		}
	})
}
