package qgemm

import "github.com/quanta-go/quanta/internal/kernels/qmath"

// RequantizeRow requantizes accumulators to bytes: uint8 when lo >= 0, else
// int8 stored in two's complement: dst[j] = saturate(roundHalfEven(float32(src[j]) *
// mult[j]) + zp) within [lo, hi]. It uses the fastest tier allowed and
// equals qmath.Requantize element by element.
func RequantizeRow(src []int32, mult []float32, zp, lo, hi int32, dst []byte) {
	if len(mult) < len(src) || len(dst) < len(src) {
		panic("qgemm: RequantizeRow: mult or dst shorter than src")
	}
	if len(src) == 0 {
		return
	}
	if requantRowArch(src, mult, zp, lo, hi, dst) {
		return
	}
	for j, v := range src {
		dst[j] = byte(qmath.Requantize(v, mult[j], zp, lo, hi))
	}
}
