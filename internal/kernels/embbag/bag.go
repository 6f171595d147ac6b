package embbag

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/cpu"
	"github.com/quanta-go/quanta/internal/parallel"
)

// variant is one implementation tier of the row kernel. The variants
// table drives both dispatch and the tests.
type variant struct {
	name  string
	level cpu.Level
	// acc adds row r of t, with scale s and bias b, to out[:t.Dim] with
	// accGeneric's arithmetic.
	acc func(t *Table, r int, s, b float32, out []float32)
}

// variants lists every tier compiled in, lowest first.
var variants = append([]variant{{name: "generic", level: cpu.Generic, acc: accGeneric}}, archVariants...)

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

// accGeneric is the specification of one index of a bag:
//
//	out[j] = float32(float64(s)*float64(q[j]) + float64(out[j]+b))
//
// (the product is exact in float64, so fusing it changes nothing).
func accGeneric(t *Table, r int, s, b float32, out []float32) {
	accCodes(t, r, 0, s, b, out)
}

// accCodes is accGeneric from element j0 on.
func accCodes(t *Table, r, j0 int, s, b float32, out []float32) {
	row := t.Row(r)
	sd := float64(s)
	if t.Bits == 4 {
		for j := j0; j < t.Dim; j++ {
			q := row[j/2] >> (4 * (j % 2)) & 15
			out[j] = float32(sd*float64(q) + float64(out[j]+b))
		}
		return
	}
	for j := j0; j < t.Dim; j++ {
		out[j] = float32(sd*float64(row[j]) + float64(out[j]+b))
	}
}

// Mode is how a bag reduces its rows.
type Mode uint8

const (
	// Sum adds the rows, each scaled by its per-sample weight if any.
	Sum Mode = iota
	// Mean divides the sum by the number of rows (float32 division).
	Mean
	// Max takes the elementwise maximum of the rows' values (the first
	// one on ties; comparisons with >).
	Max
)

// String returns the mode's PyTorch name.
func (m Mode) String() string {
	switch m {
	case Sum:
		return "sum"
	case Mean:
		return "mean"
	case Max:
		return "max"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// prefetchAhead is how many indices ahead Bag asks the CPU for a row:
// rows are scattered over a table larger than the caches, and a gather
// waits on memory unless the next rows are already on their way.
const prefetchAhead = 4

// Index is the integer type of indices and offsets.
type Index interface{ ~int32 | ~int64 }

// Bag reduces bags of rows of t into out, len(offsets) rows of t.Dim
// values: bag b holds the rows idx[offsets[b]:offsets[b+1]], the last bag
// ending at end (len(idx) for PyTorch's default, offsets[B] with
// include_last_offset). An empty bag gives zeros. weights, if not nil,
// holds one per-sample weight per index (Sum only): the row's scale and
// bias are multiplied by it in float32 first, as PyTorch does.
//
// Sum accumulates with the package's exact formula, index by index in
// order; Mean divides that sum by the bag's length; Max compares the
// values a one-index bag would give. Offsets must be non-decreasing within
// [0, end], end <= len(idx), and indices in [0, t.Rows): callers validate
// them, and Bag panics otherwise. Bags are split across goroutines, so
// results do not depend on the thread count.
func Bag[I Index](t *Table, mode Mode, idx []I, offsets []I, end int, weights []float32, out []float32) {
	nb, d := len(offsets), t.Dim
	if mode > Max {
		panic(fmt.Sprintf("embbag: Bag: undefined mode %d", int(mode)))
	}
	if weights != nil && (mode != Sum || len(weights) < end) {
		panic("embbag: Bag: per-sample weights need Sum and one weight per index")
	}
	if end > len(idx) || len(out) < nb*d {
		panic(fmt.Sprintf("embbag: Bag: %d indices, end %d, output %d for %d bags of %d", len(idx), end, len(out), nb, d))
	}
	for b := 0; b < nb; b++ {
		lo, hi := int(offsets[b]), end
		if b+1 < nb {
			hi = int(offsets[b+1])
		}
		if lo < 0 || lo > hi || hi > end {
			panic(fmt.Sprintf("embbag: Bag: bag %d spans [%d, %d) outside [0, %d]", b, lo, hi, end))
		}
	}
	checkIndices("Bag", t, idx[:end])
	v := pick()
	work := max(1, end*d/max(1, nb))
	grain := max(1, (1<<14)/work)
	parallel.For(nb, grain, func(s, e int) {
		var tmp []float32
		if mode == Max {
			tmp = make([]float32, d)
		}
		for b := s; b < e; b++ {
			o := out[b*d : (b+1)*d]
			clear(o)
			lo, hi := int(offsets[b]), end
			if b+1 < nb {
				hi = int(offsets[b+1])
			}
			for n := lo; n < hi; n++ {
				r := int(idx[n])
				if n+prefetchAhead < end {
					prefetchRow(t, int(idx[n+prefetchAhead]))
				}
				sc, bi := t.ScaleBias(r)
				switch {
				case weights != nil:
					w := weights[n]
					v.acc(t, r, float32(w*sc), float32(w*bi), o)
				case mode == Max:
					clear(tmp)
					v.acc(t, r, sc, bi, tmp)
					if n == lo {
						copy(o, tmp)
						continue
					}
					for j, x := range tmp {
						if x > o[j] {
							o[j] = x
						}
					}
				default:
					v.acc(t, r, sc, bi, o)
				}
			}
			if mode == Mean && hi > lo {
				c := float32(hi - lo)
				for j := range o {
					o[j] /= c
				}
			}
		}
	})
}

// Lookup writes the values of rows idx into out (len(idx) rows of t.Dim),
// each as Table.Dequantize gives it (PyTorch's quantized embedding). It
// panics on an index outside [0, t.Rows).
func Lookup[I Index](t *Table, idx []I, out []float32) {
	d := t.Dim
	if len(out) < len(idx)*d {
		panic("embbag: Lookup: output too short")
	}
	checkIndices("Lookup", t, idx)
	v := pick()
	parallel.For(len(idx), max(1, (1<<14)/max(1, d)), func(s, e int) {
		for i := s; i < e; i++ {
			r := int(idx[i])
			if i+prefetchAhead < e {
				prefetchRow(t, int(idx[i+prefetchAhead]))
			}
			o := out[i*d : (i+1)*d]
			clear(o)
			sc, bi := t.ScaleBias(r)
			v.acc(t, r, sc, bi, o)
		}
	})
}

// checkIndices panics, on the calling goroutine, if an index lies outside
// [0, t.Rows).
func checkIndices[I Index](op string, t *Table, idx []I) {
	for _, r := range idx {
		if r < 0 || int64(r) >= int64(t.Rows) {
			panic(fmt.Sprintf("embbag: %s: index %d outside [0, %d)", op, r, t.Rows))
		}
	}
}
