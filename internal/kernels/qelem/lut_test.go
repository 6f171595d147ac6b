package qelem

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
)

func TestLookupVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	var tab Table
	for i := range tab {
		tab[i] = byte(r.IntN(256))
	}
	sizes := append(append([]int(nil), tailSizes...), 191, 192, 193, 255, 256, 257)
	for _, v := range lutVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, n := range sizes {
				off := r.IntN(4)
				src := randBytes(r, n)
				got, all := guarded(n, off, byte(guardByte))
				v.fn(got, src, &tab)
				for i, b := range src {
					if got[i] != tab[b] {
						t.Fatalf("n=%d: t[%d] gave %d, want %d", n, b, got[i], tab[b])
					}
				}
				checkGuards(t, fmt.Sprintf("n=%d", n), all, off, n, byte(guardByte))
				// In place.
				cp := append([]byte(nil), src...)
				v.fn(cp, cp, &tab)
				for i, b := range src {
					if cp[i] != tab[b] {
						t.Fatalf("in place n=%d: element %d wrong", n, i)
					}
				}
			}
		})
	}
}

func TestTables(t *testing.T) {
	// Signed table: entry byte(q) holds f(q).
	abs := NewTable[int8](func(q int32) int32 { return min(max(q, -q), 127) })
	src := []int8{-128, -1, 0, 5, 127}
	got := make([]int8, len(src))
	forLevels(t, func(t *testing.T) {
		for _, lookup := range []func(dst, src []int8, t *Table){Lookup[int8], LookupSerial[int8]} {
			clear(got)
			lookup(got, src, abs)
			for i, w := range []int8{127, 1, 0, 5, 127} {
				if got[i] != w {
					t.Errorf("abs(%d) = %d, want %d", src[i], got[i], w)
				}
			}
		}
	})
	// Requantization from (0.1, 128) to (0.2, 10): y = RNE((q-128)*0.1/0.2) + 10.
	rq := RequantizeTable[uint8](0.1, 128, 0.2, 10, 0, 255)
	for _, c := range [][2]int32{{128, 10}, {129, 10}, {130, 11}, {131, 12}, {0, 0}, {255, 74}} {
		want := qmath.Quantize(qmath.Dequantize(c[0], 128, 0.1), 0.2, 10, 0, 255)
		if int32(rq[c[0]]) != want || want != c[1] {
			t.Errorf("requant(%d) = %d, formula %d, hand %d", c[0], rq[c[0]], want, c[1])
		}
	}
}
