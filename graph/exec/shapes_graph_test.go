package exec

import (
	"context"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

func shModel(g *graph.Graph, opset int64) *graph.Model {
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": opset}}
}

// shNode adds a one-output node and returns its output.
func shNode(g *graph.Graph, name, op string, attrs map[string]*graph.Attr, ins ...*graph.Value) *graph.Value {
	return g.AddNode(name, op, ins, []string{name}, attrs).Outputs[0]
}

// torchChain builds the Shape -> Gather -> Unsqueeze -> Concat -> Reshape
// chains PyTorch exports for x.view(b, s, 8, 8) and back to
// x.view(b, s, -1), with x of type xt.
func torchChain(xt graph.Type) (*graph.Model, map[string]*graph.Value) {
	g := graph.New("main")
	x := g.AddInput("x", xt)
	zero := g.AddInitializer("zero", tensor.FromInt64([]int64{0}).Reshape())
	one := g.AddInitializer("one", tensor.FromInt64([]int64{1}).Reshape())
	two := g.AddInitializer("two", tensor.FromInt64([]int64{2}).Reshape())
	ax0 := g.AddInitializer("ax0", tensor.FromInt64([]int64{0}, 1))
	eight := g.AddInitializer("eight", tensor.FromInt64([]int64{8}, 1))
	minus := g.AddInitializer("minus", tensor.FromInt64([]int64{-1}, 1))
	heads := g.AddInitializer("heads", tensor.FromInt64([]int64{8}, 1))
	v := map[string]*graph.Value{}
	v["shape"] = shNode(g, "shape", "Shape", nil, x)
	v["b"] = shNode(g, "b", "Gather", nil, v["shape"], zero)
	v["s"] = shNode(g, "s", "Gather", nil, v["shape"], one)
	v["d"] = shNode(g, "d", "Gather", nil, v["shape"], two)
	v["ud"] = shNode(g, "ud", "Unsqueeze", nil, v["d"], ax0)
	v["ub"] = shNode(g, "ub", "Unsqueeze", nil, v["b"], ax0)
	v["us"] = shNode(g, "us", "Unsqueeze", nil, v["s"], ax0)
	v["udh"] = shNode(g, "udh", "Div", nil, v["ud"], heads)
	v["cat"] = shNode(g, "cat", "Concat", map[string]*graph.Attr{"axis": graph.AInt(0)}, v["ub"], v["us"], eight, v["udh"])
	v["view"] = shNode(g, "view", "Reshape", nil, x, v["cat"])
	v["perm"] = shNode(g, "perm", "Transpose", map[string]*graph.Attr{"perm": graph.AInts(0, 2, 1, 3)}, v["view"])
	v["back"] = shNode(g, "back", "Transpose", map[string]*graph.Attr{"perm": graph.AInts(0, 2, 1, 3)}, v["perm"])
	v["cat2"] = shNode(g, "cat2", "Concat", map[string]*graph.Attr{"axis": graph.AInt(0)}, v["ub"], v["us"], minus)
	v["flat"] = shNode(g, "flat", "Reshape", nil, v["back"], v["cat2"])
	v["range"] = shNode(g, "range", "Range", nil, zero, v["s"], one)
	v["fill"] = shNode(g, "fill", "ConstantOfShape", nil, v["cat"])
	v["slice"] = shNode(g, "slice", "Slice", nil, v["shape"], g.AddInitializer("st", tensor.FromInt64([]int64{1}, 1)),
		g.AddInitializer("en", tensor.FromInt64([]int64{3}, 1)))
	v["expand"] = shNode(g, "expand", "Expand", nil, g.AddInitializer("one11", tensor.FromFloat32([]float32{1}, 1, 1)), v["slice"])
	for _, k := range []string{"flat", "range", "fill", "expand"} {
		g.Outputs = append(g.Outputs, v[k])
	}
	return shModel(g, 13), v
}

func TestInferShapesTorchChain(t *testing.T) {
	m, v := torchChain(sty(t, "float32[B,S,64]"))
	if _, err := InferShapes(m); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"shape": "int64[3]", "b": "int64[]", "ub": "int64[1]", "cat": "int64[4]",
		"view": "float32[B,S,8,8]", "perm": "float32[B,8,S,8]", "back": "float32[B,S,8,8]",
		"flat": "float32[B,S,64]", "range": "int64[S]", "fill": "float32[B,S,8,8]", "expand": "float32[S,64]",
	} {
		if got := v[name].Type.String(); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}

	// With known sizes the shape tensors become constants.
	m, v = torchChain(sty(t, "float32[2,5,64]"))
	if _, err := InferShapes(m); err != nil {
		t.Fatal(err)
	}
	if got := v["flat"].Type.String(); got != "float32[2,5,64]" {
		t.Errorf("flat: %s", got)
	}
	// And the inferred types are the ones a run gives.
	x := tensor.RandUniform(tensor.NewRNG(1), -1, 1, 2, 5, 64)
	m, v = torchChain(sty(t, "float32[B,S,64]"))
	g := m.Graph
	g.Outputs = nil
	names := []string{"view", "perm", "flat", "range", "fill", "expand", "cat"}
	for _, k := range names {
		g.Outputs = append(g.Outputs, v[k])
	}
	p, err := Compile(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": x})
	if err != nil {
		t.Fatal(err)
	}
	m2, v2 := torchChain(sty(t, "float32[2,5,64]"))
	if _, err := InferShapes(m2); err != nil {
		t.Fatal(err)
	}
	for _, k := range names {
		if got, want := v2[k].Type, graph.TypeOf(res[k]); got.String() != want.String() {
			t.Errorf("%s: inferred %s, run %s", k, got, want)
		}
	}
}

func TestInferShapesDeclared(t *testing.T) {
	build := func(declared graph.Type) (*graph.Model, *graph.Value) {
		g := graph.New("main")
		x := g.AddInput("x", sty(t, "float32[N,3]"))
		y := shNode(g, "relu1", "Relu", nil, x)
		y.Type = declared
		g.Outputs = append(g.Outputs, y)
		return shModel(g, 13), y
	}
	for _, c := range []struct{ decl, want, err string }{
		{decl: "float32[N,4]", err: `node relu1 (Relu): output "relu1": inferred type float32[N,3] conflicts with the declared float32[N,4]`},
		{decl: "int64[*]", err: "conflicts"},
		{decl: "float32[N,3,1]", err: "conflicts"},
		{decl: "undefined[*]", want: "float32[N,3]"},
		{decl: "float32[?,?]", want: "float32[N,3]"},
		{decl: "float32[M,K]", want: "float32[M,3]"},
		{decl: "float32[7,3]", want: "float32[7,3]"},
	} {
		m, y := build(sty(t, c.decl))
		_, err := InferShapes(m)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("declared %s: error %v, want %q", c.decl, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("declared %s: %v", c.decl, err)
		} else if got := y.Type.String(); got != c.want {
			t.Errorf("declared %s: %s, want %s", c.decl, got, c.want)
		}
	}

	// A float16 constant is held as float32; its declared type stays.
	g := graph.New("main")
	c := shNode(g, "c", "Constant", map[string]*graph.Attr{"value": graph.ATensor(tensor.FromFloat32([]float32{1, 2}, 2))})
	c.Type = sty(t, "float16[2]")
	g.Outputs = append(g.Outputs, c)
	if _, err := InferShapes(shModel(g, 13)); err != nil || c.Type.String() != "float16[2]" {
		t.Errorf("float16 constant: %s, %v", c.Type, err)
	}

	// Inference is idempotent: a second run sees its own types as declared.
	m, v := torchChain(sty(t, "float32[B,S,64]"))
	r1, err := InferShapes(m)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := InferShapes(m)
	if err != nil || r1.String() != r2.String() || v["flat"].Type.String() != "float32[B,S,64]" {
		t.Errorf("second run: %v, %v (first %v)", r2, err, r1)
	}
}

// branch returns a subgraph computing op(outer) with the given attributes.
func branch(name string, outer *graph.Value, op string, attrs map[string]*graph.Attr, extra ...*graph.Value) *graph.Graph {
	b := graph.New(name)
	y := shNode(b, name+"_y", op, attrs, append([]*graph.Value{outer}, extra...)...)
	b.Outputs = append(b.Outputs, y)
	return b
}

func TestInferShapesIf(t *testing.T) {
	build := func(cond *tensor.Tensor, elseOp string) (*graph.Model, *graph.Value, error) {
		g := graph.New("main")
		x := g.AddInput("x", sty(t, "float32[N,3]"))
		var c *graph.Value
		if cond != nil {
			c = g.AddInitializer("c", cond)
		} else {
			c = g.AddInput("c", sty(t, "bool[]"))
		}
		pads := g.AddInitializer("pads", tensor.FromInt64([]int64{0, 0, 0, 1}, 4))
		ax := g.AddInitializer("ax", tensor.FromInt64([]int64{0}, 1))
		then := branch("then", x, "Relu", nil)
		var els *graph.Graph
		if elseOp == "Pad" {
			els = branch("else", x, "Pad", nil, pads)
		} else {
			els = branch("else", x, "Squeeze", nil, ax) // fails for a known non-1 dimension
		}
		n := g.AddNode("if", "If", []*graph.Value{c}, []string{"y"}, map[string]*graph.Attr{"then_branch": graph.AGraph(then), "else_branch": graph.AGraph(els)})
		g.Outputs = append(g.Outputs, n.Outputs[0])
		m := shModel(g, 13)
		_, err := InferShapes(m)
		return m, n.Outputs[0], err
	}
	for _, c := range []struct {
		cond   *tensor.Tensor
		elseOp string
		want   string
	}{
		{nil, "Pad", "float32[N,?]"},
		{tensor.FromBool([]bool{true}), "Pad", "float32[N,3]"},
		{tensor.FromBool([]bool{false}), "Pad", "float32[N,4]"},
	} {
		_, y, err := build(c.cond, c.elseOp)
		if err != nil || y.Type.String() != c.want {
			t.Errorf("cond %v: %s, %v; want %s", c.cond, y.Type, err, c.want)
		}
	}
	// A branch that cannot run on these shapes is not the one taken.
	g := graph.New("main")
	x := g.AddInput("x", sty(t, "float32[2,3]"))
	c := g.AddInput("c", sty(t, "bool[]"))
	ax := g.AddInitializer("ax", tensor.FromInt64([]int64{0}, 1))
	n := g.AddNode("if", "If", []*graph.Value{c}, []string{"y"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(branch("then", x, "Relu", nil)), "else_branch": graph.AGraph(branch("else", x, "Squeeze", nil, ax))})
	g.Outputs = append(g.Outputs, n.Outputs[0])
	if _, err := InferShapes(shModel(g, 13)); err != nil || n.Outputs[0].Type.String() != "float32[2,3]" {
		t.Errorf("infeasible else: %s, %v", n.Outputs[0].Type, err)
	}
	// Both branches failing is an error.
	g = graph.New("main")
	x = g.AddInput("x", sty(t, "float32[2,3]"))
	c = g.AddInput("c", sty(t, "bool[]"))
	ax = g.AddInitializer("ax", tensor.FromInt64([]int64{0}, 1))
	g.AddNode("if", "If", []*graph.Value{c}, []string{"y"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(branch("then", x, "Squeeze", nil, ax)), "else_branch": graph.AGraph(branch("else", x, "Squeeze", nil, ax))})
	if _, err := InferShapes(shModel(g, 13)); err == nil || !strings.Contains(err.Error(), "cannot squeeze") {
		t.Errorf("both branches failing: %v", err)
	}
}

func TestInferShapesLoop(t *testing.T) {
	g := graph.New("main")
	x := g.AddInput("x", sty(t, "float32[N,4]"))
	trip := g.AddInitializer("trip", tensor.FromInt64([]int64{5}).Reshape())
	init := g.AddInitializer("init", tensor.FromFloat32([]float32{0}, 1))
	body := graph.New("body")
	body.AddInput("i", graph.Type{})
	cond := body.AddInput("cond", graph.Type{})
	acc := body.AddInput("acc", graph.Type{})
	grown := shNode(body, "grown", "Concat", map[string]*graph.Attr{"axis": graph.AInt(0)}, acc, init) // grows by one each step
	row := shNode(body, "row", "Relu", nil, x)
	condOut := shNode(body, "cond_out", "Identity", nil, cond)
	body.Outputs = []*graph.Value{condOut, grown, row}
	n := g.AddNode("loop", "Loop", []*graph.Value{trip, nil, init}, []string{"final", "rows"}, map[string]*graph.Attr{"body": graph.AGraph(body)})
	g.Outputs = n.Outputs
	if _, err := InferShapes(shModel(g, 13)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"float32[?]", "float32[5,N,4]"} {
		if got := n.Outputs[i].Type.String(); got != want {
			t.Errorf("output %d: %s, want %s", i, got, want)
		}
	}
	if got := acc.Type.String(); got != "float32[?]" {
		t.Errorf("carried body input: %s", got)
	}
	if got := row.Type.String(); got != "float32[N,4]" {
		t.Errorf("body value: %s", got)
	}
}

func TestInferShapesScan(t *testing.T) {
	g := graph.New("main")
	s0 := g.AddInput("s0", sty(t, "float32[3]"))
	xs := g.AddInput("xs", sty(t, "float32[T,3]"))
	body := graph.New("body")
	s := body.AddInput("s", graph.Type{})
	xt := body.AddInput("xt", graph.Type{})
	sum := shNode(body, "sum", "Add", nil, s, xt)
	y := shNode(body, "y", "Unsqueeze", nil, sum, body.AddInitializer("ax", tensor.FromInt64([]int64{0}, 1)))
	body.Outputs = []*graph.Value{sum, y}
	n := g.AddNode("scan", "Scan", []*graph.Value{s0, xs}, []string{"final", "ys"},
		map[string]*graph.Attr{"body": graph.AGraph(body), "num_scan_inputs": graph.AInt(1), "scan_output_axes": graph.AInts(-1)})
	g.Outputs = n.Outputs
	if _, err := InferShapes(shModel(g, 13)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"float32[3]", "float32[1,3,T]"} {
		if got := n.Outputs[i].Type.String(); got != want {
			t.Errorf("output %d: %s, want %s", i, got, want)
		}
	}
	if got := xt.Type.String(); got != "float32[3]" {
		t.Errorf("scan slice: %s", got)
	}
}

func TestInferShapesReport(t *testing.T) {
	g := graph.New("main")
	x := g.AddInput("x", sty(t, "float32[N,3]"))
	sh := g.AddInput("sh", sty(t, "int64[2]"))
	a := shNode(g, "a", "Relu", nil, x)
	b := shNode(g, "b", "Reshape", nil, a, sh)
	c := g.AddNode("c", "Custom", []*graph.Value{b}, []string{"c"}, nil)
	c.Domain = "com.example"
	d := shNode(g, "d", "Shape", nil, x)
	g.Outputs = []*graph.Value{c.Outputs[0], d}
	r, err := InferShapes(shModel(g, 13))
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Values: 4, Exact: 1, Symbolic: 1, Partial: 1, Unknown: 1, NoElem: 1,
		PartialByOp: map[string]int{"Reshape": 1}, UnknownByOp: map[string]int{"com.example.Custom": 1}}
	if r.String() != want.String() {
		t.Errorf("report %v, want %v", r, want)
	}
	if got := r.String(); got != "4 values: 1 exact, 1 symbolic, 1 partial, 1 unknown rank, 1 unknown element type; partial: Reshape=1; unknown: com.example.Custom=1" {
		t.Errorf("String: %s", got)
	}
}

// TestInferShapesCoverage checks that every operator the executor supports
// has a shape rule (control flow is handled by the walk).
func TestInferShapesCoverage(t *testing.T) {
	for _, op := range Supported() {
		switch op {
		case "If", "Loop", "Scan":
			continue
		}
		if shapeRules[op] == nil {
			t.Errorf("no shape rule for %s", op)
		}
	}
}
