// Package sgemm computes single-precision matrix products, row-major, in the
// BLAS convention: C = alpha*op(A)*op(B) + beta*C.
//
// The implementation is blocked for cache: panels of A and B are packed into
// contiguous micro-panels and a register-tiled micro-kernel computes one tile
// of C at a time. Micro-kernels exist in plain Go (every platform), AVX2+FMA
// (6x16 ymm tile) and AVX-512 (14x32 zmm tile); the variant is chosen once
// per call from internal/cpu.Max (QUANTA_CPU caps it). A single-row path
// streams B for M=1 products (batch-1 linear layers), PackB/SgemmPackedB
// pack a reused operand (a weight matrix) once, and SgemmInPlace reads B
// where it lies, unpacked, for products whose B is used only a few times
// (a convolution's activations), with a per-row bias in its epilogue.
//
// # Numerics
//
// Every element of C is computed as a chain of multiply-adds over k in
// increasing order, restarted from zero at each k block of the variant's KC
// size, and each block's sum s is folded into C as alpha*s + beta*C (the
// first block) or alpha*s + C (later blocks); beta == 0 means C is not read,
// so C may hold NaN. The assembly tiers use fused multiply-adds; the Go tier
// rounds the product and the sum separately on amd64 (the Go compiler may
// fuse them on other architectures). Consequently:
//
//   - for a given tier, results are deterministic and do not depend on the
//     thread count (work is split over rows or columns of C, never over k),
//     nor on M: the single-row paths perform the same operations as the
//     tiled path, so row i of C is the same whether computed alone or in a
//     batch, and with B packed by PackB or not;
//   - different tiers, and Reference (a plain triple loop), agree to within
//     rounding, not bit for bit: |C - C_ref| <= (2k+8) * 2^-23 *
//     (|alpha| * sum over p of |a[i][p]*b[p][j]| + |beta*c[i][j]|) for every
//     element, the bound the tests check for every tier.
package sgemm

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/cpu"
)

// Sgemm computes C = alpha*op(A)*op(B) + beta*C for row-major matrices.
// op(A) is m×k (A is k×m when transA), op(B) is k×n (B is n×k when transB),
// C is m×n. lda, ldb and ldc are row strides. When beta is 0, C is not read.
// Results do not depend on the thread count. Sgemm panics if a slice is too
// short for its shape and stride.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	sgemmVariant(current(), transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// Reference is the plain-Go specification of Sgemm: a triple loop,
// accumulating over k in increasing order in float32.
func Reference(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += av * bv
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * s
			} else {
				c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
			}
		}
	}
}

// checkMatrix panics unless buf can hold a rows×cols row-major matrix with
// row stride ld.
func checkMatrix(name string, rows, cols int, buf []float32, ld int) {
	if rows < 0 || cols < 0 {
		panic(fmt.Sprintf("sgemm: negative dimension for %s (%d×%d)", name, rows, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if ld < cols {
		panic(fmt.Sprintf("sgemm: stride %d of %s is less than its width %d", ld, name, cols))
	}
	if need := (rows-1)*ld + cols; len(buf) < need {
		panic(fmt.Sprintf("sgemm: %s has %d elements, %d×%d with stride %d needs %d", name, len(buf), rows, cols, ld, need))
	}
}

// checkArgs validates the operands of a product.
func checkArgs(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("sgemm: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	if m == 0 || n == 0 {
		checkMatrix("C", m, n, c, ldc)
		return
	}
	if transA {
		checkMatrix("A", k, m, a, lda)
	} else {
		checkMatrix("A", m, k, a, lda)
	}
	if transB {
		checkMatrix("B", n, k, b, ldb)
	} else {
		checkMatrix("B", k, n, b, ldb)
	}
	checkMatrix("C", m, n, c, ldc)
}

// scaleC sets C = alpha*0 + beta*C, the result of an empty product (k = 0).
func scaleC(m, n int, alpha, beta float32, c []float32, ldc int) {
	z := alpha * 0
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			if beta == 0 {
				row[j] = z
			} else {
				row[j] = z + beta*row[j]
			}
		}
	}
}

// current returns the variant that cpu.Max allows.
func current() *variant {
	best := variants[0]
	for _, v := range variants {
		if v.level <= cpu.Max && v.level >= best.level {
			best = v
		}
	}
	return best
}
