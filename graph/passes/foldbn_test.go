package passes_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/tensor"
)

func model(g *graph.Graph) *graph.Model {
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}
}

// run runs m node by node (no executor rewrites) on x.
func run(t *testing.T, m *graph.Model, x *tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	p, err := exec.Compile(m, exec.Options{Unoptimized: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), map[string]*tensor.Tensor{p.InputNames()[0]: x})
	if err != nil {
		t.Fatal(err)
	}
	var outs []*tensor.Tensor
	for _, n := range p.OutputNames() {
		outs = append(outs, res[n])
	}
	return outs
}

func assertClose(t *testing.T, what string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	g, w := got.F32(), want.F32()
	if len(g) != len(w) {
		t.Fatalf("%s: %d values, want %d", what, len(g), len(w))
	}
	for i := range w {
		if d := math.Abs(float64(g[i] - w[i])); d > tol*math.Max(1, math.Abs(float64(w[i]))) {
			t.Fatalf("%s: [%d] = %g, want %g", what, i, g[i], w[i])
		}
	}
}

func randn(rng *tensor.RNG, shape ...int) *tensor.Tensor { return tensor.Randn(rng, shape...) }

func positive(rng *tensor.RNG, n int) *tensor.Tensor {
	t := tensor.Rand(rng, n)
	for i, v := range t.F32() {
		t.F32()[i] = 0.25 + v
	}
	return t
}

// addBN appends a BatchNormalization of x with c random channels.
func addBN(g *graph.Graph, rng *tensor.RNG, name string, x *graph.Value, c int, eps float32) *graph.Node {
	s := g.AddInitializer(name+".weight", randn(rng, c))
	b := g.AddInitializer(name+".bias", randn(rng, c))
	m := g.AddInitializer(name+".running_mean", randn(rng, c))
	v := g.AddInitializer(name+".running_var", positive(rng, c))
	return g.AddNode(name, "BatchNormalization", []*graph.Value{x, s, b, m, v}, []string{name + "_out"},
		map[string]*graph.Attr{"epsilon": graph.AFloat(eps)})
}

func TestFoldBatchNormHandComputed(t *testing.T) {
	// One channel, eps 0: rsqrt(4) = 0.5, scale = 3*0.5 = 1.5,
	// w' = 2*1.5 = 3, b' = ((1 - 0.5)*0.5)*3 + 0.25 = 1.
	g := graph.New("hand")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 1, 2, 2))
	w := g.AddInitializer("w", tensor.FromFloat32([]float32{2}, 1, 1, 1, 1))
	b := g.AddInitializer("b", tensor.FromFloat32([]float32{1}, 1))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, w, b}, []string{"c"}, nil)
	bn := g.AddNode("bn", "BatchNormalization", []*graph.Value{conv.Outputs[0],
		g.AddInitializer("gamma", tensor.FromFloat32([]float32{3}, 1)),
		g.AddInitializer("beta", tensor.FromFloat32([]float32{0.25}, 1)),
		g.AddInitializer("mean", tensor.FromFloat32([]float32{0.5}, 1)),
		g.AddInitializer("var", tensor.FromFloat32([]float32{4}, 1)),
	}, []string{"y"}, map[string]*graph.Attr{"epsilon": graph.AFloat(0)})
	g.Outputs = []*graph.Value{bn.Outputs[0]}
	n, err := passes.FoldBatchNorm(g)
	if err != nil || n != 1 {
		t.Fatalf("FoldBatchNorm = %d, %v; want 1", n, err)
	}
	if len(g.Nodes) != 1 || g.Nodes[0] != conv || conv.Outputs[0] != g.Outputs[0] || g.Outputs[0].Name != "y" {
		t.Fatalf("after folding: nodes %v, conv outputs %v", g.Nodes, conv.Outputs)
	}
	if got := conv.Inputs[1].Const.F32()[0]; got != 3 {
		t.Errorf("folded weight %g, want 3", got)
	}
	if got := conv.Inputs[2].Const.F32()[0]; got != 1 {
		t.Errorf("folded bias %g, want 1", got)
	}
	if len(g.Initializers) != 2 {
		t.Errorf("initializers %v, want only the folded weight and bias", g.Initializers)
	}
	if err := graph.Verify(g); err != nil {
		t.Fatal(err)
	}
	out := run(t, model(g), tensor.FromFloat32([]float32{1, -1, 0.5, 2}, 1, 1, 2, 2))[0]
	assertClose(t, "hand", out, tensor.FromFloat32([]float32{4, -2, 2.5, 7}, 1, 1, 2, 2), 0)
}

