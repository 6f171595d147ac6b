package exec

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// runOp runs one node of op at opset on the given inputs (nil entries are
// omitted optional inputs) and returns its nOut outputs.
func runOp(opset int64, op string, attrs map[string]*graph.Attr, nOut int, ins ...*tensor.Tensor) ([]*tensor.Tensor, error) {
	g := graph.New(op)
	var vs []*graph.Value
	feeds := map[string]*tensor.Tensor{}
	for i, t := range ins {
		if t == nil {
			vs = append(vs, nil)
			continue
		}
		name := fmt.Sprintf("x%d", i)
		vs = append(vs, g.AddInput(name, graph.TypeOf(t)))
		feeds[name] = t
	}
	var outs []string
	for i := 0; i < nOut; i++ {
		outs = append(outs, fmt.Sprintf("y%d", i))
	}
	n := g.AddNode("n0", op, vs, outs, attrs)
	g.Outputs = n.Outputs
	p, err := Compile(model(g, opset), Options{})
	if err != nil {
		return nil, err
	}
	res, err := p.Run(context.Background(), feeds)
	if err != nil {
		return nil, err
	}
	var r []*tensor.Tensor
	for _, o := range outs {
		r = append(r, res[o])
	}
	return r, nil
}

// mustOp is runOp with one output that must succeed.
func mustOp(t *testing.T, opset int64, op string, attrs map[string]*graph.Attr, ins ...*tensor.Tensor) *tensor.Tensor {
	t.Helper()
	r, err := runOp(opset, op, attrs, 1, ins...)
	if err != nil {
		t.Fatalf("%s (opset %d): %v", op, opset, err)
	}
	return r[0]
}

func i64(v ...int64) *tensor.Tensor { return tensor.FromInt64(v, len(v)) }

// iota32 returns float32 0, 1, ... in shape.
func iota32(shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(i)
	}
	return tensor.FromFloat32(v, shape...)
}

// expect checks a tensor's dtype, shape and values (as float64, exactly).
func expect(t *testing.T, what string, got *tensor.Tensor, dt tensor.DType, shape []int, vals ...float64) {
	t.Helper()
	if got.DType() != dt || !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: got %s%v, want %s%v", what, got.DType(), got.Shape(), dt, shape)
	}
	g := got.Float64s()
	if len(vals) != len(g) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(vals))
	}
	for i := range g {
		if g[i] != vals[i] && !(math.IsNaN(g[i]) && math.IsNaN(vals[i])) {
			t.Fatalf("%s: got %v, want %v", what, g, vals)
		}
	}
}

func wantErr(t *testing.T, what string, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("%s: error %v, want one containing %q", what, err, sub)
	}
}

// TestShapeChain runs the shape arithmetic PyTorch exports emit:
// Shape -> Gather -> Unsqueeze -> Concat -> Reshape, at opset 11 (axes as
// attributes) and 13 (axes as inputs).
func TestShapeChain(t *testing.T) {
	for _, opset := range []int64{11, 13, 17} {
		g := graph.New("chain")
		x := g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Param: "N"}, {Size: 3}, {Size: 4}}})
		idx := g.AddInitializer("idx", tensor.FromInt64([]int64{0}).Reshape())
		minus1 := g.AddInitializer("m1", i64(-1))
		shape := g.AddNode("shape", "Shape", []*graph.Value{x}, []string{"s"}, nil)
		gather := g.AddNode("gather", "Gather", []*graph.Value{shape.Outputs[0], idx}, []string{"n"}, map[string]*graph.Attr{"axis": graph.AInt(0)})
		var unsq *graph.Node
		if opset < 13 {
			unsq = g.AddNode("unsq", "Unsqueeze", []*graph.Value{gather.Outputs[0]}, []string{"n1"}, map[string]*graph.Attr{"axes": graph.AInts(0)})
		} else {
			axes := g.AddInitializer("axes", i64(0))
			unsq = g.AddNode("unsq", "Unsqueeze", []*graph.Value{gather.Outputs[0], axes}, []string{"n1"}, nil)
		}
		cat := g.AddNode("cat", "Concat", []*graph.Value{unsq.Outputs[0], minus1}, []string{"target"}, map[string]*graph.Attr{"axis": graph.AInt(0)})
		rs := g.AddNode("reshape", "Reshape", []*graph.Value{x, cat.Outputs[0]}, []string{"y"}, nil)
		g.Outputs = []*graph.Value{rs.Outputs[0], cat.Outputs[0]}
		p, err := Compile(model(g, opset), Options{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": iota32(2, 3, 4)})
		if err != nil {
			t.Fatal(err)
		}
		expect(t, "target", out["target"], tensor.Int64, []int{2}, 2, -1)
		y := out["y"]
		if !tensor.SameShape(y.Shape(), []int{2, 12}) || y.F32()[13] != 13 {
			t.Errorf("opset %d: reshaped to %v", opset, y.Shape())
		}
	}
}

