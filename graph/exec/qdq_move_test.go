package exec

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/tensor"
)

// TestQDQMove checks data movement, MaxPool, Concat, AveragePool,
// GlobalAveragePool and Resize between DequantizeLinear and
// QuantizeLinear against the literal graph bit for bit, with the output
// qparams equal to the input's (bytes moved as they are) and different
// (a requantizing table, or the float core's quantization).
func TestQDQMove(t *testing.T) {
	type build func(b *qb, x *graph.Value) []*graph.Value
	one := func(op string, extra func(b *qb) []*graph.Value, attrs map[string]*graph.Attr) build {
		return func(b *qb, x *graph.Value) []*graph.Value {
			in := []*graph.Value{x}
			if extra != nil {
				in = append(in, extra(b)...)
			}
			return []*graph.Value{b.node(op, in, attrs)}
		}
	}
	ints := func(v ...int64) func(b *qb) []*graph.Value {
		return func(b *qb) []*graph.Value { return []*graph.Value{b.ints(v...)} }
	}
	cases := []struct {
		name    string
		f       build
		pattern string
		shape   []int
	}{
		{name: "reshape", f: one("Reshape", ints(2, -1), nil), pattern: "QMoveReshape"},
		{name: "transpose", f: one("Transpose", nil, map[string]*graph.Attr{"perm": graph.AInts(0, 2, 3, 1)}), pattern: "QMoveTranspose"},
		{name: "flatten", f: one("Flatten", nil, map[string]*graph.Attr{"axis": graph.AInt(2)}), pattern: "QMoveFlatten"},
		{name: "unsqueeze", f: one("Unsqueeze", ints(0), nil), pattern: "QMoveUnsqueeze"},
		{name: "squeeze", f: one("Squeeze", ints(0), nil), pattern: "QMoveSqueeze", shape: []int{1, 3, 5, 4}},
		{name: "slice", f: one("Slice", func(b *qb) []*graph.Value {
			return []*graph.Value{b.ints(1, 0), b.ints(3, 4), b.ints(2, 3), b.ints(1, 2)}
		}, nil), pattern: "QMoveSlice"},
		{name: "gather", f: one("Gather", func(b *qb) []*graph.Value {
			return []*graph.Value{b.g.AddInitializer(b.name("idx"), tensor.FromInt64([]int64{2, 0, -1}, 3))}
		}, map[string]*graph.Attr{"axis": graph.AInt(1)}), pattern: "QMoveGather"},
		{name: "split", f: func(b *qb, x *graph.Value) []*graph.Value {
			return b.nodeN("Split", []*graph.Value{x, b.ints(2, 3)}, 2, map[string]*graph.Attr{"axis": graph.AInt(2)})
		}, pattern: "QMoveSplit"},
		{name: "maxpool", f: one("MaxPool", nil, map[string]*graph.Attr{"kernel_shape": graph.AInts(3, 3), "strides": graph.AInts(2, 2), "pads": graph.AInts(1, 1, 1, 1)}), pattern: "QLinearMaxPool"},
		{name: "avgpool", f: one("AveragePool", nil, map[string]*graph.Attr{"kernel_shape": graph.AInts(3, 3), "pads": graph.AInts(1, 0, 1, 1)}), pattern: "QLinearAveragePool (float32 core)"},
		{name: "gap", f: one("GlobalAveragePool", nil, nil), pattern: "QLinearGlobalAveragePool"},
		{name: "gap-odd", f: one("GlobalAveragePool", nil, nil), pattern: "QLinearGlobalAveragePool", shape: []int{1, 3, 5, 7}},
		{name: "gap-wide", f: one("GlobalAveragePool", nil, nil), pattern: "QLinearGlobalAveragePool", shape: []int{1, 4, 61, 67}},
		{name: "resize-nearest", f: one("Resize", func(b *qb) []*graph.Value {
			return []*graph.Value{b.g.AddInitializer(b.name("roi"), tensor.FromFloat32(nil, 0)), b.g.AddInitializer(b.name("sc"), tensor.FromFloat32([]float32{1, 1, 2, 2}, 4))}
		}, map[string]*graph.Attr{"mode": graph.AString("nearest")}), pattern: "QLinearResize (nearest gather)"},
		// Rows of 512 bytes, repeated in threes, split over threads: rows whose
		// source row is in an earlier chunk are gathered, the others
		// copied, and the bytes are the same at every thread count.
		{name: "resize-nearest-rows", f: one("Resize", func(b *qb) []*graph.Value {
			return []*graph.Value{b.g.AddInitializer(b.name("roi"), tensor.FromFloat32(nil, 0)), b.g.AddInitializer(b.name("sc"), tensor.FromFloat32([]float32{1, 1, 3, 2}, 4))}
		}, map[string]*graph.Attr{"mode": graph.AString("nearest")}), pattern: "QLinearResize (nearest gather)", shape: []int{1, 2, 40, 256}},
		{name: "resize-nearest-frac", f: one("Resize", func(b *qb) []*graph.Value {
			return []*graph.Value{b.g.AddInitializer(b.name("roi"), tensor.FromFloat32(nil, 0)), b.g.AddInitializer(b.name("sc"), tensor.FromFloat32([]float32{1, 1, 1.7, 0.6}, 4))}
		}, map[string]*graph.Attr{"mode": graph.AString("nearest"), "nearest_mode": graph.AString("floor"), "coordinate_transformation_mode": graph.AString("asymmetric")}), pattern: "QLinearResize (nearest gather)"},
		{name: "resize-linear", f: one("Resize", func(b *qb) []*graph.Value {
			return []*graph.Value{b.g.AddInitializer(b.name("roi"), tensor.FromFloat32(nil, 0)), b.g.AddInitializer(b.name("sc"), tensor.FromFloat32([]float32{1, 1, 1.5, 2}, 4))}
		}, map[string]*graph.Attr{"mode": graph.AString("linear")}), pattern: "QLinearResize (float32 core)"},
	}
	for _, c := range cases {
		for _, same := range []bool{true, false} {
			name := c.name + "/same"
			if !same {
				name = c.name + "/requant"
			}
			t.Run(name, func(t *testing.T) {
				b := newQB(c.name, 11)
				shape := c.shape
				if shape == nil {
					shape = []int{2, 3, 5, 4}
				}
				x := b.input(shape, false, 77)
				outs := c.f(b, b.dq(x, 0.03, 77, false))
				var ys []*graph.Value
				for _, o := range outs {
					if same {
						ys = append(ys, b.q(o, 0.03, 77, false))
					} else {
						ys = append(ys, b.q(o, 0.025, 100, false))
					}
				}
				p := runQDQBoth(t, b.model(ys...), b.feeds)
				wantAllInt8(t, p, c.pattern)
			})
		}
	}
}

