package qelem

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// The 32-bit-code forms of Quantize and Dequantize, for codes held as
// int32: the uint16 and int16 activations of 16-bit mixed precision.

// quant32Fn quantizes len(src) floats into int32 codes:
// dst[i] = qmath.Quantize(src[i], scale, zp, lo, hi).
type quant32Fn func(dst []int32, src []float32, scale float32, zp, lo, hi int32)

// dequant32Fn dequantizes len(src) int32 codes:
// dst[i] = qmath.Dequantize(src[i], zp, scale).
type dequant32Fn func(dst []float32, src []int32, scale float32, zp int32)

var (
	quant32Variants   = append([]variant[quant32Fn]{{name: "generic", level: cpu.Generic, ok: true, fn: quant32Generic}}, quant32Arch...)
	dequant32Variants = append([]variant[dequant32Fn]{{name: "generic", level: cpu.Generic, ok: true, fn: dequant32Generic}}, dequant32Arch...)
)

func quant32Generic(dst []int32, src []float32, scale float32, zp, lo, hi int32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = qmath.Quantize(x, scale, zp, lo, hi)
	}
}

func dequant32Generic(dst []float32, src []int32, scale float32, zp int32) {
	dst = dst[:len(src)]
	for i, q := range src {
		dst[i] = qmath.Dequantize(q, zp, scale)
	}
}

// check32 panics unless lo <= hi and the kernels' float32 bounds lo-zp
// and hi-zp are exact: within ±2^24.
func check32(op string, zp, lo, hi int32) {
	const m = 1 << 24
	dl, dh := int64(lo)-int64(zp), int64(hi)-int64(zp)
	if lo > hi || dl < -m || dl > m || dh < -m || dh > m {
		panic(fmt.Sprintf("qelem: %s: range %d..%d with zero point %d is not supported (bounds less the zero point within ±2^24)", op, lo, hi, zp))
	}
}

// Quantize32Reference is the specification of Quantize32:
//
//	dst[i] = qmath.Quantize(src[i], scale, zp, lo, hi)
//
// that is saturate(roundHalfEven(float32(src[i] / scale)) + zp) within
// [lo, hi], with NaN mapped to zp.
func Quantize32Reference(dst []int32, src []float32, scale float32, zp, lo, hi int32) {
	need("Quantize32Reference", "dst", len(dst), len(src))
	for i, x := range src {
		dst[i] = qmath.Quantize(x, scale, zp, lo, hi)
	}
}

// Quantize32 computes Quantize32Reference with the fastest tier allowed,
// split over threads. lo-zp and hi-zp must lie within ±2^24.
func Quantize32(dst []int32, src []float32, scale float32, zp, lo, hi int32) {
	need("Quantize32", "dst", len(dst), len(src))
	check32("Quantize32", zp, lo, hi)
	fn := pick(quant32Variants).fn
	parallel.For(len(src), grain, func(s, e int) {
		fn(dst[s:e], src[s:e], scale, zp, lo, hi)
	})
}

// Dequantize32Reference is the specification of Dequantize32:
//
//	dst[i] = qmath.Dequantize(src[i], zp, scale) = float32(src[i] - zp) * scale
func Dequantize32Reference(dst []float32, src []int32, scale float32, zp int32) {
	need("Dequantize32Reference", "dst", len(dst), len(src))
	for i, q := range src {
		dst[i] = qmath.Dequantize(q, zp, scale)
	}
}

// Dequantize32 computes Dequantize32Reference with the fastest tier
// allowed, split over threads.
func Dequantize32(dst []float32, src []int32, scale float32, zp int32) {
	need("Dequantize32", "dst", len(dst), len(src))
	fn := pick(dequant32Variants).fn
	parallel.For(len(src), grain, func(s, e int) {
		fn(dst[s:e], src[s:e], scale, zp)
	})
}

// Quantize32Serial is Quantize32 on the calling goroutine, for callers
// that already split their work over threads (blocks of an elementwise
// chain).
func Quantize32Serial(dst []int32, src []float32, scale float32, zp, lo, hi int32) {
	need("Quantize32Serial", "dst", len(dst), len(src))
	check32("Quantize32Serial", zp, lo, hi)
	pick(quant32Variants).fn(dst[:len(src)], src, scale, zp, lo, hi)
}

// Dequantize32Serial is Dequantize32 on the calling goroutine.
func Dequantize32Serial(dst []float32, src []int32, scale float32, zp int32) {
	need("Dequantize32Serial", "dst", len(dst), len(src))
	pick(dequant32Variants).fn(dst[:len(src)], src, scale, zp)
}
