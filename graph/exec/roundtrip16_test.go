package exec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// roundTripModel is x -> Q16 -> DQ16 -> HardSwish -> Mul(per channel) ->
// Q16 -> DQ16 -> Conv-free tail: Add(x) -> y, with uint16 (or int16)
// qparams, plus a third pair whose codes the graph also returns (not
// folded). Shapes [1, 3, 5, 7].
func roundTripModel(elem graph.ElemType) *graph.Model {
	g := graph.New("rt16")
	sh := graph.Type{Elem: graph.Float, Shape: []graph.Dim{{Size: 1}, {Size: 3}, {Size: 5}, {Size: 7}}, HasShape: true}
	x := g.AddInput("x", sh)
	zp := int32(30000)
	if elem == graph.Int16 {
		zp = -1000
	}
	pair := func(name string, v *graph.Value, scale float32) (*graph.Value, *graph.Value) {
		s := g.AddInitializer(name+"_s", tensor.Scalar(scale))
		z := g.AddInitializer(name+"_z", tensor.FromInt32([]int32{zp}).Reshape())
		z.Type.Elem = elem
		q := g.AddNode(name+"_q", "QuantizeLinear", []*graph.Value{v, s, z}, []string{name + "_codes"}, nil)
		q.Outputs[0].Type = graph.Type{Elem: elem, Shape: sh.Shape, HasShape: true}
		dq := g.AddNode(name+"_dq", "DequantizeLinear", []*graph.Value{q.Outputs[0], s, z}, []string{name + "_y"}, nil)
		dq.Outputs[0].Type = sh
		return q.Outputs[0], dq.Outputs[0]
	}
	_, a := pair("a", x, 0.0007)
	h := g.AddNode("hs", "HardSwish", []*graph.Value{a}, []string{"h"}, nil).Outputs[0]
	ch := g.AddInitializer("ch", tensor.FromFloat32([]float32{0.5, -1.25, 3}, 1, 3, 1, 1))
	m := g.AddNode("mul", "Mul", []*graph.Value{h, ch}, []string{"m"}, nil).Outputs[0]
	_, b := pair("b", m, 0.0011)
	y := g.AddNode("add", "Add", []*graph.Value{b, x}, []string{"y"}, nil).Outputs[0]
	codes, c := pair("c", y, 0.0013)
	g.Outputs = []*graph.Value{c, codes}
	return &graph.Model{IRVersion: 10, Opsets: map[string]int64{"": 21}, Graph: g}
}

// TestRoundTrip16 checks the folding of 16-bit QuantizeLinear ->
// DequantizeLinear pairs: the two pairs whose codes only their
// DequantizeLinear reads run as round trips inside one elementwise step,
// the pair whose codes the graph returns stays literal, the report still
// lists every node as float, and the outputs equal the unoptimized
// program's bit for bit, with 1, 2 and 3 threads, for uint16 and int16, on
// values that reach both ends of the range (saturation), NaN and
// infinities included.
func TestRoundTrip16(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	xs := make([]float32, 105)
	for i := range xs {
		xs[i] = float32(r.NormFloat64() * 20)
	}
	xs[0], xs[1], xs[2], xs[3] = float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 1e9
	in := map[string]*tensor.Tensor{"x": tensor.FromFloat32(xs, 1, 3, 5, 7)}
	for _, elem := range []graph.ElemType{graph.Uint16, graph.Int16} {
		want, got, p := runBoth(t, roundTripModel(elem), in)
		folded, literalQ := 0, 0
		for _, st := range p.main.steps {
			if ew, ok := st.kernel.(*ewFused); ok {
				for _, in := range ew.instrs {
					if in.code == ewcRoundTrip16 {
						folded++
					}
				}
			}
			if isOp(&st, "QuantizeLinear") {
				if _, ok := st.kernel.(*roundTrip16); !ok {
					literalQ++
				}
			}
		}
		if folded != 2 || literalQ != 1 {
			t.Fatalf("%s: %d round trips folded into elementwise steps and %d QuantizeLinear steps literal; want 2 and 1", elem, folded, literalQ)
		}
		rows := p.QuantReport()
		if len(rows) != 9 {
			t.Errorf("%s: report has %d rows, want the graph's 9 nodes", elem, len(rows))
		}
		for _, row := range rows {
			if row.Int8 {
				t.Errorf("%s: %s reported as an int8 kernel", elem, row.Node)
			}
		}
		for th, out := range got {
			for name, w := range want {
				g := out[name]
				if g.DType() != w.DType() || g.Numel() != w.Numel() {
					t.Fatalf("%s: %s is %s %v, want %s %v", elem, name, g.DType(), g.Shape(), w.DType(), w.Shape())
				}
				if w.DType() == tensor.Float32 {
					for i, v := range w.F32() {
						if !sameF32(g.F32()[i], v) {
							t.Fatalf("%s, %d threads: %s[%d] = %v, unoptimized %v", elem, th+1, name, i, g.F32()[i], v)
						}
					}
					continue
				}
				for i, v := range w.I32() {
					if g.I32()[i] != v {
						t.Fatalf("%s, %d threads: %s[%d] = %d, unoptimized %d", elem, th+1, name, i, g.I32()[i], v)
					}
				}
			}
		}
	}
}
