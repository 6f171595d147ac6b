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

// dotRowsAVX512 returns the sum over r < rows and i < n of
// a[r*astride+i]*b[r*bstride+i], computed with fused multiply-adds in 16
// lanes: four partial sums p0..p3, where 64-column blocks of each row go
// to p0..p3 by vector, later 16-column blocks to p0 and the masked tail to
// p1, carried across rows; finally ((p0+p1)+(p2+p3)) is reduced 8+8, 4+4,
// 2+2, 1+1. Strides are in elements.
//
//go:noescape
func dotRowsAVX512(a *float32, astride int, b *float32, bstride int, n, rows int) float32

// deinterleave2AVX512 sets even[j] = src[2*j] and odd[j] = src[2*j+1] for
// j in [0, n), reading only src[0:2*n] (the tail is masked).
//
//go:noescape
func deinterleave2AVX512(even, odd, src *float32, n int)

func deinterleave2AVX512Go(even, odd, src []float32) {
	n := len(even)
	if len(odd) < n || len(src) < 2*n {
		panic("conv: deinterleave slices too short")
	}
	if n == 0 {
		return
	}
	deinterleave2AVX512(&even[0], &odd[0], &src[0], n)
}

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

func dotRowsAVX512Go(a []float32, astride int, b []float32, bstride int, n, rows int) float32 {
	checkDotRows(a, astride, b, bstride, n, rows)
	if n == 0 || rows == 0 {
		return 0
	}
	return dotRowsAVX512(&a[0], astride, &b[0], bstride, n, rows)
}

// dwRowsAVX2 is dwRowsAVX512 on 8-lane vectors (same operations per
// element: a chain of fused multiply-adds in tap order from bias).
//
//go:noescape
func dwRowsAVX2(y *float32, n, rows, ystride int, base *float32, bstride int, offs *int, w *float32, ntaps int, bias float32)

// dotRowsAVX2 returns the sum over r < rows and i < n of
// a[r*astride+i]*b[r*bstride+i], with fused multiply-adds in 8 lanes: four
// partial sums p0..p3, where 32-column blocks of each row go to p0..p3 by
// vector, later 8-column blocks to p0 and the masked tail to p1, carried
// across rows; finally ((p0+p1)+(p2+p3)) is reduced 4+4, 2+2, 1+1.
//
//go:noescape
func dotRowsAVX2(a *float32, astride int, b *float32, bstride int, n, rows int) float32

// deinterleave2AVX2 is deinterleave2AVX512 on 8-lane vectors.
//
//go:noescape
func deinterleave2AVX2(even, odd, src *float32, n int)

func dwRowsAVX2Go(y []float32, n, rows, ystride int, base []float32, bstride int, offs []int, w []float32, b float32) {
	checkRows(y, n, rows, ystride, base, bstride, offs, w)
	if n == 0 || rows == 0 {
		return
	}
	var op *int
	var wp *float32
	if len(offs) > 0 {
		op, wp = &offs[0], &w[0]
	}
	dwRowsAVX2(&y[0], n, rows, ystride, unsafe.SliceData(base), bstride, op, wp, len(offs), b)
}

func dotRowsAVX2Go(a []float32, astride int, b []float32, bstride int, n, rows int) float32 {
	checkDotRows(a, astride, b, bstride, n, rows)
	if n == 0 || rows == 0 {
		return 0
	}
	return dotRowsAVX2(&a[0], astride, &b[0], bstride, n, rows)
}

func deinterleave2AVX2Go(even, odd, src []float32) {
	n := len(even)
	if len(odd) < n || len(src) < 2*n {
		panic("conv: deinterleave slices too short")
	}
	if n == 0 {
		return
	}
	deinterleave2AVX2(&even[0], &odd[0], &src[0], n)
}

func init() {
	rowKernels = append(rowKernels, rowKernel{"avx2", cpu.AVX2, dwRowsAVX2Go})
	dotKernels = append(dotKernels, dotKernel{"avx2", cpu.AVX2, dotRowsAVX2Go})
	deinterleaveKernels = append(deinterleaveKernels, deinterleaveKernel{"avx2", cpu.AVX2, deinterleave2AVX2Go})
	rowKernels = append(rowKernels, rowKernel{"avx512", cpu.AVX512, dwRowsAVX512Go})
	dotKernels = append(dotKernels, dotKernel{"avx512", cpu.AVX512, dotRowsAVX512Go})
	deinterleaveKernels = append(deinterleaveKernels, deinterleaveKernel{"avx512", cpu.AVX512, deinterleave2AVX512Go})
}