// TestQDQConcat checks Concat of DQ'd inputs with equal and different
// qparams (and an int8 input) against the literal graph bit for bit.
func TestQDQConcat(t *testing.T) {
	for _, mixed := range []bool{false, true} {
		b := newQB("concat", 4)
		a := b.dq(b.input([]int{2, 3, 4}, false, 128), 0.05, 128, false)
		var c *graph.Value
		if mixed {
			c = b.dq(b.input([]int{2, 5, 4}, true, -3), 0.08, -3, true)
		} else {
			c = b.dq(b.input([]int{2, 5, 4}, false, 128), 0.05, 128, false)
		}
		cat := b.node("Concat", []*graph.Value{a, c, a}, map[string]*graph.Attr{"axis": graph.AInt(1)})
		p := runQDQBoth(t, b.model(b.q(cat, 0.05, 128, false)), b.feeds)
		wantAllInt8(t, p, "QLinearConcat")
	}
	// Not fused: the float concatenation is read by a second node.
	b := newQB("kept", 4)
	a := b.dq(b.input([]int{2, 3}, false, 128), 0.05, 128, false)
	cat := b.node("Concat", []*graph.Value{a, a}, map[string]*graph.Attr{"axis": graph.AInt(0)})
	p := runQDQBoth(t, b.model(b.q(cat, 0.05, 128, false), b.node("Neg", []*graph.Value{cat}, nil)), b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with the float result read twice", pat)
	}
}

// TestQDQMoveNotFused: a Transpose whose float output is a graph output
// stays literal.
func TestQDQMoveNotFused(t *testing.T) {
	b := newQB("kept", 4)
	x := b.dq(b.input([]int{2, 3}, false, 128), 0.05, 128, false)
	tr := b.node("Transpose", []*graph.Value{x}, nil)
	p := runQDQBoth(t, b.model(b.q(tr, 0.05, 128, false), tr), b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with the float result returned", pat)
	}
}

