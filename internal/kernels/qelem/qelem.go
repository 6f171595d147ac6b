// Package qelem holds quanta's 8-bit elementwise, pooling, resizing and
// lookup-table kernels: quantize and dequantize of float32 slices, add and
// mul with their own output qparams, 256-entry lookup tables for unary ops
// and requantization, max/average/adaptive pooling, and nearest and
// bilinear upsampling. Slices go in and out; element types are uint8
// (quint8) or int8 (qint8), both through the Byte constraint.
//
// Every kernel has a plain-Go reference (the *Reference functions, always
// compiled) written with package qmath, which is the specification; every
// faster path equals it bit for bit, for every input, and results never
// depend on the thread count (work is split over outputs only). The
// assembly tiers are listed in one variant table per kernel family, which
// drives both dispatch (the fastest tier allowed by cpu.Max) and the tests.
//
// Kernels panic with a "qelem: ..." message on programmer errors (short
// slices, ranges that do not fit the element type).
package qelem

import (
	"fmt"
	"unsafe"

	"github.com/quanta-go/quanta/internal/cpu"
)

// Byte is the element type of 8-bit quantized data: uint8 for quint8,
// int8 for qint8.
type Byte interface{ ~uint8 | ~int8 }

// isSigned reports whether T is a signed type.
func isSigned[T Byte]() bool {
	var z T
	return z-1 < 0
}

// typeRange returns T's full range.
func typeRange[T Byte]() (lo, hi int32) {
	if isSigned[T]() {
		return -128, 127
	}
	return 0, 255
}

// checkRange panics unless lo <= hi lie in T's range.
func checkRange[T Byte](op string, lo, hi int32) {
	tl, th := typeRange[T]()
	if lo < tl || hi > th || lo > hi {
		panic(fmt.Sprintf("qelem: %s: range %d..%d does not fit %d..%d", op, lo, hi, tl, th))
	}
}

// checkZero panics when an output zero point is so large that the
// kernels' float32 bounds lo-zp, hi-zp would not be exact.
func checkZero(op string, zp int32) {
	if zp < -1<<24 || zp > 1<<24 {
		panic(fmt.Sprintf("qelem: %s: zero point %d out of range", op, zp))
	}
}

// bytesOf views s as bytes (int8 values in two's complement).
func bytesOf[T Byte](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s))
}

// valueOf returns the integer value of a stored byte.
func valueOf(b byte, signed bool) int32 {
	if signed {
		return int32(int8(b))
	}
	return int32(b)
}

// need panics when a slice is shorter than n.
func need(op, name string, have, n int) {
	if have < n {
		panic(fmt.Sprintf("qelem: %s: %s has %d elements, need %d", op, name, have, n))
	}
}

// variant is one implementation tier of a kernel family. The family's
// table lists every tier compiled in, lowest first; it drives dispatch
// and the tests, so no tier can exist untested.
type variant[F any] struct {
	name  string
	level cpu.Level
	// ok is false when the CPU lacks a feature the tier needs beyond its
	// level (e.g. AVX-512 VBMI).
	ok bool
	fn F
}

// pick returns the fastest tier this CPU may run under cpu.Max.
func pick[F any](vs []variant[F]) *variant[F] {
	v := &vs[0]
	for i := range vs {
		if vs[i].ok && vs[i].level <= cpu.Max {
			v = &vs[i]
		}
	}
	return v
}

// grain is the minimum number of elements one goroutine handles in the
// elementwise kernels.
const grain = 1 << 16