// TestFoldBatchNormMatchesIntrinsic folds conv, grouped transposed conv
// and Gemm batch norms and compares the weights with nn/intrinsic's
// PyTorch-order folding bit for bit and the outputs with the unfolded
// graph within 1e-5.
func TestFoldBatchNormMatchesIntrinsic(t *testing.T) {
	rng := tensor.NewRNG(3)
	g := graph.New("mixed")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2, 4, 5, 5))
	cw := g.AddInitializer("conv.weight", randn(rng, 6, 4, 3, 3))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, cw}, []string{"c"}, map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)})
	bn1 := addBN(g, rng, "bn1", conv.Outputs[0], 6, 1e-5)
	tw := g.AddInitializer("convt.weight", randn(rng, 6, 2, 2, 2))
	tb := g.AddInitializer("convt.bias", randn(rng, 4))
	convt := g.AddNode("convt", "ConvTranspose", []*graph.Value{bn1.Outputs[0], tw, tb}, []string{"ct"},
		map[string]*graph.Attr{"group": graph.AInt(2), "strides": graph.AInts(2, 2)})
	bn2 := addBN(g, rng, "bn2", convt.Outputs[0], 4, 1e-3)
	flat := g.AddNode("flat", "Flatten", []*graph.Value{bn2.Outputs[0]}, []string{"f"}, nil)
	gw := g.AddInitializer("fc.weight", randn(rng, 3, 400))
	gb := g.AddInitializer("fc.bias", randn(rng, 3))
	gemm := g.AddNode("fc", "Gemm", []*graph.Value{flat.Outputs[0], gw, gb}, []string{"l"}, map[string]*graph.Attr{"transB": graph.AInt(1)})
	bn3 := addBN(g, rng, "bn3", gemm.Outputs[0], 3, 1e-5)
	g.Outputs = []*graph.Value{bn3.Outputs[0]}

	in := randn(rng, 2, 4, 5, 5)
	want := run(t, model(g), in)[0]
	bnOf := func(n *graph.Node) *nn.BatchNorm {
		return &nn.BatchNorm{NumFeatures: n.Inputs[1].Const.Numel(), Eps: n.Attrs["epsilon"].F,
			Weight: n.Inputs[1].Const, Bias: n.Inputs[2].Const, RunningMean: n.Inputs[3].Const, RunningVar: n.Inputs[4].Const}
	}
	wantW1, wantB1, err := intrinsic.FuseConvBNWeights(cw.Const, nil, bnOf(bn1))
	if err != nil {
		t.Fatal(err)
	}
	wantW3, wantB3, err := intrinsic.FuseLinearBNWeights(gw.Const, gb.Const, bnOf(bn3))
	if err != nil {
		t.Fatal(err)
	}
	ct := &nn.ConvTranspose2d{InChannels: 6, OutChannels: 4, KernelSize: [2]int{2, 2}, Stride: [2]int{2, 2}, Groups: 2,
		Weight: tw.Const, Bias: tb.Const}
	bt := &nn.BatchNorm2d{BatchNorm: *bnOf(bn2)}
	nn.Eval(ct)
	nn.Eval(bt)
	wantCT, err := intrinsic.FoldConvTransposeBN2d(ct, bt)
	if err != nil {
		t.Fatal(err)
	}

	n, err := passes.FoldBatchNorm(g)
	if err != nil || n != 3 {
		t.Fatalf("FoldBatchNorm = %d, %v; want 3", n, err)
	}
	if c := g.OpCounts(); c["BatchNormalization"] != 0 || len(g.Nodes) != 4 {
		t.Fatalf("after folding: %v", c)
	}
	if err := graph.Verify(g); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want *tensor.Tensor
	}{
		{"conv weight", conv.Inputs[1].Const, wantW1}, {"conv bias", conv.Inputs[2].Const, wantB1},
		{"convt weight", convt.Inputs[1].Const, wantCT.Weight}, {"convt bias", convt.Inputs[2].Const, wantCT.Bias},
		{"gemm weight", gemm.Inputs[1].Const, wantW3}, {"gemm bias", gemm.Inputs[2].Const, wantB3},
	} {
		assertClose(t, c.what, c.got, c.want, 0)
	}
	got := run(t, model(g), in)[0]
	assertClose(t, "folded output", got, want, 1e-5)
	for _, v := range g.Initializers {
		for _, old := range []string{"conv.weight", "convt.bias", "fc.weight", "bn1.running_var"} {
			if v.Name == old {
				t.Errorf("initializer %s is still there after folding", old)
			}
		}
	}
}

