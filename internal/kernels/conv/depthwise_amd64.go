//go:build !purego

package conv

import (
	"unsafe"

	"github.com/quanta-go/quanta/internal/cpu"
)

//go:generate go run asm_gen.go

// dwRowsAVX512 computes, for r in [0, rows) and i in [0, n),
//
//	acc := bias
//	for t := 0; t < ntaps; t++ {
//		acc = fma(w[t], base[offs[t]+r*bstride+i], acc) // one rounding
//	}
//	y[r*ystride+i] = acc
//
// on 16-lane vectors, reading only the elements named (the column tail is
// masked). offs holds element offsets; strides are in elements.
//
//go:noescape
func dwRowsAVX512(y *float32, n, rows, ystride int, base *float32, bstride int, offs *int, w *float32, ntaps int, bias float32)

// dotAVX512 returns the sum of a[i]*b[i] for i in [0, n), computed with
// fused multiply-adds in 16 lanes and four 64-element partial sums per
// block: lane l of partial sum v accumulates elements 64j+16v+l; 16-element
// blocks after the last full 64 go to partial 0, the masked tail to partial
// 1; finally ((p0+p1)+(p2+p3)) is reduced 8+8, 4+4, 2+2, 1+1.
//
//go:noescape
func dotAVX512(a, b *float32, n int) float32

func dwRowsAVX512Go(y []float32, n, rows, ystride int, base []float32, bstride int, offs []int, w []float32, b float32) {
	checkRows(y, n, rows, ystride, base, bstride, offs, w)
	if n == 0 || rows == 0 {
		return
	}
	var op *int
	var wp *float32
	if len(offs) > 0 {
		op, wp = &offs[0], &w[0]
	}
	dwRowsAVX512(&y[0], n, rows, ystride, unsafe.SliceData(base), bstride, op, wp, len(offs), b)
}

func dotAVX512Go(a, b []float32) float32 {
	if len(a) == 0 {
		return 0
	}
	b = b[:len(a)]
	return dotAVX512(&a[0], &b[0], len(a))
}

func init() {
	rowKernels = append(rowKernels, rowKernel{"avx512", cpu.AVX512, dwRowsAVX512Go})
	dotKernels = append(dotKernels, dotKernel{"avx512", cpu.AVX512, dotAVX512Go})
}