func TestReshapeRules(t *testing.T) {
	x := iota32(2, 3, 4)
	cases := []struct {
		opset     int64
		shape     []int64
		allowZero int64
		want      []int
		err       string
	}{
		{13, []int64{0, -1}, 0, []int{2, 12}, ""},
		{13, []int64{-1, 0, 2}, 0, []int{4, 3, 2}, ""},
		{13, []int64{4, 0, 0}, 0, nil, "cannot reshape"},
		{13, []int64{-1, -1}, 0, nil, "more than one -1"},
		{13, []int64{2, -2, 12}, 0, nil, "invalid entry"},
		{13, []int64{5, -1}, 0, nil, "cannot reshape"},
		{14, []int64{0, 24}, 1, nil, "cannot reshape"},
		{14, []int64{0, -1}, 1, nil, "both 0 and -1"},
		{14, []int64{2, 0, 4}, 0, []int{2, 3, 4}, ""},
		{14, []int64{2, 0, 3}, 0, nil, "cannot reshape"},
	}
	for _, c := range cases {
		attrs := map[string]*graph.Attr{}
		if c.opset >= 14 {
			attrs["allowzero"] = graph.AInt(c.allowZero)
		}
		r, err := runOp(c.opset, "Reshape", attrs, 1, x, i64(c.shape...))
		if c.err != "" {
			wantErr(t, fmt.Sprint(c.shape), err, c.err)
			continue
		}
		if err != nil {
			t.Errorf("%v: %v", c.shape, err)
		} else if !tensor.SameShape(r[0].Shape(), c.want) {
			t.Errorf("%v: shape %v, want %v", c.shape, r[0].Shape(), c.want)
		}
	}
	// allowzero makes a 0 a real size when the input is empty.
	e := tensor.New(tensor.Float32, 0, 3)
	r := mustOp(t, 14, "Reshape", map[string]*graph.Attr{"allowzero": graph.AInt(1)}, e, i64(3, 0))
	expect(t, "allowzero", r, tensor.Float32, []int{3, 0})
	// Opset 1-4: the shape is an attribute.
	r = mustOp(t, 4, "Reshape", map[string]*graph.Attr{"shape": graph.AInts(4, -1)}, x)
	if !tensor.SameShape(r.Shape(), []int{4, 6}) {
		t.Errorf("opset 4 reshape: %v", r.Shape())
	}
}

func TestSqueezeUnsqueezeFlatten(t *testing.T) {
	x := iota32(1, 3, 1, 2)
	r := mustOp(t, 11, "Squeeze", map[string]*graph.Attr{"axes": graph.AInts(-2)}, x)
	expect(t, "squeeze 11", r, tensor.Float32, []int{1, 3, 2}, 0, 1, 2, 3, 4, 5)
	r = mustOp(t, 13, "Squeeze", nil, x)
	expect(t, "squeeze all", r, tensor.Float32, []int{3, 2}, 0, 1, 2, 3, 4, 5)
	_, err := runOp(13, "Squeeze", nil, 1, x, i64(1))
	wantErr(t, "squeeze non-1", err, "cannot squeeze axis 1")
	r = mustOp(t, 13, "Unsqueeze", nil, tensor.FromInt64([]int64{7}).Reshape(), i64(0))
	expect(t, "unsqueeze scalar", r, tensor.Int64, []int{1}, 7)
	r = mustOp(t, 13, "Unsqueeze", nil, iota32(3), i64(-1, 0))
	expect(t, "unsqueeze -1,0", r, tensor.Float32, []int{1, 3, 1}, 0, 1, 2)
	_, err = runOp(13, "Unsqueeze", nil, 1, iota32(3), i64(0, 0))
	wantErr(t, "unsqueeze repeated", err, "repeat")
	r = mustOp(t, 13, "Flatten", map[string]*graph.Attr{"axis": graph.AInt(-1)}, x)
	if !tensor.SameShape(r.Shape(), []int{3, 2}) {
		t.Errorf("flatten -1: %v", r.Shape())
	}
	r = mustOp(t, 13, "Flatten", map[string]*graph.Attr{"axis": graph.AInt(0)}, x)
	if !tensor.SameShape(r.Shape(), []int{1, 6}) {
		t.Errorf("flatten 0: %v", r.Shape())
	}
}

