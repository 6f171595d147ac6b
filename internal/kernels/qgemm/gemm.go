package qgemm

import (
	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// variant is one implementation tier. The variants table drives both
// dispatch and the tests, so no tier can exist untested.
type variant struct {
	name  string
	level cpu.Level
	run   func(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue)
}

// variants lists every tier compiled in, lowest first.
var variants = append([]variant{{name: "generic", level: cpu.Generic, run: runGeneric}}, archVariants...)

// pick returns the fastest tier allowed by cpu.Max.
func pick() *variant {
	v := &variants[0]
	for i := range variants {
		if variants[i].level <= cpu.Max {
			v = &variants[i]
		}
	}
	return v
}

// epilogue says what to do with finished accumulators: exactly one of rq
// (requantize into u8 or s8), dq (dequantize into f32) or neither (copy
// into s32).
type epilogue struct {
	rq  *Requant
	dq  *Dequant
	u8  []uint8
	s8  []int8
	f32 []float32
	s32 []int32
	ldc int
}

// emitRow applies the epilogue to accumulators acc of row i, channels
// j0..j0+len(acc), with the reference arithmetic.
func (e *epilogue) emitRow(i, j0 int, acc []int32) {
	switch {
	case e.rq != nil && e.u8 != nil:
		row := e.u8[i*e.ldc+j0:]
		for t, v := range acc {
			row[t] = uint8(e.rq.apply(v, j0+t))
		}
	case e.rq != nil:
		row := e.s8[i*e.ldc+j0:]
		for t, v := range acc {
			row[t] = int8(e.rq.apply(v, j0+t))
		}
	case e.dq != nil:
		row := e.f32[i*e.ldc+j0:]
		for t, v := range acc {
			row[t] = e.dq.apply(v, j0+t)
		}
	default:
		copy(e.s32[i*e.ldc+j0:], acc)
	}
}

// GemmS32 computes the int32 accumulators of ReferenceS32 into c (M×N,
// stride ldc).
func GemmS32(m int, a []uint8, lda int, za int32, p *Packed, c []int32, ldc int) {
	checkA("GemmS32", m, p.K, len(a), lda)
	pick().run(m, a, lda, za, p, &epilogue{s32: c, ldc: ldc})
}

// GemmU8 computes ReferenceU8: int32 accumulation, then requantization to
// uint8 with r.
func GemmU8(m int, a []uint8, lda int, za int32, p *Packed, r *Requant, c []uint8, ldc int) {
	checkA("GemmU8", m, p.K, len(a), lda)
	pick().run(m, a, lda, za, p, &epilogue{rq: r, u8: c, ldc: ldc})
}

// GemmS8 is GemmU8 with int8 outputs (r's range must lie in -128..127).
func GemmS8(m int, a []uint8, lda int, za int32, p *Packed, r *Requant, c []int8, ldc int) {
	checkA("GemmS8", m, p.K, len(a), lda)
	pick().run(m, a, lda, za, p, &epilogue{rq: r, s8: c, ldc: ldc})
}

// GemmF32 computes ReferenceF32: int32 accumulation, then the Dequant
// epilogue to float32 (dynamic quantization).
func GemmF32(m int, a []uint8, lda int, za int32, p *Packed, d *Dequant, c []float32, ldc int) {
	checkA("GemmF32", m, p.K, len(a), lda)
	pick().run(m, a, lda, za, p, &epilogue{dq: d, f32: c, ldc: ldc})
}

// S8ToU8 converts int8 activations with zero point za to the equivalent
// uint8 activations (a+128, zero point za+128): (a-za) is unchanged, so
// every U8 kernel serves int8 activations exactly.
func S8ToU8(dst []uint8, src []int8) {
	for i, v := range src {
		dst[i] = uint8(int32(v) + 128)
	}
}

const blockN = 64

// runGeneric is the plain-Go tier: accumulators tile by tile, work split
// over rows, or over column blocks when there are few rows, never over K.
func runGeneric(m int, a []uint8, lda int, za int32, p *Packed, e *epilogue) {
	if m == 0 || p.N == 0 {
		return
	}
	nb := (p.N + blockN - 1) / blockN
	tiles := m * nb
	grain := 1
	if work := max(p.K, 1) * blockN; work < 1<<14 {
		grain = (1<<14 + work - 1) / work
	}
	parallel.For(tiles, grain, func(s, end int) {
		var buf [blockN]int32
		for t := s; t < end; t++ {
			i, jb := t/nb, t%nb
			j0 := jb * blockN
			j1 := min(j0+blockN, p.N)
			acc := buf[:j1-j0]
			rowA := a[i*lda : i*lda+p.K]
			var sumA int32
			for _, v := range rowA {
				sumA += int32(v)
			}
			dotRows(rowA, p, j0, j1, acc)
			k := int32(p.K)
			for t := range acc {
				j := j0 + t
				zw := p.zp(j)
				acc[t] += -zw*sumA - za*p.rowSum[j] + k*za*zw
			}
			e.emitRow(i, j0, acc)
		}
	})
}

// dotRows sets acc[j-j0] = sum_p a[p]*w[j][p] for j in [j0, j1).
func dotRows(a []uint8, p *Packed, j0, j1 int, acc []int32) {
	k := p.K
	for j := j0; j < j1; j++ {
		w := p.w[j*k : j*k+k]
		var s0, s1, s2, s3 int32
		q := 0
		for ; q+4 <= k; q += 4 {
			s0 += int32(a[q]) * int32(w[q])
			s1 += int32(a[q+1]) * int32(w[q+1])
			s2 += int32(a[q+2]) * int32(w[q+2])
			s3 += int32(a[q+3]) * int32(w[q+3])
		}
		for ; q < k; q++ {
			s0 += int32(a[q]) * int32(w[q])
		}
		acc[j-j0] = s0 + s1 + s2 + s3
	}
}
