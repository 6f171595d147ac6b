package exec

import (
	"context"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestIf picks a branch by a computed condition; both branches read values
// of the main graph.
func TestIf(t *testing.T) {
	g := graph.New("if")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2))
	zero := g.AddInitializer("zero", tensor.Scalar(0))
	two := g.AddInitializer("two", tensor.Scalar(2))
	// cond = x[0] > 0; then: x * 2, else: -x.
	idx := g.AddInitializer("i0", tensor.FromInt64([]int64{0}).Reshape())
	first := g.AddNode("first", "Gather", []*graph.Value{x, idx}, []string{"x0"}, nil)
	cond := g.AddNode("gt", "Greater", []*graph.Value{first.Outputs[0], zero}, []string{"c"}, nil)
	then := graph.New("then")
	tm := then.AddNode("tmul", "Mul", []*graph.Value{x, two}, []string{"t_out"}, nil)
	then.Outputs = tm.Outputs
	els := graph.New("else")
	en := els.AddNode("eneg", "Neg", []*graph.Value{x}, []string{"e_out"}, nil)
	els.Outputs = en.Outputs
	n := g.AddNode("if", "If", []*graph.Value{cond.Outputs[0]}, []string{"y"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(then), "else_branch": graph.AGraph(els)})
	g.Outputs = n.Outputs
	p, err := Compile(model(g, 13), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want []float32 }{{[]float32{1, 3}, []float32{2, 6}}, {[]float32{-1, 3}, []float32{1, -3}}} {
		out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.FromFloat32(c.in, 2)})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "if", out["y"], tensor.Float32, []int{2}, float64(c.want[0]), float64(c.want[1]))
	}
}

// loopModel is: for i < M while cond: acc += x * i; scan out acc and i;
// the body reads x from the main graph and stops when acc > limit.
func loopModel(withCond bool) *graph.Model {
	g := graph.New("loop")
	m := g.AddInput("M", graph.TensorType(graph.Int64))
	x := g.AddInput("x", graph.TensorType(graph.Float, 2))
	limit := g.AddInitializer("limit", tensor.Scalar(100))
	acc0 := g.AddInitializer("acc0", tensor.FromFloat32([]float32{0, 0}, 2))
	var condIn *graph.Value
	if withCond {
		condIn = g.AddInitializer("cond0", tensor.FromBool([]bool{true}).Reshape())
	}
	body := graph.New("body")
	iter := body.AddInput("i", graph.TensorType(graph.Int64))
	body.AddInput("cond_in", graph.TensorType(graph.Bool))
	acc := body.AddInput("acc", graph.TensorType(graph.Float, 2))
	fi := body.AddNode("cast", "Cast", []*graph.Value{iter}, []string{"fi"}, map[string]*graph.Attr{"to": graph.AInt(int64(graph.Float))})
	xi := body.AddNode("mul", "Mul", []*graph.Value{x, fi.Outputs[0]}, []string{"xi"}, nil)
	next := body.AddNode("add", "Add", []*graph.Value{acc, xi.Outputs[0]}, []string{"acc_out"}, nil)
	idx := body.AddInitializer("last", tensor.FromInt64([]int64{1}).Reshape())
	hi := body.AddNode("g", "Gather", []*graph.Value{next.Outputs[0], idx}, []string{"hi"}, nil)
	stop := body.AddNode("le", "LessOrEqual", []*graph.Value{hi.Outputs[0], limit}, []string{"cond_out"}, nil)
	id := body.AddNode("id", "Identity", []*graph.Value{iter}, []string{"i_out"}, nil)
	id.Outputs[0].Type = graph.TensorType(graph.Int64)
	body.Outputs = []*graph.Value{stop.Outputs[0], next.Outputs[0], next.Outputs[0], id.Outputs[0]}
	n := g.AddNode("loop", "Loop", []*graph.Value{m, condIn, acc0}, []string{"acc", "accs", "is"}, map[string]*graph.Attr{"body": graph.AGraph(body)})
	g.Outputs = n.Outputs
	return model(g, 16)
}