func TestSliceSteps(t *testing.T) {
	x := iota32(10)
	big, small := int64(math.MaxInt64), int64(math.MinInt64)
	cases := []struct {
		starts, ends, steps []int64
		want                []float64
	}{
		{[]int64{-1}, []int64{small}, []int64{-1}, []float64{9, 8, 7, 6, 5, 4, 3, 2, 1, 0}},
		{[]int64{big}, []int64{small}, []int64{-3}, []float64{9, 6, 3, 0}},
		{[]int64{8}, []int64{2}, []int64{-2}, []float64{8, 6, 4}},
		{[]int64{2}, []int64{8}, []int64{-1}, nil},
		{[]int64{-100}, []int64{big}, []int64{4}, []float64{0, 4, 8}},
		{[]int64{20}, []int64{30}, []int64{1}, nil},
		{[]int64{1}, []int64{-1}, nil, []float64{1, 2, 3, 4, 5, 6, 7, 8}},
	}
	for _, c := range cases {
		ins := []*tensor.Tensor{x, i64(c.starts...), i64(c.ends...), i64(0)}
		if c.steps != nil {
			ins = append(ins, i64(c.steps...))
		}
		r := mustOp(t, 13, "Slice", nil, ins...)
		expect(t, fmt.Sprint(c.starts, c.ends, c.steps), r, tensor.Float32, []int{len(c.want)}, c.want...)
	}
	// 2-D, negative axis, int64 data; opset 9 attributes.
	m := tensor.FromInt64([]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 3, 4)
	r := mustOp(t, 13, "Slice", nil, m, i64(3, 2), i64(0, small), i64(-1, 0), i64(-2, -1))
	expect(t, "2-D", r, tensor.Int64, []int{3, 2}, 11, 9, 7, 5, 3, 1)
	r = mustOp(t, 9, "Slice", map[string]*graph.Attr{"starts": graph.AInts(1), "ends": graph.AInts(1000), "axes": graph.AInts(1)}, m)
	expect(t, "opset 9", r, tensor.Int64, []int{3, 3}, 1, 2, 3, 5, 6, 7, 9, 10, 11)
	_, err := runOp(13, "Slice", nil, 1, x, i64(0), i64(3), i64(0), i64(0))
	wantErr(t, "step 0", err, "step 0")
}

func TestSplitConcatTranspose(t *testing.T) {
	x := iota32(7)
	r, err := runOp(18, "Split", map[string]*graph.Attr{"num_outputs": graph.AInt(3)}, 3, x)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "split 18 [0]", r[0], tensor.Float32, []int{3}, 0, 1, 2)
	expect(t, "split 18 [2]", r[2], tensor.Float32, []int{1}, 6)
	r, err = runOp(11, "Split", map[string]*graph.Attr{"split": graph.AInts(2, 5)}, 2, x)
	if err != nil {
		t.Fatal(err)
	}
	expect(t, "split 11", r[1], tensor.Float32, []int{5}, 2, 3, 4, 5, 6)
	_, err = runOp(13, "Split", nil, 2, x)
	wantErr(t, "uneven", err, "equal parts")
	b := tensor.FromBool([]bool{true, false, true, true}, 2, 2)
	c := mustOp(t, 13, "Concat", map[string]*graph.Attr{"axis": graph.AInt(-1)}, b, b)
	expect(t, "concat bool", c, tensor.Bool, []int{2, 4}, 1, 0, 1, 0, 1, 1, 1, 1)
	_, err = runOp(13, "Concat", map[string]*graph.Attr{"axis": graph.AInt(0)}, 1, i64(1), iota32(1))
	wantErr(t, "mixed", err, "input 1 is float32")
	tr := mustOp(t, 13, "Transpose", map[string]*graph.Attr{"perm": graph.AInts(1, 2, 0)}, iota32(2, 1, 3))
	expect(t, "transpose", tr, tensor.Float32, []int{1, 3, 2}, 0, 3, 1, 4, 2, 5)
	tr = mustOp(t, 13, "Transpose", nil, tensor.FromUint8([]uint8{1, 2, 3, 4, 5, 6}, 2, 3))
	expect(t, "transpose default", tr, tensor.Uint8, []int{3, 2}, 1, 4, 2, 5, 3, 6)
}

func TestShapeSizeExpandTile(t *testing.T) {
	x := iota32(2, 3, 4)
	r := mustOp(t, 15, "Shape", map[string]*graph.Attr{"start": graph.AInt(-2)}, x)
	expect(t, "shape -2:", r, tensor.Int64, []int{2}, 3, 4)
	r = mustOp(t, 15, "Shape", map[string]*graph.Attr{"start": graph.AInt(2), "end": graph.AInt(1)}, x)
	expect(t, "shape empty", r, tensor.Int64, []int{0})
	r = mustOp(t, 13, "Size", nil, x)
	expect(t, "size", r, tensor.Int64, []int{}, 24)
	r = mustOp(t, 13, "Expand", nil, tensor.FromInt32([]int32{1, 2, 3}, 3, 1), i64(2, 1, 2))
	expect(t, "expand", r, tensor.Int32, []int{2, 3, 2}, 1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3)
	r = mustOp(t, 13, "Expand", nil, iota32(3, 1), i64(1))
	expect(t, "expand smaller", r, tensor.Float32, []int{3, 1}, 0, 1, 2)
	r = mustOp(t, 13, "Tile", nil, tensor.FromBool([]bool{true, false}, 1, 2), i64(2, 2))
	expect(t, "tile", r, tensor.Bool, []int{2, 4}, 1, 0, 1, 0, 1, 0, 1, 0)
}