// TestFoldBatchNormLeaves checks the batch norms that must stay: a conv
// output read twice, a graph-output conv, a weight that is a graph input,
// a training-mode batch norm and a Gemm with alpha != 1.
func TestFoldBatchNormLeaves(t *testing.T) {
	rng := tensor.NewRNG(5)
	g := graph.New("leave")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 2, 4, 4))
	w := g.AddInitializer("w", randn(rng, 2, 2, 1, 1))
	c1 := g.AddNode("c1", "Conv", []*graph.Value{x, w}, []string{"c1_out"}, nil)
	b1 := addBN(g, rng, "b1", c1.Outputs[0], 2, 1e-5)
	add := g.AddNode("add", "Add", []*graph.Value{b1.Outputs[0], c1.Outputs[0]}, []string{"a"}, nil)
	c2 := g.AddNode("c2", "Conv", []*graph.Value{add.Outputs[0], w}, []string{"c2_out"}, nil)
	b2 := addBN(g, rng, "b2", c2.Outputs[0], 2, 1e-5)
	wi := g.AddInput("wi", graph.TensorType(graph.Float, 2, 2, 1, 1))
	wi.Const = randn(rng, 2, 2, 1, 1)
	c3 := g.AddNode("c3", "Conv", []*graph.Value{b2.Outputs[0], wi}, []string{"c3_out"}, nil)
	b3 := addBN(g, rng, "b3", c3.Outputs[0], 2, 1e-5)
	c4 := g.AddNode("c4", "Conv", []*graph.Value{b3.Outputs[0], w}, []string{"c4_out"}, nil)
	b4 := addBN(g, rng, "b4", c4.Outputs[0], 2, 1e-5)
	b4.Attrs["training_mode"] = graph.AInt(1)
	flat := g.AddNode("flat", "Flatten", []*graph.Value{c4.Outputs[0]}, []string{"f"}, nil)
	gm := g.AddNode("fc", "Gemm", []*graph.Value{flat.Outputs[0], g.AddInitializer("fw", randn(rng, 32, 3))}, []string{"l"},
		map[string]*graph.Attr{"alpha": graph.AFloat(2)})
	b5 := addBN(g, rng, "b5", gm.Outputs[0], 3, 1e-5)
	g.Outputs = []*graph.Value{b5.Outputs[0], c2.Outputs[0], b4.Outputs[0]}
	n, err := passes.FoldBatchNorm(g)
	if err != nil || n != 0 {
		t.Fatalf("FoldBatchNorm = %d, %v; want 0", n, err)
	}
	if c := g.OpCounts()["BatchNormalization"]; c != 5 {
		t.Fatalf("%d batch norms left, want 5", c)
	}
}

func TestFoldBatchNormChannelMismatch(t *testing.T) {
	rng := tensor.NewRNG(6)
	g := graph.New("bad")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 2, 4, 4))
	c := g.AddNode("c", "Conv", []*graph.Value{x, g.AddInitializer("w", tensor.Randn(rng, 2, 2, 1, 1))}, []string{"c_out"}, nil)
	bn := addBN(g, rng, "bn", c.Outputs[0], 3, 1e-5)
	g.Outputs = []*graph.Value{bn.Outputs[0]}
	if _, err := passes.FoldBatchNorm(g); err == nil || !strings.Contains(err.Error(), "node bn (BatchNormalization) has 3 channels, its input c (Conv) has 2") {
		t.Fatalf("FoldBatchNorm error %v", err)
	}
	if _, err := passes.FoldBatchNorm(nil); err == nil {
		t.Fatal("nil graph accepted")
	}
}
