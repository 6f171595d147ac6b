// Package qmath is the one place that defines quanta's quantization
// arithmetic: rounding half to even, saturation, quantize and dequantize of
// single values, and requantization multipliers. Every generic kernel calls
// these functions and every assembly kernel mirrors them; the tests pin them.
//
// The semantics are DESIGN.md's "Numerics":
//
//	quantize:    q = saturate(roundHalfEven(float32(x / scale)) + zeroPoint)
//	dequantize:  x = float32(q - zeroPoint) * scale
//	requantize:  y = saturate(roundHalfEven(float32(acc) * M) + zy),  M = float32(float32(sa*sw)/sy)
package qmath

import "math"

// RoundHalfEven rounds v to the nearest integer, ties to even, returning it
// as float32 (exact for every float32). It is nearbyint under the default
// rounding mode, as used by PyTorch, ONNX and ONNX Runtime.
func RoundHalfEven(v float32) float32 {
	return float32(math.RoundToEven(float64(v)))
}

// ClampRound returns roundHalfEven(v)+zp saturated to [lo, hi]. NaN maps to
// zp (then saturated). Values too large for int32 saturate.
func ClampRound(v float32, zp, lo, hi int32) int32 {
	if v != v {
		return Saturate(int64(zp), lo, hi)
	}
	r := math.RoundToEven(float64(v))
	// Clamp in float before converting so huge values cannot overflow.
	if r > float64(hi)-float64(zp) {
		return hi
	}
	if r < float64(lo)-float64(zp) {
		return lo
	}
	return int32(r) + zp
}

// Saturate clamps v to [lo, hi].
func Saturate(v int64, lo, hi int32) int32 {
	if v < int64(lo) {
		return lo
	}
	if v > int64(hi) {
		return hi
	}
	return int32(v)
}

// Quantize maps a float to the integer grid: saturate(RNE(x/scale)+zp).
// The division is done in float32, as ONNX QuantizeLinear specifies.
func Quantize(x, scale float32, zp, lo, hi int32) int32 {
	return ClampRound(x/scale, zp, lo, hi)
}

// QuantizeMulInv is PyTorch's form of Quantize: x * float32(1/scale)
// instead of x / scale. The two differ by one step only when x/scale lies
// within an ulp of a half.
func QuantizeMulInv(x, invScale float32, zp, lo, hi int32) int32 {
	return ClampRound(x*invScale, zp, lo, hi)
}

// Dequantize maps an integer back to float: float32(q-zp)*scale.
func Dequantize(q, zp int32, scale float32) float32 {
	return float32(q-zp) * scale
}

// Multiplier is the requantization multiplier M = float32(float32(sa*sw)/sy).
func Multiplier(sa, sw, sy float32) float32 {
	p := float32(sa * sw)
	return float32(p / sy)
}

// Requantize maps an int32 accumulator to the output grid:
// saturate(RNE(float32(acc)*m) + zy) within [lo, hi].
func Requantize(acc int32, m float32, zy, lo, hi int32) int32 {
	return ClampRound(float32(float32(acc)*m), zy, lo, hi)
}

// Range returns the integer range of an 8- or 32-bit quantized type:
// signed [-128, 127], unsigned [0, 255], or 32-bit signed.
func Range(signed bool, bits int) (lo, hi int32) {
	switch {
	case bits == 32:
		return math.MinInt32, math.MaxInt32
	case signed:
		return -(1 << (bits - 1)), 1<<(bits-1) - 1
	default:
		return 0, 1<<bits - 1
	}
}
