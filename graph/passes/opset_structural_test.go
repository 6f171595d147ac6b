package passes_test

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/tensor"
)

// TestUpgradeOpsetResizeAndControlFlow covers the rewrites that add
// nodes or change op types: shape-inferred softmax ranks, Upsample and
// Resize-10 to Resize 11+, Resize-11's tf_half_pixel_for_nn, Scan-8 to a
// Loop, and conversion inside If branches.
func TestUpgradeOpsetResizeAndControlFlow(t *testing.T) {
	rng := tensor.NewRNG(8)
	img := tensor.Randn(rng, 1, 2, 5, 6)
	for13 := func(n int) map[int64]int { return map[int64]int{13: n, 17: n} }
	resize := func(name string, from int64, mode string, scales []float32, ops string, extra attrs) upCase {
		return upCase{name: name, from: from, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(1), ops: ops,
			build: func(g *graph.Graph) {
				s := g.AddInitializer("scales", f32(scales...))
				a := attrs{"mode": graph.AString(mode)}
				for k, v := range extra {
					a[k] = v
				}
				g.Outputs = opNode(g, "rs", "Resize", []*graph.Value{floatIn(g, "x", 1, 2, 5, 6), s}, a, "y").Outputs
			}}
	}
	cases := []upCase{
		{name: "softmax_inferred_rank", from: 11, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(0), ops: "Relu=1 Softmax=1",
			build: func(g *graph.Graph) {
				r := opNode(g, "relu", "Relu", []*graph.Value{floatIn(g, "x", 1, 2, 5, 6)}, nil, "r")
				g.Outputs = opNode(g, "sm", "Softmax", r.Outputs, attrs{"axis": graph.AInt(3)}, "y").Outputs
			}},
		{name: "upsample7_attr", from: 7, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(1), ops: "Resize=1",
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "up", "Upsample", []*graph.Value{floatIn(g, "x", 1, 2, 5, 6)},
					attrs{"scales": graph.AFloats(1, 1, 2, 3), "mode": graph.AString("nearest")}, "y").Outputs
			},
			check: func(t *testing.T, m *graph.Model) {
				n := nodeNamed(t, m.Graph, "up")
				nm, _ := n.StringAttr("nearest_mode", "")
				ctm, _ := n.StringAttr("coordinate_transformation_mode", "")
				if n.OpType != "Resize" || len(n.Inputs) != 3 || n.Inputs[1] != nil || n.Inputs[2].Name != "up_scales" || nm != "floor" || ctm != "asymmetric" {
					t.Errorf("got %s inputs %v nearest_mode %q coordinate_transformation_mode %q", n.OpType, n.Inputs, nm, ctm)
				}
				// Nearest upsampling by 2 and 3: y[.., i, j] = x[.., i/2, j/3].
				y := runFeeds(t, m, map[string]*tensor.Tensor{"x": img})[0]
				xv, yv := img.F32(), y.F32()
				for i := range 10 {
					for j := range 18 {
						if yv[i*18+j] != xv[(i/2)*6+j/3] {
							t.Fatalf("y[0,0,%d,%d] = %g, want x[0,0,%d,%d] = %g", i, j, yv[i*18+j], i/2, j/3, xv[(i/2)*6+j/3])
						}
					}
				}
			}},
		{name: "upsample9_bilinear", from: 9, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(1), ops: "Resize=1",
			build: func(g *graph.Graph) {
				s := g.AddInitializer("scales", f32(1, 1, 2, 1.5))
				g.Outputs = opNode(g, "up", "Upsample", []*graph.Value{floatIn(g, "x", 1, 2, 5, 6), s}, attrs{"mode": graph.AString("bilinear")}, "y").Outputs
			}},
		{name: "upsample9_dynamic_scales", from: 9, count: for13(1), ops: "Max=1 Min=1 Resize=2",
			feeds: map[string]*tensor.Tensor{"x": img, "scales": f32(1, 1, 0.5, 2.5)},
			build: func(g *graph.Graph) {
				g.Outputs = opNode(g, "up", "Upsample", []*graph.Value{floatIn(g, "x", 1, 2, 5, 6), floatIn(g, "scales", 4)}, nil, "y").Outputs
			}},
		resize("resize10_down", 10, "nearest", []float32{1, 1, 0.5, 0.6}, "Resize=1", nil),
		resize("resize10_up", 10, "nearest", []float32{1, 1, 1.5, 2}, "Resize=1", nil),
		resize("resize10_mixed", 10, "nearest", []float32{1, 1, 0.5, 2.5}, "Resize=2", nil),
		resize("resize10_linear", 10, "linear", []float32{1, 1, 1.5, 0.7}, "Resize=1", nil),
		{name: "resize11_tf_half_pixel", from: 11, feeds: map[string]*tensor.Tensor{"x": img}, count: for13(2), ops: "Resize=2",
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 1, 2, 5, 6)
				roi := g.AddInitializer("roi", f32())
				s := g.AddInitializer("scales", f32(1, 1, 2.5, 0.6))
				ctm := graph.AString("tf_half_pixel_for_nn")
				a := opNode(g, "rs_floor", "Resize", []*graph.Value{x, roi, s}, attrs{"coordinate_transformation_mode": ctm, "nearest_mode": graph.AString("floor")}, "a")
				b := opNode(g, "rs_round", "Resize", []*graph.Value{x, roi, s}, attrs{"coordinate_transformation_mode": ctm}, "b")
				g.Outputs = []*graph.Value{a.Outputs[0], b.Outputs[0]}
			}},
		{name: "scan8", from: 8, count: map[int64]int{9: 1, 13: 1, 17: 1}, ops: "Gather=4 Identity=3 Loop=1 Scan=1 Shape=1 Sub=1",
			feeds: map[string]*tensor.Tensor{"init": tensor.Randn(rng, 2, 3), "xs": tensor.Randn(rng, 2, 4, 3), "ys": tensor.Randn(rng, 2, 4, 3)},
			build: func(g *graph.Graph) {
				body := graph.New("body")
				s := body.AddInput("s", graph.TensorType(graph.Float, 3))
				a := body.AddInput("a", graph.TensorType(graph.Float, 3))
				b := body.AddInput("b", graph.TensorType(graph.Float, 3))
				sum := opNode(body, "sub", "Sub", []*graph.Value{s, a}, nil, "s_next").Outputs[0]
				id := opNode(body, "id", "Identity", []*graph.Value{b}, nil, "b_out").Outputs[0]
				body.Outputs = []*graph.Value{sum, id}
				ins := []*graph.Value{nil, floatIn(g, "init", 2, 3), floatIn(g, "xs", 2, 4, 3), floatIn(g, "ys", 2, 4, 3)}
				n := opNode(g, "scan", "Scan", ins, attrs{"body": graph.AGraph(body), "num_scan_inputs": graph.AInt(2),
					"directions": graph.AInts(0, 1)}, "final", "trace")
				g.Outputs = append([]*graph.Value(nil), n.Outputs...)
			},
			check: func(t *testing.T, m *graph.Model) {
				// final[b] = init[b] - sum_t xs[b,t]; trace[b,t] = ys[b, 3-t].
				out := runFeeds(t, m, map[string]*tensor.Tensor{"init": f32(1, 2, 3, 4, 5, 6).Reshape(2, 3),
					"xs": tensor.Full(0.5, 2, 4, 3), "ys": tensor.FromFloat32(seq(24), 2, 4, 3)})
				if got := fmt.Sprint(out[0].F32()); got != "[-1 0 1 2 3 4]" {
					t.Errorf("final state %s", got)
				}
				tr := out[1].F32()
				for b := range 2 {
					for s := range 4 {
						for c := range 3 {
							if want := float32(b*12 + (3-s)*3 + c); tr[b*12+s*3+c] != want {
								t.Fatalf("trace[%d,%d,%d] = %g, want %g", b, s, c, tr[b*12+s*3+c], want)
							}
						}
					}
				}
			}},
		{name: "if_branches", from: 10, count: for13(3),
			feeds: map[string]*tensor.Tensor{"c": tensor.FromBool([]bool{true}).Reshape(), "x": tensor.Randn(rng, 1, 3)},
			build: func(g *graph.Graph) {
				x := floatIn(g, "x", 1, 3)
				then := graph.New("then")
				then.Outputs = opNode(then, "then_sq", "Squeeze", []*graph.Value{x}, attrs{"axes": graph.AInts(0)}, "t").Outputs
				els := graph.New("else")
				e := opNode(els, "else_clip", "Clip", []*graph.Value{x}, attrs{"max": graph.AFloat(0)}, "e0")
				els.Outputs = opNode(els, "else_sq", "Squeeze", e.Outputs, attrs{"axes": graph.AInts(0)}, "e").Outputs
				c := g.AddInput("c", graph.TensorType(graph.Bool))
				g.Outputs = opNode(g, "if", "If", []*graph.Value{c}, attrs{"then_branch": graph.AGraph(then), "else_branch": graph.AGraph(els)}, "y").Outputs
			},
			check: func(t *testing.T, m *graph.Model) {
				n := nodeNamed(t, m.Graph, "if")
				els := n.Attrs["else_branch"].G
				if initValue(t, els, "else_sq_axes") == nil || initValue(t, els, "else_clip_min").F32()[0] != -math.MaxFloat32 {
					t.Error("the else branch's constants are not its initializers")
				}
				if len(m.Graph.Initializers) != 0 {
					t.Errorf("main graph initializers %v", m.Graph.Initializers)
				}
				out := runFeeds(t, m, map[string]*tensor.Tensor{"c": tensor.FromBool([]bool{false}).Reshape(), "x": f32(-1, 2, -3).Reshape(1, 3)})
				if got := fmt.Sprint(out[0].Shape(), out[0].F32()); got != "[3] [-1 0 -3]" {
					t.Errorf("else branch gives %s", got)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

func seq(n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(i)
	}
	return s
}

// TestUpgradeOpsetSoftmaxNotLastAxis converts a Softmax over axis 1 of a
// rank-3 input at opset 11, which normalizes each [d1*d2] block as a whole,
// and compares it with a direct computation of that.
func TestUpgradeOpsetSoftmaxNotLastAxis(t *testing.T) {
	x := tensor.Randn(tensor.NewRNG(9), 2, 3, 4)
	for _, declared := range []graph.Type{graph.TensorType(graph.Float, 2, 3, 4), {Elem: graph.Float}} {
		g := graph.New("softmax")
		in := g.AddInput("x", declared)
		g.Outputs = opNode(g, "sm", "Softmax", []*graph.Value{in}, attrs{"axis": graph.AInt(1)}, "y").Outputs[:1:1]
		m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 11}, IRVersion: 6}
		n, err := passes.UpgradeOpset(m, 13)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 || opSummary(g) != "Flatten=1 Reshape=1 Shape=1 Softmax=1" || g.Outputs[0].Name != "y" {
			t.Fatalf("%d rewritten, ops %s, output %s", n, opSummary(g), g.Outputs[0].Name)
		}
		y := runFeeds(t, m, map[string]*tensor.Tensor{"x": x})[0]
		if fmt.Sprint(y.Shape()) != "[2 3 4]" {
			t.Fatalf("shape %v", y.Shape())
		}
		xv, yv := x.F32(), y.F32()
		for b := range 2 {
			row := xv[b*12 : (b+1)*12]
			mx := row[0]
			for _, v := range row {
				mx = max(mx, v)
			}
			var s float64
			for _, v := range row {
				s += math.Exp(float64(v - mx))
			}
			for i, v := range row {
				want := math.Exp(float64(v-mx)) / s
				if d := math.Abs(float64(yv[b*12+i]) - want); d > 1e-6*want {
					t.Fatalf("y[%d] = %g, want %g (the 12 values of batch %d normalized together)", b*12+i, yv[b*12+i], want, b)
				}
			}
		}
	}
}