func TestLoop(t *testing.T) {
	x := tensor.FromFloat32([]float32{1, 10}, 2)
	scalar := func(v int64) *tensor.Tensor { return tensor.FromInt64([]int64{v}).Reshape() }
	// For loop (no cond input): the body's condition output is ignored.
	p, err := Compile(loopModel(false), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"M": scalar(6), "x": x})
	if err != nil {
		t.Fatal(err)
	}
	// acc after i = 0..5: sum i = 15.
	expect(t, "for acc", out["acc"], tensor.Float32, []int{2}, 15, 150)
	expect(t, "for accs", out["accs"], tensor.Float32, []int{6, 2}, 0, 0, 1, 10, 3, 30, 6, 60, 10, 100, 15, 150)
	expect(t, "for is", out["is"], tensor.Int64, []int{6}, 0, 1, 2, 3, 4, 5)
	// With cond: stops after the iteration whose acc exceeds 100 (i = 5).
	p, err = Compile(loopModel(true), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err = p.Run(context.Background(), map[string]*tensor.Tensor{"M": scalar(100), "x": x})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "while acc", out["acc"], tensor.Float32, []int{2}, 15, 150)
	expect(t, "while is", out["is"], tensor.Int64, []int{6}, 0, 1, 2, 3, 4, 5)
	// Zero iterations: carried values pass through, scans are empty with
	// the body's declared shape.
	out, err = p.Run(context.Background(), map[string]*tensor.Tensor{"M": scalar(0), "x": x})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "zero acc", out["acc"], tensor.Float32, []int{2}, 0, 0)
	expect(t, "zero is", out["is"], tensor.Int64, []int{0})
}

func TestScan(t *testing.T) {
	// State: running sum; scan inputs along axis 1, the second reversed;
	// scan output along axis 1, reversed.
	g := graph.New("scan")
	s0 := g.AddInput("s0", graph.TensorType(graph.Float, 2))
	a := g.AddInput("a", graph.TensorType(graph.Float, 2, 3))
	b := g.AddInput("b", graph.TensorType(graph.Float, 2, 3))
	body := graph.New("body")
	st := body.AddInput("st", graph.TensorType(graph.Float, 2))
	ai := body.AddInput("ai", graph.TensorType(graph.Float, 2))
	bi := body.AddInput("bi", graph.TensorType(graph.Float, 2))
	d := body.AddNode("sub", "Sub", []*graph.Value{ai, bi}, []string{"d"}, nil)
	ns := body.AddNode("add", "Add", []*graph.Value{st, d.Outputs[0]}, []string{"ns"}, nil)
	body.Outputs = []*graph.Value{ns.Outputs[0], d.Outputs[0]}
	n := g.AddNode("scan", "Scan", []*graph.Value{s0, a, b}, []string{"sum", "ds"}, map[string]*graph.Attr{
		"body": graph.AGraph(body), "num_scan_inputs": graph.AInt(2),
		"scan_input_axes": graph.AInts(1, -1), "scan_input_directions": graph.AInts(0, 1),
		"scan_output_axes": graph.AInts(1), "scan_output_directions": graph.AInts(1),
	})
	g.Outputs = n.Outputs
	p, err := Compile(model(g, 16), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{
		"s0": tensor.FromFloat32([]float32{100, 200}, 2),
		"a":  tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 2, 3),
		"b":  tensor.FromFloat32([]float32{10, 20, 30, 40, 50, 60}, 2, 3),
	})
	if err != nil {
		t.Fatal(err)
	}
	// Steps pair a[:, t] with b[:, 2-t]: row 0: 1-30, 2-20, 3-10; row 1: 4-60, 5-50, 6-40.
	expect(t, "sum", out["sum"], tensor.Float32, []int{2}, 100-29-18-7, 200-56-45-34)
	// Reversed output: column j holds step 2-j.
	expect(t, "ds", out["ds"], tensor.Float32, []int{2, 3}, -7, -18, -29, -34, -45, -56)
}
