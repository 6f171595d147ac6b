//go:build !purego

package embbag

import "github.com/quanta-go/quanta/internal/cpu"

// acc8AVX512 adds 16*n16 8-bit codes to out with AVX-512:
//
//	for j < 16*n16:
//		out[j] = float32(s*float64(q[j]) + float64(out[j]+b))
//
// (out[j]+b in float32, the multiply-add in float64 with one rounding,
// which equals separate rounding since the product is exact).
//
//go:noescape
func acc8AVX512(out *float32, q *uint8, n16 int, s float64, b float32)

// acc4AVX512 is acc8AVX512 for 16*n16 4-bit codes packed two per byte,
// element 2i in the low nibble of q[i] and 2i+1 in the high nibble.
//
//go:noescape
func acc4AVX512(out *float32, q *uint8, n16 int, s float64, b float32)

// acc8AVX2 is acc8AVX512 for 8*n8 codes with AVX2 and FMA.
//
//go:noescape
func acc8AVX2(out *float32, q *uint8, n8 int, s float64, b float32)

// acc4AVX2 is acc4AVX512 (16*n16 codes) with AVX2 and FMA.
//
//go:noescape
func acc4AVX2(out *float32, q *uint8, n16 int, s float64, b float32)

// archVariants are the assembly tiers, lowest first.
var archVariants = []variant{
	{name: "avx2", level: cpu.AVX2, acc: acc256},
	{name: "avx512", level: cpu.AVX512, acc: acc512},
}

func acc512(t *Table, r int, s, b float32, out []float32) {
	n16 := t.Dim / 16
	if n16 > 0 {
		row := t.Row(r)
		_ = out[n16*16-1]
		if t.Bits == 4 {
			acc4AVX512(&out[0], &row[0], n16, float64(s), b)
		} else {
			acc8AVX512(&out[0], &row[0], n16, float64(s), b)
		}
	}
	accCodes(t, r, n16*16, s, b, out)
}

func acc256(t *Table, r int, s, b float32, out []float32) {
	row := t.Row(r)
	done := 0
	if t.Bits == 4 {
		if n16 := t.Dim / 16; n16 > 0 {
			_ = out[n16*16-1]
			acc4AVX2(&out[0], &row[0], n16, float64(s), b)
			done = n16 * 16
		}
	} else if n8 := t.Dim / 8; n8 > 0 {
		_ = out[n8*8-1]
		acc8AVX2(&out[0], &row[0], n8, float64(s), b)
		done = n8 * 8
	}
	accCodes(t, r, done, s, b, out)
}

// prefetch3 asks for the three cache lines from p on (a row about to be
// read); it has no architectural effect.
//
//go:noescape
func prefetch3(p *byte)

func prefetchRow(t *Table, r int) { prefetch3(&t.Data[r*t.RowBytes()]) }
