package passes_test

import (
	"slices"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// TestFusePatternsHandBuilt covers the extension Conv2d+Add+ReLU, Add+ReLU
// of two activations, BatchNorm2d+ReLU, Conv1d+ReLU, Linear+BatchNorm1d,
// a MatMul of two activations, and the sequences that must not match: a
// conv output with two users, a conv output that is a graph output, and a
// conv followed by the Add of a constant.
func TestFusePatternsHandBuilt(t *testing.T) {
	rng := tensor.NewRNG(1)
	g := graph.New("hand")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 2, 4, 4))
	w := g.AddInitializer("w", tensor.Randn(rng, 2, 2, 1, 1))
	node := func(name, op string, in ...*graph.Value) *graph.Node {
		return g.AddNode(name, op, in, []string{name + "_out"}, nil)
	}
	// conv -> add(residual x) -> relu
	c1 := node("c1", "Conv", x, w)
	a1 := node("a1", "Add", c1.Outputs[0], x)
	r1 := node("r1", "Relu", a1.Outputs[0])
	// conv whose output two nodes read: relu and add
	c2 := node("c2", "Conv", r1.Outputs[0], w)
	r2 := node("r2", "Relu", c2.Outputs[0])
	a2 := node("a2", "Add", r2.Outputs[0], c2.Outputs[0])
	r3 := node("r3", "Relu", a2.Outputs[0]) // Add+ReLU
	// bn -> relu
	bn := addBN(g, rng, "bn", r3.Outputs[0], 2, 1e-5)
	r4 := node("r4", "Relu", bn.Outputs[0])
	// conv whose output is also a graph output
	c3 := node("c3", "Conv", r4.Outputs[0], w)
	r5 := node("r5", "Relu", c3.Outputs[0])
	// conv + constant add + relu: the Add is a bias, so only Add+ReLU
	c4 := node("c4", "Conv", r5.Outputs[0], w)
	a3 := node("a3", "Add", c4.Outputs[0], g.AddInitializer("k", tensor.Randn(rng, 2, 1, 1)))
	r6 := node("r6", "Relu", a3.Outputs[0])
	// 1-D conv + relu on a reshaped input
	x1 := g.AddInput("x1", graph.TensorType(graph.Float, 1, 2, 8))
	c5 := node("c5", "Conv", x1, g.AddInitializer("w1", tensor.Randn(rng, 3, 2, 3)))
	r7 := node("r7", "Relu", c5.Outputs[0])
	// gemm -> batch norm 1d; matmul of two activations -> add -> relu
	x2 := g.AddInput("x2", graph.TensorType(graph.Float, 4, 5))
	gm := g.AddNode("gm", "Gemm", []*graph.Value{x2, g.AddInitializer("gw", tensor.Randn(rng, 3, 5))}, []string{"gm_out"},
		map[string]*graph.Attr{"transB": graph.AInt(1)})
	gm.Outputs[0].Type = graph.TensorType(graph.Float, 4, 3)
	bn1 := addBN(g, rng, "bn1", gm.Outputs[0], 3, 1e-5)
	mm := node("mm", "MatMul", x2, g.AddInput("x3", graph.TensorType(graph.Float, 5, 3)))
	a4 := node("a4", "Add", mm.Outputs[0], bn1.Outputs[0])
	r8 := node("r8", "Relu", a4.Outputs[0])
	g.Outputs = []*graph.Value{r6.Outputs[0], c3.Outputs[0], r7.Outputs[0], r8.Outputs[0]}
	if err := graph.Verify(g); err != nil {
		t.Fatal(err)
	}
	cfg := must[*quant.BackendConfig](t)(quant.GetBackendConfig("fbgemm"))
	before := append([]*graph.Node(nil), g.Nodes...)
	got := must[[]passes.Match](t)(passes.FusePatterns(g, cfg))
	checkMatches(t, "hand-built", got, []want{
		{"Conv2d+Add+ReLU", []string{"c1", "a1", "r1"}},
		{"Add+ReLU", []string{"a2", "r3"}},
		{"BatchNorm2d+ReLU", []string{"bn", "r4"}},
		{"Add+ReLU", []string{"a3", "r6"}},
		{"Conv1d+ReLU", []string{"c5", "r7"}},
		{"Linear+BatchNorm1d", []string{"gm", "bn1"}},
		{"Add+ReLU", []string{"a4", "r8"}},
	})
	if c := got[0].Config; c.FusedModule != "ConvAddReLU2d" || !c.HasWeight || len(c.DTypeConfigs) == 0 {
		t.Errorf("Conv2d+Add+ReLU config %+v", c)
	}
	if got[1].Config != cfg.Lookup("Add", "ReLU") {
		t.Error("Add+ReLU config is not the BackendConfig's entry")
	}
	if !slices.Equal(g.Nodes, before) || len(before) != 21 || g.Outputs[1] != c3.Outputs[0] {
		t.Error("FusePatterns changed the graph")
	}
	if _, err := passes.FusePatterns(g, nil); err == nil {
		t.Error("nil BackendConfig accepted")
	}
}

func TestOpKind(t *testing.T) {
	rng := tensor.NewRNG(2)
	g := graph.New("kinds")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2, 3, 4, 4))
	a := g.AddInput("a", graph.TensorType(graph.Float, 2, 3))
	for _, c := range []struct {
		op   string
		in   []*graph.Value
		want string
	}{
		{"Conv", []*graph.Value{x, g.AddInitializer("w2", tensor.Randn(rng, 2, 3, 1, 1))}, "Conv2d"},
		{"Conv", []*graph.Value{x, g.AddInitializer("w1", tensor.Randn(rng, 2, 3, 1))}, "Conv1d"},
		{"ConvTranspose", []*graph.Value{x, g.AddInitializer("wt", tensor.Randn(rng, 3, 2, 1, 1))}, "ConvTranspose2d"},
		{"Gemm", []*graph.Value{a, g.AddInitializer("gw", tensor.Randn(rng, 3, 3))}, "Linear"},
		{"Gemm", []*graph.Value{a, a}, ""},
		{"MatMul", []*graph.Value{a, g.AddInitializer("mw", tensor.Randn(rng, 3, 3))}, "Linear"},
		{"MatMul", []*graph.Value{a, a}, "MatMul"},
		{"BatchNormalization", []*graph.Value{a}, "BatchNorm1d"},
		{"BatchNormalization", []*graph.Value{x}, "BatchNorm2d"},
		{"Relu", []*graph.Value{x}, "ReLU"},
		{"Add", []*graph.Value{x, x}, "Add"},
		{"MaxPool", []*graph.Value{x}, "MaxPool2d"},
		{"Frobnicate", []*graph.Value{x}, ""},
	} {
		n := g.AddNode(c.op, c.op, c.in, []string{c.op + "_" + c.want}, nil)
		if got := passes.OpKind(n); got != c.want {
			t.Errorf("OpKind(%s of %v) = %q, want %q", c.op, c.in, got, c.want)
		}
	}
}
