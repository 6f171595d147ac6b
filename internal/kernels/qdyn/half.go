package qdyn

import "math"

// Float32ToFloat16 rounds f to the nearest IEEE 754 binary16 value, ties
// to even, and returns its bits: magnitudes from 65520 up become ±Inf,
// results below the normal range are exact subnormals (or ±0), and NaN
// stays NaN (quiet, keeping the top 10 payload bits). It is the
// conversion of F16C's vcvtps2ph under the default rounding mode, and of
// PyTorch's at::Half.
func Float32ToFloat16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff {
		if mant != 0 {
			return sign | 0x7e00 | uint16(mant>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 31 {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): units of 2^-24 are m >> (14 - e).
		shift := uint32(14 - e)
		if shift > 24 {
			return sign
		}
		m := mant | 0x800000
		h := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // may carry into the smallest normal, correctly
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, correctly
	}
	return sign | uint16(h)
}

// Float16ToFloat32 returns the float32 value of the binary16 bits h
// (exact: every half is a float32); NaN payloads are kept.
func Float16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	case 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// Float32sToFloat16 converts src into dst (len(dst) >= len(src)) with
// Float32ToFloat16.
func Float32sToFloat16(dst []uint16, src []float32) {
	dst = dst[:len(src)]
	for i, f := range src {
		dst[i] = Float32ToFloat16(f)
	}
}

// Float16sToFloat32 converts src into dst (len(dst) >= len(src)) with
// Float16ToFloat32.
func Float16sToFloat32(dst []float32, src []uint16) {
	dst = dst[:len(src)]
	for i, h := range src {
		dst[i] = Float16ToFloat32(h)
	}
}
