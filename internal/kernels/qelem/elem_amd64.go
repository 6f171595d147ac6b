//go:build !purego

package qelem

import (
	"golang.org/x/sys/cpu"

	qcpu "github.com/quanta-go/quanta/internal/cpu"
)

//go:generate go run asm_gen.go

// hasVBMI reports AVX-512 VBMI (vpermi2b), needed by the table lookup.
var hasVBMI = qcpu.Hardware >= qcpu.AVX512 && cpu.X86.HasAVX512VBMI

var quantArch = []variant[quantFn]{
	{name: "avx2", level: qcpu.AVX2, ok: true, fn: func(dst []byte, src []float32, scale float32, zp, lo, hi int32) {
		dst = dst[:len(src)]
		n := len(src) &^ 7
		if n > 0 {
			quantAVX2(&dst[0], &src[0], n, scale, zp, float32(lo-zp), float32(hi-zp))
		}
		quantGeneric(dst[n:], src[n:], scale, zp, lo, hi)
	}},
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst []byte, src []float32, scale float32, zp, lo, hi int32) {
		dst = dst[:len(src)]
		if len(src) > 0 {
			quantAVX512(&dst[0], &src[0], len(src), scale, zp, float32(lo-zp), float32(hi-zp))
		}
	}},
}

var quant32Arch = []variant[quant32Fn]{
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst []int32, src []float32, scale float32, zp, lo, hi int32) {
		dst = dst[:len(src)]
		if len(src) > 0 {
			quant32AVX512(&dst[0], &src[0], len(src), scale, zp, float32(lo-zp), float32(hi-zp))
		}
	}},
}

var dequant32Arch = []variant[dequant32Fn]{
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst []float32, src []int32, scale float32, zp int32) {
		dst = dst[:len(src)]
		if len(src) > 0 {
			dequant32AVX512(&dst[0], &src[0], len(src), zp, scale)
		}
	}},
}

var dequantArch = []variant[dequantFn]{
	{name: "avx2", level: qcpu.AVX2, ok: true, fn: func(dst []float32, src []byte, signed bool, scale float32, zp int32) {
		dst = dst[:len(src)]
		n := len(src) &^ 7
		if n > 0 {
			if signed {
				dequantAVX2S8(&dst[0], &src[0], n, zp, scale)
			} else {
				dequantAVX2U8(&dst[0], &src[0], n, zp, scale)
			}
		}
		dequantGeneric(dst[n:], src[n:], signed, scale, zp)
	}},
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst []float32, src []byte, signed bool, scale float32, zp int32) {
		dst = dst[:len(src)]
		if len(src) == 0 {
			return
		}
		if signed {
			dequantAVX512S8(&dst[0], &src[0], len(src), zp, scale)
		} else {
			dequantAVX512U8(&dst[0], &src[0], len(src), zp, scale)
		}
	}},
}

// binKernels[tier][op][signed] are the assembly binary kernels; tier 0 is
// AVX2 (multiples of 8), tier 1 AVX-512 (any length).
var binKernels = [2][2][2]func(dst, a, b *byte, n int, p *binArgs){
	{{addAVX2U8, addAVX2S8}, {mulAVX2U8, mulAVX2S8}},
	{{addAVX512U8, addAVX512S8}, {mulAVX512U8, mulAVX512S8}},
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var binArch = []variant[binFn]{
	{name: "avx2", level: qcpu.AVX2, ok: true, fn: func(op binOp, dst, a, b []byte, signed bool, p *BinaryParams) {
		a, b = a[:len(dst)], b[:len(dst)]
		n := len(dst) &^ 7
		if n > 0 {
			binKernels[0][op][b2i(signed)](&dst[0], &a[0], &b[0], n, p.args())
		}
		binGeneric(op, dst[n:], a[n:], b[n:], signed, p)
	}},
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(op binOp, dst, a, b []byte, signed bool, p *BinaryParams) {
		a, b = a[:len(dst)], b[:len(dst)]
		if len(dst) > 0 {
			binKernels[1][op][b2i(signed)](&dst[0], &a[0], &b[0], len(dst), p.args())
		}
	}},
}

var lutArch = []variant[lutFn]{
	{name: "avx512vbmi", level: qcpu.AVX512, ok: hasVBMI, fn: func(dst, src []byte, t *Table) {
		src = src[:len(dst)]
		if len(dst) > 0 {
			lutVBMI(&dst[0], &src[0], len(dst), t)
		}
	}},
}

var sumRowsArch = []variant[sumRowsFn]{
	{name: "avx512vbmi", level: qcpu.AVX512, ok: hasVBMI, fn: func(src []byte, rowLen int, tabs *[SumTables]Table, sums [][SumTables]uint64) {
		src = src[:rowLen*len(sums)]
		sumLUTRowsVBMI(&src[0], rowLen, len(sums), tabs, &sums[0][0])
	}},
}

var rowMaxArch = []variant[rowMaxFn]{
	{name: "avx2", level: qcpu.AVX2, ok: true, fn: func(dst, src []byte, signed bool) {
		src = src[:len(dst)]
		n := len(dst)
		if n < 32 {
			rowMaxGeneric(dst, src, signed)
			return
		}
		f := rowMaxAVX2U8
		if signed {
			f = rowMaxAVX2S8
		}
		f(&dst[0], &src[0], n)
		if n&31 != 0 {
			// The last 32 again: max is idempotent, src is unchanged.
			f(&dst[n-32], &src[n-32], 32)
		}
	}},
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst, src []byte, signed bool) {
		src = src[:len(dst)]
		if len(dst) == 0 {
			return
		}
		if signed {
			rowMaxAVX512S8(&dst[0], &src[0], len(dst))
		} else {
			rowMaxAVX512U8(&dst[0], &src[0], len(dst))
		}
	}},
}

var rowAccArch = []variant[rowAccFn]{
	{name: "avx2", level: qcpu.AVX2, ok: true, fn: func(dst []int32, src []byte, signed bool) {
		src = src[:len(dst)]
		n := len(dst) &^ 7
		if n > 0 {
			if signed {
				rowAccAVX2S8(&dst[0], &src[0], n)
			} else {
				rowAccAVX2U8(&dst[0], &src[0], n)
			}
		}
		rowAccGeneric(dst[n:], src[n:], signed)
	}},
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(dst []int32, src []byte, signed bool) {
		src = src[:len(dst)]
		if len(dst) == 0 {
			return
		}
		if signed {
			rowAccAVX512S8(&dst[0], &src[0], len(dst))
		} else {
			rowAccAVX512U8(&dst[0], &src[0], len(dst))
		}
	}},
}

var deinterleaveArch = []variant[deinterleaveFn]{
	{name: "avx512", level: qcpu.AVX512, ok: true, fn: func(even, odd, src []byte) {
		n := len(even)
		odd, src = odd[:n], src[:2*n]
		if n > 0 {
			deinterleave2AVX512(&even[0], &odd[0], &src[0], n)
		}
	}},
}
