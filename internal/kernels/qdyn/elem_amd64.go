//go:build !purego

package qdyn

import "github.com/quanta-go/quanta/internal/cpu"

// minMaxAVX512 scans n floats at x with AVX-512:
//
//	lo, hi = +Inf, -Inf
//	for i < n: lo, hi = min(lo, x[i]), max(hi, x[i])
//	nan = some x[i] is NaN
//
// lo and hi are unspecified when nan is true; a zero may come back with
// either sign. n >= 0; the tail is read with a masked load.
//
//go:noescape
func minMaxAVX512(x *float32, n int) (lo, hi float32, nan bool)

// minMaxAVX2 is minMaxAVX512 over 8*n8 floats with AVX2.
//
//go:noescape
func minMaxAVX2(x *float32, n8 int) (lo, hi float32, nan bool)

// quantizeAVX512 quantizes n floats with AVX-512:
//
//	for i < n:
//		f := src[i] / scale          // float32 division
//		if f is NaN { f = 0 }
//		f = min(max(f, lo), hi)      // lo = qmin-zp, hi = qmax-zp
//		dst[i] = uint8(int32(roundHalfEven(f)) + zp)
//
// which equals qmath.Quantize(src[i], scale, zp, qmin, qmax): clamping to
// the integer bounds before rounding gives the same code as after. n >= 0;
// the tail uses masked loads and stores.
//
//go:noescape
func quantizeAVX512(dst *uint8, src *float32, n int, scale float32, zp int32, lo, hi float32)

// quantizeAVX2 is quantizeAVX512 over 8*n8 floats with AVX2.
//
//go:noescape
func quantizeAVX2(dst *uint8, src *float32, n8 int, scale float32, zp int32, lo, hi float32)

// archVariants are the assembly tiers, lowest first.
var archVariants = []variant{
	{name: "avx2", level: cpu.AVX2, minMax: minMax256, quantize: quantize256},
	{name: "avx512", level: cpu.AVX512, minMax: minMax512, quantize: quantize512},
}

func minMax512(x []float32) (lo, hi float32, nan bool) {
	if len(x) == 0 {
		return inf32, -inf32, false
	}
	return minMaxAVX512(&x[0], len(x))
}

func minMax256(x []float32) (lo, hi float32, nan bool) {
	n8 := len(x) / 8
	lo, hi = inf32, -inf32
	if n8 > 0 {
		lo, hi, nan = minMaxAVX2(&x[0], n8)
	}
	l, h, bad := minMaxGeneric(x[n8*8:])
	return min(lo, l), max(hi, h), nan || bad
}

func quantize512(dst []uint8, src []float32, scale float32, zp, lo, hi int32) {
	if len(src) == 0 {
		return
	}
	_ = dst[len(src)-1]
	quantizeAVX512(&dst[0], &src[0], len(src), scale, zp, float32(lo-zp), float32(hi-zp))
}

func quantize256(dst []uint8, src []float32, scale float32, zp, lo, hi int32) {
	n8 := len(src) / 8
	if n8 > 0 {
		_ = dst[n8*8-1]
		quantizeAVX2(&dst[0], &src[0], n8, scale, zp, float32(lo-zp), float32(hi-zp))
	}
	quantizeGeneric(dst[n8*8:len(src)], src[n8*8:], scale, zp, lo, hi)
}
