//go:build !purego

package sgemm

// kernelDirectAVX512 is kernelAVX512 (14×32 tile, alpha 1) with B read in
// place: row p of the tile's B is b[p*ldb : p*ldb+32], of which only the
// columns j with bit j of mask set are loaded (the others count as 0):
//
//	for i < 14, j < 32: s[i][j] = 0
//	for p < kc: for i < 14, j < 32: s[i][j] = fma(a[p*14+i], b[p*ldb+j], s[i][j])
//	for i < m, j < 32 with bit j of mask set:
//		c[i*ldc+j] = s[i][j]              // mode 0
//		c[i*ldc+j] = s[i][j] + c[i*ldc+j] // mode 1
//		c[i*ldc+j] = s[i][j] + bias[i]    // mode 2
//
// It requires kc >= 1 and 1 <= m <= 14; bias is read in mode 2 only.
//
//go:noescape
func kernelDirectAVX512(kc int, a, b *float32, ldb int, c *float32, ldc int, m int, mask uint64, bias *float32, mode int)

// direct512 runs kernelDirectAVX512 on an m×n tile (n <= 32).
func direct512(kc int, a, b []float32, ldb int, c []float32, ldc int, m, n int, bias []float32, mode int) {
	_ = a[kc*mr512-1]
	_ = b[(kc-1)*ldb+n-1]
	_ = c[(m-1)*ldc+n-1]
	var bp *float32
	if mode == directBias {
		_ = bias[m-1]
		bp = &bias[0]
	}
	kernelDirectAVX512(kc, &a[0], &b[0], ldb, &c[0], ldc, m, colMask(n), bp, mode)
}
