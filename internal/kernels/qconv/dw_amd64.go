//go:build !purego

package qconv

import (
	"golang.org/x/sys/cpu"

	qcpu "github.com/quanta-go/quanta/internal/cpu"
)

// dwPlaneVNNI computes one channel plane of a depthwise convolution from a
// padded input plane (padding holds za), 16 outputs at a time: for each
// output row r < oh and column o < ow,
//
//	acc = init + sum over kh' < kh, g < groups, t < 4 of
//	      int32(src[r*rowStep + kh'*dh*pitch + idx[g*64 + (o%16)*4 + t] + (o/16)*colStep]) *
//	      int32(int8(w[kh'*groups+g] >> (8*t)))
//	dst[r*ow+o] = byte(int32(roundHalfEven(min(max(float32(acc)*mult, lo), hi))) + zp)
//
// idx holds 128 bytes (two groups of 16 outputs × 4 taps, byte offsets
// below 64); w holds kh*groups packed tap quadruples. The source may be read
// up to 64 bytes past the last tap. Requires AVX-512 VBMI and VNNI.
//
//go:noescape
func dwPlaneVNNI(src *uint8, pitch, rowStep, colStep, oh, ow, kh, dh int, idx *byte, groups int, w *int32, init int32, mult float32, zp int32, lo, hi float32, dst *uint8)

// dwPlane is the assembly plane kernel (nil where there is none).
var dwPlane = dwPlaneVNNI

// transposeBlock is transpose16 where AVX-512 allows it (checked per
// call, since tests lower cpu.Max), else nil.
var transposeBlock = func() func(src *byte, ss int, dst *byte, ds int) {
	if qcpu.Hardware < qcpu.AVX512 {
		return nil
	}
	return transpose16
}()

// pixelRows3 and pixelRows4 are interleave3 and interleave4 where AVX-512
// allows them (checked per call with useTranspose, since tests lower
// cpu.Max), else nil.
var pixelRows3, pixelRows4 = func() (func(src *byte, rs, n int, dst *byte, pad byte), func(src *byte, rs, n int, dst *byte)) {
	if qcpu.Hardware < qcpu.AVX512 {
		return nil, nil
	}
	return interleave3, interleave4
}()

// haveDWVNNI reports whether the CPU can run dwPlaneVNNI.
var haveDWVNNI = qcpu.Hardware >= qcpu.AVX512VNNI && cpu.X86.HasAVX512VBMI

func dwAsmLevel() (qcpu.Level, bool) { return qcpu.AVX512VNNI, haveDWVNNI }
