package qdyn

import (
	"math"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
)

// variant is one implementation tier of the elementwise kernels. The
// variants table drives both dispatch and the tests.
type variant struct {
	name  string
	level cpu.Level
	// minMax and quantize have the semantics of minMaxGeneric and
	// quantizeGeneric.
	minMax   func(x []float32) (lo, hi float32, nan bool)
	quantize func(dst []uint8, src []float32, scale float32, zp, lo, hi int32)
}

// variants lists every tier compiled in, lowest first.
var variants = append([]variant{{name: "generic", level: cpu.Generic, minMax: minMaxGeneric, quantize: quantizeGeneric}}, archVariants...)

// pick returns the fastest tier cpu.Max allows.
func pick() *variant {
	v := &variants[0]
	for i := range variants {
		if variants[i].level <= cpu.Max {
			v = &variants[i]
		}
	}
	return v
}

var inf32 = float32(math.Inf(1))

// minMaxGeneric is the reference of MinMax on one contiguous run: Go's min
// and max propagate NaN, so a NaN anywhere makes lo NaN.
func minMaxGeneric(x []float32) (lo, hi float32, nan bool) {
	l0, l1, l2, l3 := inf32, inf32, inf32, inf32
	h0, h1, h2, h3 := -inf32, -inf32, -inf32, -inf32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		a, b, c, d := x[i], x[i+1], x[i+2], x[i+3]
		l0, h0 = min(l0, a), max(h0, a)
		l1, h1 = min(l1, b), max(h1, b)
		l2, h2 = min(l2, c), max(h2, c)
		l3, h3 = min(l3, d), max(h3, d)
	}
	for ; i < len(x); i++ {
		l0, h0 = min(l0, x[i]), max(h0, x[i])
	}
	lo, hi = min(l0, l1, l2, l3), max(h0, h1, h2, h3)
	return lo, hi, lo != lo || hi != hi
}

// scanGrain is the smallest run one goroutine scans or quantizes.
const scanGrain = 1 << 15

// MinMax returns the smallest and largest values of x and reports whether
// x holds a NaN (lo and hi are then unspecified). Zeros are returned as +0
// whatever their sign, so the result does not depend on the order of the
// scan; ±Inf are ordinary values. An empty x gives +Inf, -Inf. Long inputs
// are scanned in parallel chunks; min and max are exact, so the result
// does not depend on the thread count.
func MinMax(x []float32) (lo, hi float32, nan bool) {
	return MinMaxRows(1, len(x), x, len(x))
}

// MinMaxRows is MinMax over m rows of k values with row stride ld.
func MinMaxRows(m, k int, x []float32, ld int) (lo, hi float32, nan bool) {
	if m <= 0 || k <= 0 {
		return inf32, -inf32, false
	}
	if len(x) < (m-1)*ld+k {
		panic("qdyn: MinMaxRows: x too short for its shape")
	}
	v := pick()
	if ld == k {
		x = x[:m*k]
		m, k = 1, m*k
	}
	n := m * k
	chunks := 1
	if t := parallel.NumThreads(); t > 1 && n >= 2*scanGrain {
		chunks = min(4*t, n/scanGrain)
	}
	if chunks <= 1 {
		lo, hi, nan = inf32, -inf32, false
		for r := 0; r < m; r++ {
			l, h, bad := v.minMax(x[r*ld : r*ld+k])
			lo, hi, nan = min(lo, l), max(hi, h), nan || bad
		}
		return lo + 0, hi + 0, nan
	}
	type part struct {
		lo, hi float32
		nan    bool
	}
	parts := make([]part, chunks)
	per := (n + chunks - 1) / chunks
	parallel.For(chunks, 1, func(s, e int) {
		for c := s; c < e; c++ {
			p := part{inf32, -inf32, false}
			for i := c * per; i < min((c+1)*per, n); {
				r, col := i/k, i%k
				end := min(k, col+min((c+1)*per, n)-i)
				l, h, bad := v.minMax(x[r*ld+col : r*ld+end])
				p = part{min(p.lo, l), max(p.hi, h), p.nan || bad}
				i += end - col
			}
			parts[c] = p
		}
	})
	lo, hi = inf32, -inf32
	for _, p := range parts {
		lo, hi, nan = min(lo, p.lo), max(hi, p.hi), nan || p.nan
	}
	return lo + 0, hi + 0, nan
}

// quantizeGeneric is the reference of Quantize: qmath.Quantize, element by
// element.
func quantizeGeneric(dst []uint8, src []float32, scale float32, zp, lo, hi int32) {
	for i, x := range src {
		dst[i] = uint8(qmath.Quantize(x, scale, zp, lo, hi))
	}
}

// Quantize sets dst[i] = saturate(roundHalfEven(src[i]/scale) + zp) within
// [lo, hi] (qmath.Quantize: the division in float32, NaN mapping to zp),
// for a uint8 range 0 <= lo <= zp <= hi <= 255. Long inputs are quantized
// in parallel; each element is independent.
func Quantize(dst []uint8, src []float32, scale float32, zp, lo, hi int32) {
	if len(dst) < len(src) {
		panic("qdyn: Quantize: dst shorter than src")
	}
	if lo < 0 || hi > 255 || zp < lo || zp > hi {
		panic("qdyn: Quantize: need 0 <= lo <= zp <= hi <= 255")
	}
	v := pick()
	if len(src) <= scanGrain {
		v.quantize(dst, src, scale, zp, lo, hi)
		return
	}
	parallel.For(len(src), scanGrain, func(s, e int) {
		v.quantize(dst[s:e], src[s:e], scale, zp, lo, hi)
	})
}

// QuantizeRows quantizes m rows of k values (row stride ldx) into dst,
// packed as m×k, with Quantize's semantics.
func QuantizeRows(m, k int, x []float32, ldx int, dst []uint8, scale float32, zp, lo, hi int32) {
	if m <= 0 || k <= 0 {
		return
	}
	if len(x) < (m-1)*ldx+k || len(dst) < m*k {
		panic("qdyn: QuantizeRows: x or dst too short for its shape")
	}
	if ldx == k {
		Quantize(dst[:m*k], x[:m*k], scale, zp, lo, hi)
		return
	}
	if lo < 0 || hi > 255 || zp < lo || zp > hi {
		panic("qdyn: QuantizeRows: need 0 <= lo <= zp <= hi <= 255")
	}
	v := pick()
	grain := max(1, scanGrain/k)
	parallel.For(m, grain, func(s, e int) {
		for r := s; r < e; r++ {
			v.quantize(dst[r*k:(r+1)*k], x[r*ldx:r*ldx+k], scale, zp, lo, hi)
		}
	})
}
