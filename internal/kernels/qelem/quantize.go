package qelem

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// quantFn quantizes len(src) floats into dst bytes (two's complement for
// int8): dst[i] = byte(qmath.Quantize(src[i], scale, zp, lo, hi)).
type quantFn func(dst []byte, src []float32, scale float32, zp, lo, hi int32)

// dequantFn dequantizes len(src) bytes (int8 when signed):
// dst[i] = qmath.Dequantize(value(src[i]), zp, scale).
type dequantFn func(dst []float32, src []byte, signed bool, scale float32, zp int32)

// quantVariants and dequantVariants list every tier compiled in, lowest
// first.
var (
	quantVariants   = append([]variant[quantFn]{{name: "generic", level: cpu.Generic, ok: true, fn: quantGeneric}}, quantArch...)
	dequantVariants = append([]variant[dequantFn]{{name: "generic", level: cpu.Generic, ok: true, fn: dequantGeneric}}, dequantArch...)
)

func quantGeneric(dst []byte, src []float32, scale float32, zp, lo, hi int32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = byte(qmath.Quantize(x, scale, zp, lo, hi))
	}
}

func dequantGeneric(dst []float32, src []byte, signed bool, scale float32, zp int32) {
	dst = dst[:len(src)]
	for i, b := range src {
		dst[i] = qmath.Dequantize(valueOf(b, signed), zp, scale)
	}
}

// QuantizeReference is the specification of Quantize:
//
//	dst[i] = T(qmath.Quantize(src[i], scale, zp, lo, hi))
//
// that is saturate(roundHalfEven(float32(src[i] / scale)) + zp) within
// [lo, hi], with NaN mapped to zp.
func QuantizeReference[T Byte](dst []T, src []float32, scale float32, zp, lo, hi int32) {
	need("QuantizeReference", "dst", len(dst), len(src))
	for i, x := range src {
		dst[i] = T(qmath.Quantize(x, scale, zp, lo, hi))
	}
}

// Quantize computes QuantizeReference with the fastest tier allowed,
// split over threads. lo..hi must lie in T's range; |zp| <= 1<<24.
func Quantize[T Byte](dst []T, src []float32, scale float32, zp, lo, hi int32) {
	need("Quantize", "dst", len(dst), len(src))
	checkRange[T]("Quantize", lo, hi)
	checkZero("Quantize", zp)
	fn := pick(quantVariants).fn
	d := bytesOf(dst)
	parallel.For(len(src), grain, func(s, e int) {
		fn(d[s:e], src[s:e], scale, zp, lo, hi)
	})
}

// QuantizeSerial is Quantize on the calling goroutine, for callers that
// already split their work over threads.
func QuantizeSerial[T Byte](dst []T, src []float32, scale float32, zp, lo, hi int32) {
	need("QuantizeSerial", "dst", len(dst), len(src))
	checkRange[T]("QuantizeSerial", lo, hi)
	checkZero("QuantizeSerial", zp)
	pick(quantVariants).fn(bytesOf(dst), src, scale, zp, lo, hi)
}

// DequantizeReference is the specification of Dequantize:
//
//	dst[i] = qmath.Dequantize(int32(src[i]), zp, scale) = float32(int32(src[i]) - zp) * scale
func DequantizeReference[T Byte](dst []float32, src []T, scale float32, zp int32) {
	need("DequantizeReference", "dst", len(dst), len(src))
	for i, q := range src {
		dst[i] = qmath.Dequantize(int32(q), zp, scale)
	}
}

// Dequantize computes DequantizeReference with the fastest tier allowed,
// split over threads.
func Dequantize[T Byte](dst []float32, src []T, scale float32, zp int32) {
	need("Dequantize", "dst", len(dst), len(src))
	fn := pick(dequantVariants).fn
	s8 := isSigned[T]()
	b := bytesOf(src)
	parallel.For(len(src), grain, func(s, e int) {
		fn(dst[s:e], b[s:e], s8, scale, zp)
	})
}
