package qelem

import (
	"math/rand/v2"
	"testing"
)

// randTables returns five random tables and five tables of 255 (the
// largest sums).
func randTables(r *rand.Rand) (rnd, full *[SumTables]Table) {
	rnd, full = new([SumTables]Table), new([SumTables]Table)
	for k := range rnd {
		for i := range rnd[k] {
			rnd[k][i] = byte(r.IntN(256))
			full[k][i] = 255
		}
	}
	return rnd, full
}

// TestSumLookups checks SumLookups (one row of SumLookupsRows) against
// the reference at every level on lengths around the 64-byte blocks, and
// on a hand-computed case.
func TestSumLookups(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	rnd, full := randTables(r)
	sizes := append(append([]int(nil), tailSizes...), 63, 64, 65, 127, 128, 129, 191, 192, 1000, 4099)
	// By hand: table k maps b to b>>k; bytes 1, 2, 3, 255.
	var shift [SumTables]Table
	for k := range shift {
		for b := range shift[k] {
			shift[k][b] = byte(b >> k)
		}
	}
	want := [SumTables]uint64{1 + 2 + 3 + 255, 0 + 1 + 1 + 127, 0 + 0 + 0 + 63, 31, 15}
	forLevels(t, func(t *testing.T) {
		for _, tabs := range []*[SumTables]Table{rnd, full} {
			for _, n := range sizes {
				src := randBytes(r, n)
				if got, want := SumLookups(src, tabs), SumLookupsReference(src, tabs); got != want {
					t.Fatalf("n=%d: sums %v, want %v", n, got, want)
				}
			}
		}
		if got := SumLookups([]byte{1, 2, 3, 255}, &shift); got != want {
			t.Errorf("SumLookups = %v, want %v", got, want)
		}
	})
}

// TestSumLookupsRowsVariants checks every tier of SumLookupsRows against
// SumLookupsReference row by row, for row lengths around the 64-byte
// blocks and several row counts, with random and all-255 tables.
func TestSumLookupsRowsVariants(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	rnd, full := randTables(r)
	for _, v := range sumRowsVariants {
		if !runnable(v) {
			continue
		}
		t.Run(v.name, func(t *testing.T) {
			for _, tabs := range []*[SumTables]Table{rnd, full} {
				for _, rowLen := range []int{1, 2, 48, 63, 64, 65, 127, 192, 288, 1000} {
					for _, rows := range []int{1, 3, 17} {
						src := randBytes(r, rowLen*rows)
						sums := make([][SumTables]uint64, rows)
						for i := range sums {
							sums[i] = [SumTables]uint64{7, 7, 7, 7, 7} // overwritten, not added to
						}
						v.fn(src, rowLen, tabs, sums)
						for i := range sums {
							if want := SumLookupsReference(src[i*rowLen:(i+1)*rowLen], tabs); sums[i] != want {
								t.Fatalf("rowLen %d rows %d: row %d sums %v, want %v", rowLen, rows, i, sums[i], want)
							}
						}
					}
				}
			}
		})
	}
}

// FuzzSumLookupsRows checks the fastest tier of SumLookupsRows against
// the reference.
func FuzzSumLookupsRows(f *testing.F) {
	f.Add(make([]byte, 192*3), uint8(192), uint64(1))
	f.Add([]byte{1, 2, 3, 4, 5, 6}, uint8(2), uint64(2))
	f.Fuzz(func(t *testing.T, src []byte, rowLen uint8, seed uint64) {
		if rowLen == 0 {
			return
		}
		rows := len(src) / int(rowLen)
		r := rand.New(rand.NewPCG(seed, 19))
		var tabs [SumTables]Table
		for k := range tabs {
			for i := range tabs[k] {
				tabs[k][i] = byte(r.IntN(256))
			}
		}
		sums := make([][SumTables]uint64, rows)
		SumLookupsRows(src, int(rowLen), &tabs, sums)
		for i := range sums {
			if want := SumLookupsReference(src[i*int(rowLen):(i+1)*int(rowLen)], &tabs); sums[i] != want {
				t.Fatalf("rowLen %d: row %d sums %v, want %v", rowLen, i, sums[i], want)
			}
		}
	})
}