// TestGatherMapRows checks the row forms of a gather map (a shared column
// pattern, the 2x duplication, rows repeating earlier rows, and rows with
// no shared pattern) against the element-by-element gather of its
// indices, with and without a requantizing table.
func TestGatherMapRows(t *testing.T) {
	xb := make([]byte, 64)
	for i := range xb {
		xb[i] = byte(i*37 + 11)
	}
	tab := new(qelem.Table)
	for i := range tab {
		tab[i] = byte(255 - i)
	}
	for _, c := range []struct {
		name          string
		idx           []int32
		shape         []int
		cols, dup2    bool
		wantRepeating int
	}{
		{"dup2", []int32{0, 0, 1, 1, 0, 0, 1, 1, 8, 8, 9, 9, 8, 8, 9, 9}, []int{4, 4}, true, true, 2},
		{"dup2 wide", dup2Rows(2, 19, 20), []int{2, 38}, true, true, 0}, // two 8-byte words and a tail per row
		{"pattern", []int32{0, 2, 3, 10, 12, 13, 20, 22, 23}, []int{3, 3}, true, false, 0},
		{"repeats", []int32{5, 1, 5, 1, 7, 3}, []int{3, 2}, true, false, 1},
		{"irregular", []int32{0, 1, 2, 4, 2, 4, 3, 7}, []int{4, 2}, false, false, 1},
	} {
		g := &gatherMap{idx: slices.Clone(c.idx), shape: c.shape}
		g.findColumns()
		g.findRepeats()
		if (g.col != nil) != c.cols || g.dup2 != c.dup2 {
			t.Fatalf("%s: shared columns %v, dup2 %v; want %v, %v", c.name, g.col != nil, g.dup2, c.cols, c.dup2)
		}
		n := 0
		for _, s := range g.src {
			if s >= 0 {
				n++
			}
		}
		if n != c.wantRepeating {
			t.Errorf("%s: %d repeated rows, want %d", c.name, n, c.wantRepeating)
		}
		for _, tb := range []*qelem.Table{nil, tab} {
			w := c.shape[len(c.shape)-1]
			for r := range len(c.idx) / w {
				out := make([]byte, w)
				g.gatherRow(out, xb, r, tb)
				for i, j := range c.idx[r*w : (r+1)*w] {
					want := xb[j]
					if tb != nil {
						want = tb[want]
					}
					if out[i] != want {
						t.Fatalf("%s (table %v): row %d element %d = %d, want %d", c.name, tb != nil, r, i, out[i], want)
					}
				}
			}
		}
	}
}

// TestGAPByteTables checks the int8 GlobalAveragePool's integer sum
// through byte tables against the exact float64 sum of the dequantized
// codes (the float kernel's arithmetic), bit for bit, over scales from
// 1e-9 to 1e6, both signednesses and planes up to the 8191 elements the
// tables take (on whatever tier SumLookups runs here).
func TestGAPByteTables(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, scale := range []float32{1e-9, 0.0039215689, 0.017, 1, 3.7, 12345.678, 1e6} {
		for _, signed := range []bool{false, true} {
			zp := int32(r.IntN(256))
			if signed {
				zp -= 128
			}
			k := &gapKernel{x: actQ{scale: scale, zp: zp, signed: signed}}
			k.setTables()
			if !k.sumOK {
				t.Fatalf("scale %g zp %d signed %v: no byte tables", scale, zp, signed)
			}
			for _, hw := range []int{1, 2, 63, 64, 65, 192, 1000, 4087, gapSumPlane - 1} {
				p := make([]byte, hw)
				for i := range p {
					p[i] = byte(r.IntN(256))
				}
				if hw == 63 {
					for i := range p {
						p[i] = 255 // the largest code throughout
					}
				}
				var cnt [256]int
				for _, b := range p {
					cnt[b]++
				}
				var sf float64
				for c, n := range cnt {
					sf += float64(n) * k.tab[c]
				}
				want := float32(sf / float64(hw))
				sums := qelem.SumLookups(p, &k.bytes)
				n := int64(hw) * k.lo
				for b, v := range sums {
					n += int64(v) << (8 * b)
				}
				got := float32(float64(n) * k.unit / float64(hw))
				if math.Float32bits(got) != math.Float32bits(want) {
					t.Fatalf("scale %g zp %d signed %v hw %d: %v, float sum %v", scale, zp, signed, hw, got, want)
				}
			}
		}
	}
}

// dup2Rows returns the indices of rows of 2*w outputs, each of w source
// bytes doubled, row r starting at source index r*stride.
func dup2Rows(rows, w, stride int) []int32 {
	var idx []int32
	for r := range rows {
		for i := range 2 * w {
			idx = append(idx, int32(r*stride+i/2))
		}
	}
	return idx
}
