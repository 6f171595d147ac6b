//go:build !purego

package sgemm

import "github.com/quanta-go/quanta/internal/cpu"

//go:generate go run asm_gen.go asm_gen_rows.go asm_gen_direct.go

// Tile shapes of the assembly kernels (asm_gen.go writes the same).
const (
	mr512, nr512 = 14, 32
	mr256, nr256 = 6, 16
)

// asmVariants are the assembly tiers, lowest first.
var asmVariants = []*variant{
	{
		name: "avx2", level: cpu.AVX2,
		mr: mr256, nr: nr256, mc: 120, kc: 256, nc: 2048,
		kernel:    kernel256,
		packA:     packA256,
		packB:     packB256,
		row:       row256,
		rowPacked: rowPacked256,
	},
	{
		name: "avx512", level: cpu.AVX512,
		mr: mr512, nr: nr512, mc: 280, kc: 256, nc: 4096,
		kernel:    kernel512,
		packA:     packA512,
		packB:     packB512,
		row:       row512,
		rowPacked: rowPacked512,
		direct:    direct512,
	},
}

// kernelAVX512 is the AVX-512 micro-kernel for a 14×32 tile:
//
//	for i < 14, j < 32: s[i][j] = 0
//	for p < kc: for i < 14, j < 32: s[i][j] = fma(a[p*14+i], b[p*32+j], s[i][j])
//	for i < m, j < 32 with bit j of mask set:
//		c[i*ldc+j] = fma(alpha, s[i][j], beta*c[i*ldc+j]) // beta != 0
//		c[i*ldc+j] = alpha * s[i][j]                      // beta == 0, c not read
//
// It requires kc >= 1 and 1 <= m <= 14.
//
//go:noescape
func kernelAVX512(kc int, a, b, c *float32, ldc int, alpha, beta float32, m int, mask uint64)

// kernelAVX2 is the AVX2+FMA micro-kernel for a 6×16 tile: the same
// computation as kernelAVX512 with 6 rows, 16 columns, a[p*6+i], b[p*16+j],
// and columns j < n written (1 <= n <= 16).
//
//go:noescape
func kernelAVX2(kc int, a, b, c *float32, ldc int, alpha, beta float32, m int, n int)

// rowAVX512 computes one row of C over up to 128 columns (nvec vectors of 16):
//
//	for j < 16*nvec: s[j] = 0
//	for p < kc: for v < nvec, l < 16, j = 16*v+l:
//		s[j] = fma(a[p], b[p*bs + (v/2)*ps + (v%2)*16 + l], s[j])
//	for j < 128 with bit j of mask1:mask0 set:
//		c[j] = fma(alpha, s[j], beta*c[j]) // beta != 0
//		c[j] = alpha * s[j]                // beta == 0, c not read
//
// Mask bits at or beyond 16*nvec must be clear. It requires kc >= 1 and
// 1 <= nvec <= 8.
//
//go:noescape
func rowAVX512(kc int, a, b *float32, bs, ps int, c *float32, alpha, beta float32, mask0, mask1 uint64, nvec int)

// rowAVX2 is rowAVX512 for AVX2 (the arithmetic of kernelAVX2): up to 64
// columns in nvec vectors of 8, vector v of row p at b[p*bs + (v/2)*ps +
// (v%2)*8], and c[j] written where masks[j] is -1 (masks[j] must be 0 for
// j >= 8*nvec).
//
//go:noescape
func rowAVX2(kc int, a, b *float32, bs, ps int, c *float32, alpha, beta float32, masks *[64]int32, nvec int)

// rowStreamAVX512 computes a single row over n columns for one k block,
// reading B row by row (four rows a pass) and accumulating in t[0:n]:
//
//	for j < n: t[j] = 0
//	for p < kc: for j < n: t[j] = fma(a[p], b[p*ldb+j], t[j])
//	for j < n:
//		c[j] = fma(alpha, t[j], beta*c[j]) // beta != 0
//		c[j] = alpha * t[j]                // beta == 0, c not read
//
// It requires kc >= 1 and n >= 1.
//
//go:noescape
func rowStreamAVX512(kc int, a, b *float32, ldb int, c *float32, alpha, beta float32, n int, t *float32)

// rowTAVX512 computes 32 outputs of a single-row product with a transposed
// B, with the per-element arithmetic of kernelAVX512:
//
//	for j < 32: s[j] = 0
//	for p < kc: for j < 32: s[j] = fma(a[p], b[j*ldb+p], s[j])
//	for j < 32 with bit j of mask set:
//		c[j] = fma(alpha, s[j], beta*c[j]) // beta != 0
//		c[j] = alpha * s[j]                // beta == 0, c not read
//
// All 32 rows of b are read. It requires kc >= 1.
//
//go:noescape
func rowTAVX512(kc int, a, b *float32, ldb int, c *float32, alpha, beta float32, mask uint32)

// fmaPeakZMM runs n iterations of 12 independent zmm FMAs (384 flops each).
//
//go:noescape
func fmaPeakZMM(n int)

// fmaPeakYMM runs n iterations of 12 independent ymm FMAs (192 flops each).
//
//go:noescape
func fmaPeakYMM(n int)

// maskTable holds 16 all-ones lanes followed by 16 zero lanes (kernelAVX2
// loads its column masks from it).
var maskTable [32]uint32

func kernel512(kc int, a, b, c []float32, ldc int, alpha, beta float32, m, n int) {
	_ = a[kc*mr512-1]
	_ = b[kc*nr512-1]
	_ = c[(m-1)*ldc+n-1]
	kernelAVX512(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, m, colMask(n))
}

func kernel256(kc int, a, b, c []float32, ldc int, alpha, beta float32, m, n int) {
	_ = a[kc*mr256-1]
	_ = b[kc*nr256-1]
	_ = c[(m-1)*ldc+n-1]
	kernelAVX2(kc, &a[0], &b[0], &c[0], ldc, alpha, beta, m, n)
}

// colMask returns a mask with the low n bits set (n <= 64).
func colMask(n int) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return uint64(1)<<n - 1
}

// rowCall runs rowAVX512 on n <= 16*nvec columns of c.
func rowCall(kc int, a, b []float32, bs, ps int, c []float32, alpha, beta float32, n, nvec int) {
	_ = c[n-1]
	_ = b[(kc-1)*bs+((nvec-1)/2)*ps+((nvec-1)%2)*16+15]
	rowAVX512(kc, &a[0], &b[0], bs, ps, &c[0], alpha, beta, colMask(n), colMask(max(n-64, 0)), nvec)
}

// rowCall256 runs rowAVX2 on n <= 8*nvec columns of c.
func rowCall256(kc int, a, b []float32, bs, ps int, c []float32, alpha, beta float32, n, nvec int) {
	_ = c[n-1]
	_ = b[(kc-1)*bs+((nvec-1)/2)*ps+((nvec-1)%2)*8+7]
	var masks [64]int32
	for j := range n {
		masks[j] = -1
	}
	rowAVX2(kc, &a[0], &b[0], bs, ps, &c[0], alpha, beta, &masks, nvec)
}
