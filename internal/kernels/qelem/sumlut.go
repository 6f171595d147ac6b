package qelem

import "github.com/quanta-go/quanta/internal/cpu"

// SumTables is the number of tables SumLookups sums at once: five bytes
// of a value below 2^40.
const SumTables = 5

// SumLookupsReference is the specification of SumLookups: for every
// table k, the sum over the bytes b of src of tabs[k][b].
func SumLookupsReference(src []byte, tabs *[SumTables]Table) [SumTables]uint64 {
	var sums [SumTables]uint64
	for k := range tabs {
		for _, b := range src {
			sums[k] += uint64(tabs[k][b])
		}
	}
	return sums
}

// SumLookups computes SumLookupsReference with the fastest tier allowed,
// on the calling goroutine. A value table of up to 40 bits split into its
// bytes, one table per byte, sums the values of every byte of src exactly
// (the sum of table k weighs 256^k).
func SumLookups(src []byte, tabs *[SumTables]Table) [SumTables]uint64 {
	var sums [1][SumTables]uint64
	SumLookupsRows(src, len(src), tabs, sums[:])
	return sums[0]
}

// sumRowsFn sets sums[r][k] to the sum over the rowLen bytes b of row r
// of src of tabs[k][b].
type sumRowsFn func(src []byte, rowLen int, tabs *[SumTables]Table, sums [][SumTables]uint64)

// sumRowsVariants lists every tier compiled in, lowest first.
var sumRowsVariants = append([]variant[sumRowsFn]{{name: "generic", level: cpu.Generic, ok: true, fn: sumRowsGeneric}}, sumRowsArch...)

func sumRowsGeneric(src []byte, rowLen int, tabs *[SumTables]Table, sums [][SumTables]uint64) {
	for r := range sums {
		row := src[r*rowLen : (r+1)*rowLen]
		for k := range tabs {
			t := &tabs[k]
			var s uint64
			for _, b := range row {
				s += uint64(t[b])
			}
			sums[r][k] = s
		}
	}
}

// SumLookupsRows is SumLookups on each of len(sums) consecutive rows of
// rowLen bytes of src (sums[r] for row r), on the calling goroutine: the
// vector tier loads the tables once for all rows.
func SumLookupsRows(src []byte, rowLen int, tabs *[SumTables]Table, sums [][SumTables]uint64) {
	need("SumLookupsRows", "src", len(src), rowLen*len(sums))
	if rowLen <= 0 || len(sums) == 0 {
		clear(sums)
		return
	}
	pick(sumRowsVariants).fn(src, rowLen, tabs, sums)
}

// SumLookupsVectorized reports whether SumLookups and SumLookupsRows run
// vector code on this CPU (under cpu.Max); their generic tier reads each
// byte once per table.
func SumLookupsVectorized() bool {
	return pick(sumRowsVariants).level > cpu.Generic
}
