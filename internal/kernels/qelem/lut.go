package qelem

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// Table is a 256-entry lookup table of an 8-bit unary op: entry b is the
// output for the input stored as byte b (int8 values in two's complement),
// and holds the output the same way. A table built from an op's scalar
// definition is that op exactly, for every input.
type Table [256]byte

// NewTable builds the table of f over every value q of T:
// t[byte(q)] = byte(f(q)). f must return values in T's range.
func NewTable[T Byte](f func(q int32) int32) *Table {
	lo, hi := typeRange[T]()
	t := new(Table)
	for q := lo; q <= hi; q++ {
		v := f(q)
		if v < lo || v > hi {
			panic(fmt.Sprintf("qelem: NewTable: f(%d) = %d outside %d..%d", q, v, lo, hi))
		}
		t[byte(q)] = byte(v)
	}
	return t
}

// RequantizeTable is the table of requantization from (sIn, zIn) to
// (sOut, zOut) within [lo, hi]:
//
//	y = qmath.Quantize(qmath.Dequantize(q, zIn, sIn), sOut, zOut, lo, hi)
//
// the reference model's dequantize then quantize (quantized cat, and
// changes of qparams in general).
func RequantizeTable[T Byte](sIn float32, zIn int32, sOut float32, zOut, lo, hi int32) *Table {
	checkRange[T]("RequantizeTable", lo, hi)
	return NewTable[T](func(q int32) int32 {
		return qmath.Quantize(qmath.Dequantize(q, zIn, sIn), sOut, zOut, lo, hi)
	})
}

// lutFn maps len(dst) bytes through t.
type lutFn func(dst, src []byte, t *Table)

// lutVariants lists every tier compiled in, lowest first.
var lutVariants = append([]variant[lutFn]{{name: "generic", level: cpu.Generic, ok: true, fn: lutGeneric}}, lutArch...)

func lutGeneric(dst, src []byte, t *Table) {
	src = src[:len(dst)]
	for i, b := range src {
		dst[i] = t[b]
	}
}

// LookupReference is the specification of Lookup: dst[i] = t[byte(src[i])]
// read back as T.
func LookupReference[T Byte](dst, src []T, t *Table) {
	need("LookupReference", "src", len(src), len(dst))
	for i := range dst {
		dst[i] = T(t[byte(src[i])])
	}
}

// Lookup computes LookupReference with the fastest tier allowed, split
// over threads. dst and src may be the same slice.
func Lookup[T Byte](dst, src []T, t *Table) {
	need("Lookup", "src", len(src), len(dst))
	fn := pick(lutVariants).fn
	d, s := bytesOf(dst), bytesOf(src)
	parallel.For(len(dst), 4*grain, func(a, b int) {
		fn(d[a:b], s[a:b], t)
	})
}

// LookupSerial is Lookup on the calling goroutine, for callers that
// already split their work over threads (a table per row or channel).
func LookupSerial[T Byte](dst, src []T, t *Table) {
	need("LookupSerial", "src", len(src), len(dst))
	pick(lutVariants).fn(bytesOf(dst), bytesOf(src), t)
}
