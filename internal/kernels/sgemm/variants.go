package sgemm

import "github.com/quanta-go/quanta/internal/cpu"

// variant is one implementation tier: a micro-kernel, its register tile and
// its cache blocking. The variants table drives dispatch and the tests.
type variant struct {
	name  string
	level cpu.Level
	// mr×nr is the register tile; mc, kc, nc are the cache blocks (mc a
	// multiple of mr, nc a multiple of nr).
	mr, nr, mc, kc, nc int
	// packA and packB pack operands (see packA and packB in pack.go).
	packA func(dst []float32, mr int, transA bool, a []float32, lda, i0, mc, p0, kc int)
	packB func(dst []float32, nr int, transB bool, b []float32, ldb, p0, kc, j0, nc int)
	// kernel computes one tile of C from packed micro-panels:
	// for i < m, j < n, with s = sum over p < kc of a[p*mr+i]*b[p*nr+j]
	// accumulated in order from zero, c[i*ldc+j] = alpha*s + beta*c[i*ldc+j]
	// (c not read when beta == 0). 1 <= m <= mr, 1 <= n <= nr, kc >= 1.
	kernel func(kc int, a, b, c []float32, ldc int, alpha, beta float32, m, n int)
	// row, if not nil, computes the single-row product (m = 1) from an
	// unpacked B with the same per-element arithmetic as kernel.
	row rowFunc
	// rowPacked, if not nil, computes one row for one k block from a group
	// of at most rowPackedPanels packed micro-panels (bp, kc×nr floats
	// each, back to back) over n <= panels*nr columns of c, with the same
	// per-element arithmetic as kernel.
	rowPacked func(kc int, a, bp []float32, panels int, c []float32, alpha, beta float32, n int)
	// direct, if not nil, computes one m×n tile (m <= mr, n <= nr) of
	// SgemmInPlace from a packed A micro-panel and B read in place (row p
	// at b[p*ldb:]), with kernel's arithmetic for alpha 1 and the
	// epilogue of mode: directPlain, directAcc or directBias.
	direct func(kc int, a, b []float32, ldb int, c []float32, ldc int, m, n int, bias []float32, mode int)
}

// rowFunc computes c[0:n] = alpha*a[0:k]*op(B) + beta*c[0:n] for one row.
type rowFunc func(v *variant, transB bool, n, k int, alpha float32, a, b []float32, ldb int, beta float32, c []float32)

// genericVariant is plain Go: it runs everywhere and is the baseline.
var genericVariant = &variant{
	name: "generic", level: cpu.Generic,
	mr: 4, nr: 4, mc: 128, kc: 256, nc: 2048,
	kernel:    kernelGeneric,
	packA:     packA,
	packB:     packB,
	row:       rowGeneric,
	rowPacked: rowPackedGeneric,
}

// variants lists every tier compiled into this build, lowest first.
var variants = append([]*variant{genericVariant}, asmVariants...)
