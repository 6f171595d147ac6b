//go:build !purego

package sgemm

import "github.com/quanta-go/quanta/internal/parallel"

// forBlocks runs fn over [0, blocks) split into one contiguous range per
// thread.
func forBlocks(t, blocks int, fn func(s, e int)) {
	per := (blocks + t - 1) / t
	parallel.ForThreads(t, blocks, per, fn)
}

// rowKernel computes one row over nvec vectors of w floats (see rowAVX512
// and rowAVX2): n <= w*nvec columns, vector q at b[(q/2)*ps + (q%2)*w], B
// row p at b[p*bs:].
type rowKernel func(kc int, a, b []float32, bs, ps int, c []float32, alpha, beta float32, n, nvec int)

// rowUnpacked is the single-row product from an unpacked k×n B with a
// row kernel of vector width w (up to 8 vectors a call). Whole vectors of B
// are read in place; the last n%w columns are copied to a zero-padded
// panel.
func rowUnpacked(v *variant, w int, rk rowKernel, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	block := 8 * w
	nw := n / w * w
	blocks := (nw + block - 1) / block
	if nw < n {
		blocks++
	}
	forBlocks(rowThreads(n, k), blocks, func(s, e int) {
		var tail []float32
		for blk := s; blk < e; blk++ {
			j0 := blk * block
			for pc := 0; pc < k; pc += v.kc {
				kc := min(v.kc, k-pc)
				be := beta
				if pc > 0 {
					be = 1
				}
				if j0 < nw {
					cols := min(block, nw-j0)
					rk(kc, a[pc:], b[pc*ldb+j0:], ldb, 2*w, c[j0:], alpha, be, cols, cols/w)
					continue
				}
				// The tail block.
				if tail == nil {
					tail = make([]float32, min(v.kc, k)*w)
				}
				for p := 0; p < kc; p++ {
					d := tail[p*w : p*w+w]
					clear(d[copy(d, b[(pc+p)*ldb+nw:(pc+p)*ldb+n]):])
				}
				rk(kc, a[pc:], tail, w, 2*w, c[nw:], alpha, be, n-nw, 1)
			}
		}
	})
}

// row512 is the AVX-512 single-row product from an unpacked B.
func row512(v *variant, transB bool, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	if transB {
		rowT512(v, n, k, alpha, a, b, ldb, beta, c)
		return
	}
	rowStream512(v, n, k, alpha, a, b, ldb, beta, c)
}

// rowStreamCols is the widest column chunk of one rowStreamAVX512 call
// (its accumulator row stays in L1).
const rowStreamCols = 4096

// rowStream512 is the AVX-512 single-row product from an unpacked k×n B:
// B is read sequentially, row by row, in column chunks (one or more per
// thread).
func rowStream512(v *variant, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	t := rowThreads(n, k)
	chunks := max((n+rowStreamCols-1)/rowStreamCols, t)
	w := ((n+chunks-1)/chunks + 15) &^ 15
	chunks = (n + w - 1) / w
	forBlocks(t, chunks, func(s, e int) {
		ws := workspaces.Get().(*workspace)
		ws.b = grow(ws.b, w)
		for ch := s; ch < e; ch++ {
			j0 := ch * w
			cols := min(w, n-j0)
			_ = c[j0+cols-1]
			for pc := 0; pc < k; pc += v.kc {
				kc := min(v.kc, k-pc)
				be := beta
				if pc > 0 {
					be = 1
				}
				_ = b[(pc+kc-1)*ldb+j0+cols-1]
				rowStreamAVX512(kc, &a[pc], &b[pc*ldb+j0], ldb, &c[j0], alpha, be, cols, &ws.b[0])
			}
		}
		workspaces.Put(ws)
	})
}

// rowPacked512 computes one row from a group of packed panels of one k
// block: bp holds panels of kc×32 floats back to back, n <= 32*panels <= 128.
func rowPacked512(kc int, a, bp []float32, panels int, c []float32, alpha, beta float32, n int) {
	rowCall(kc, a, bp, nr512, kc*nr512, c, alpha, beta, n, (n+15)/16)
}

// row256 is the AVX2 single-row product from an unpacked B; a transposed B
// takes the tiled path.
func row256(v *variant, transB bool, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32) {
	if transB {
		gemmParallel(v, false, 1, n, k, alpha, a, k, unpackedB(v, true, b, ldb), beta, c, n)
		return
	}
	rowUnpacked(v, 8, rowCall256, n, k, alpha, a, b, ldb, beta, c)
}

// rowPacked256 computes one row from a group of packed panels of one k
// block: bp holds panels of kc×16 floats back to back, n <= 16*panels <= 64.
func rowPacked256(kc int, a, bp []float32, panels int, c []float32, alpha, beta float32, n int) {
	rowCall256(kc, a, bp, nr256, kc*nr256, c, alpha, beta, n, (n+7)/8)
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
