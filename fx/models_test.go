package fx

import (
	"slices"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// checkTrace traces fn, runs the traced model on the examples with
// graph/exec and compares with fn's own outputs within 1e-5; it also
// checks the ONNX round trip. It returns the traced model.
func checkTrace(t *testing.T, what string, fn func(in []*tensor.Tensor) []*tensor.Tensor, root nn.Module, ins ...*tensor.Tensor) *graph.Model {
	t.Helper()
	want := forward(func() []*tensor.Tensor { return fn(ins) })
	m, err := TraceFunc(fn, root, ins)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	got := runGraph(t, m, ins...)
	if len(got) != len(want) {
		t.Fatalf("%s: %d outputs, want %d", what, len(got), len(want))
	}
	for i := range want {
		assertClose(t, what, got[i], want[i], 1e-5)
	}
	roundTrip(t, m, ins...)
	return m
}

// layerFn adapts a Layer to TraceFunc's function form.
func layerFn(l nn.Layer) func(in []*tensor.Tensor) []*tensor.Tensor {
	return func(in []*tensor.Tensor) []*tensor.Tensor { return []*tensor.Tensor{l.Forward(in[0])} }
}

func TestTraceMLP(t *testing.T) {
	rng := tensor.NewRNG(11)
	lin := must[*nn.Linear](t)
	ln := must[*nn.LayerNorm](t)
	mlp := nn.NewSequential(
		lin(nn.NewLinear(8, 16, nn.LinearOptions{RNG: rng})),
		nn.NewGELU(false),
		ln(nn.NewLayerNorm([]int{16}, nn.LayerNormOptions{})),
		lin(nn.NewLinear(16, 16, nn.LinearOptions{RNG: rng})),
		nn.NewGELU(true),
		nn.NewSiLU(),
		lin(nn.NewLinear(16, 4, nn.LinearOptions{RNG: rng, NoBias: true})),
		nn.NewSoftmax(-1),
	)
	nn.AssignPaths(mlp)
	nn.Eval(mlp)
	norm := mlp.ContainerChildren()[2].Module.(*nn.LayerNorm)
	norm.Weight.CopyFrom(tensor.RandUniform(rng, 0.5, 1.5, 16))
	norm.Bias.CopyFrom(tensor.RandUniform(rng, -0.5, 0.5, 16))

	// A 2-D input gives Gemm, a 3-D one MatMul with the transposed weight.
	m2 := checkTrace(t, "MLP 2-D", layerFn(mlp), mlp, tensor.Randn(rng, 5, 8))
	m3 := checkTrace(t, "MLP 3-D", layerFn(mlp), mlp, tensor.Randn(rng, 2, 3, 8))

	ops2 := map[string]int{}
	for _, n := range m2.Graph.Nodes {
		ops2[n.ModulePath+" "+n.ModuleType+" "+n.OpType]++
	}
	for k, want := range map[string]int{
		"0 Linear Gemm": 1, "1 GELU Div": 1, "1 GELU Erf": 1, "1 GELU Add": 1, "1 GELU Mul": 2,
		"2 LayerNorm LayerNormalization": 1, "3 Linear Gemm": 1, "4 GELU Tanh": 1, "4 GELU Mul": 6, "4 GELU Add": 2,
		"5 SiLU Sigmoid": 1, "5 SiLU Mul": 1, "6 Linear Gemm": 1, "7 Softmax Softmax": 1,
	} {
		if ops2[k] != want {
			t.Errorf("2-D MLP: %d nodes %q, want %d (all: %v)", ops2[k], k, want, ops2)
		}
	}
	if n := nodeOf(m2.Graph, "6", "Gemm"); n == nil || len(n.Inputs) != 2 {
		t.Errorf("a Linear without bias is a Gemm of two inputs: %v", n)
	}
	if n := nodeOf(m2.Graph, "2", "LayerNormalization"); n == nil {
		t.Error("no LayerNormalization")
	} else if ax, _ := n.Int("axis", 0); ax != -1 {
		t.Errorf("LayerNormalization axis %d, want -1", ax)
	}
	ops3 := map[string]int{}
	for _, n := range m3.Graph.Nodes {
		ops3[n.ModulePath+" "+n.OpType]++
	}
	if ops3["0 Transpose"] != 1 || ops3["0 MatMul"] != 1 || ops3["0 Add"] != 1 || ops3["6 MatMul"] != 1 || ops3["6 Add"] != 0 || ops3["0 Gemm"] != 0 {
		t.Errorf("3-D MLP nodes: %v", ops3)
	}
	wantInits := []string{"0.weight", "0.bias", "1/Gelu_sqrt2", "1/Gelu_one", "1/Gelu_half", "2.weight", "2.bias",
		"3.weight", "3.bias", "4/Gelu_kappa", "4/Gelu_beta", "4/Gelu_one", "4/Gelu_half", "6.weight"}
	if got := initNames(m2.Graph); !slices.Equal(got, wantInits) {
		t.Errorf("initializers %v\nwant %v", got, wantInits)
	}
}

// residual is a block whose forward uses functional ops directly.
type residual struct {
	nn.Base
	Conv nn.Layer `nn:"conv"`
	BN   nn.Layer `nn:"bn"`
	Pool nn.Layer `nn:"pool"`
	FC   nn.Layer `nn:"fc"`
}

func (r *residual) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(r, x, func(x *tensor.Tensor) *tensor.Tensor {
		h := ops.ReLU6(r.BN.Forward(r.Conv.Forward(x)))
		h = ops.Add(x, ops.MulScalar(h, 0.5))
		h = ops.Flatten(r.Pool.Forward(h), 1, -1)
		return ops.Hardswish(r.FC.Forward(h))
	})
}

func TestTraceResidual(t *testing.T) {
	rng := tensor.NewRNG(5)
	r := &residual{
		Conv: must[*nn.Conv2d](t)(nn.NewConv2d(6, 6, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), Groups: 2, RNG: rng})),
		BN:   must[*nn.BatchNorm2d](t)(nn.NewBatchNorm2d(6, nn.BatchNormOptions{})),
		Pool: must[*nn.AdaptiveAvgPool2d](t)(nn.NewAdaptiveAvgPool2d([2]int{1, 1})),
		FC:   must[*nn.Linear](t)(nn.NewLinear(6, 3, nn.LinearOptions{RNG: rng})),
	}
	randomizeBN(r, rng)
	nn.Eval(r)
	m := checkTrace(t, "residual", layerFn(r), r, tensor.Randn(rng, 2, 6, 7, 7))
	var rows []string
	for _, n := range m.Graph.Nodes {
		rows = append(rows, n.Name+" "+n.OpType+" "+n.ModulePath+" "+n.ModuleType)
	}
	want := []string{
		"conv/Conv Conv conv Conv2d",
		"bn/BatchNormalization BatchNormalization bn BatchNorm2d",
		"Clip Clip  residual",
		"Mul Mul  residual",
		"Add Add  residual",
		"pool/GlobalAveragePool GlobalAveragePool pool AdaptiveAvgPool2d",
		"Flatten Flatten  residual",
		"fc/Gemm Gemm fc Linear",
		"HardSwish HardSwish  residual",
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("nodes\n%q\nwant\n%q", rows, want)
	}
	if g, _ := m.Graph.Nodes[0].Int("group", 0); g != 2 {
		t.Errorf("Conv group %d, want 2", g)
	}
	clip := m.Graph.Nodes[2]
	if lo, hi := clip.Inputs[1], clip.Inputs[2]; lo.Name != "Clip_min" || hi.Name != "Clip_max" || lo.Const.F32()[0] != 0 || hi.Const.F32()[0] != 6 {
		t.Errorf("ReLU6 bounds %v %v", lo, hi)
	}
	if s := m.Graph.Nodes[3].Inputs[1]; s.Name != "Mul_scalar" || s.Const.NDim() != 0 || s.Const.F32()[0] != 0.5 {
		t.Errorf("MulScalar constant %v", s)
	}
}

func TestTraceTransformerEncoderLayer(t *testing.T) {
	for _, c := range []struct {
		name string
		o    nn.TransformerEncoderLayerOptions
		x    []int
	}{
		{"post-norm relu seq-first", nn.TransformerEncoderLayerOptions{DimFeedforward: 32}, []int{5, 2, 16}},
		{"pre-norm gelu batch-first", nn.TransformerEncoderLayerOptions{DimFeedforward: 24, Activation: "gelu", BatchFirst: true, NormFirst: true, Dropout: 0.1}, []int{2, 5, 16}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := tensor.NewRNG(9)
			c.o.RNG = rng
			l := must[*nn.TransformerEncoderLayer](t)(nn.NewTransformerEncoderLayer(16, 4, c.o))
			nn.AssignPaths(l)
			nn.Eval(l)
			m := checkTrace(t, c.name, layerFn(l), l, tensor.Randn(rng, c.x...))
			counts := map[string]int{}
			for _, n := range m.Graph.Nodes {
				counts[n.ModulePath+" "+n.ModuleType+" "+n.OpType]++
			}
			for _, k := range []string{
				"self_attn MultiheadAttention Split", "self_attn MultiheadAttention Softmax",
				"self_attn.out_proj Linear MatMul", "linear1 Linear MatMul", "norm1 LayerNorm LayerNormalization",
				"norm2 LayerNorm LayerNormalization", " TransformerEncoderLayer Add",
			} {
				if counts[k] == 0 {
					t.Errorf("no node %q: %v", k, counts)
				}
			}
			if counts["self_attn MultiheadAttention MatMul"] != 3 {
				t.Errorf("attention has %d MatMul nodes, want 3 (the input projection and two products)", counts["self_attn MultiheadAttention MatMul"])
			}
			inits := initNames(m.Graph)
			for _, k := range []string{"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight", "linear1.weight", "norm2.bias"} {
				if !slices.Contains(inits, k) {
					t.Errorf("no initializer %s in %v", k, inits)
				}
			}
		})
	}
}

// TestTraceSubmoduleAndPaths traces a submodule of a model (paths are
// reported relative to it) and a model whose paths were never assigned.
func TestTraceSubmoduleAndPaths(t *testing.T) {
	net, _ := newDemo(t)
	x := tensor.Randn(tensor.NewRNG(1), 2, 1, 28, 28)
	want := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Features.Forward(x)} })[0]
	m, err := Trace(net.Features, x)
	if err != nil {
		t.Fatal(err)
	}
	assertClose(t, "features", runGraph(t, m, x)[0], want, 1e-5)
	if n := m.Graph.Nodes[0]; n.Name != "0.0/Conv" || n.ModulePath != "0.0" || m.Graph.Initializers[0].Name != "0.0.weight" {
		t.Errorf("first node %s at %q, first initializer %s", n.Name, n.ModulePath, m.Graph.Initializers[0].Name)
	}
	if net.Features.ModuleBase().Path() != "features" {
		t.Errorf("tracing a submodule changed its path to %q", net.Features.ModuleBase().Path())
	}

	rng := tensor.NewRNG(2)
	seq := nn.NewSequential(must[*nn.Linear](t)(nn.NewLinear(3, 3, nn.LinearOptions{RNG: rng})), nn.NewTanh())
	m, err = Trace(seq, tensor.Randn(rng, 1, 3))
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Graph.Nodes[1]; n.Name != "1/Tanh" || n.ModulePath != "1" || n.ModuleType != "Tanh" {
		t.Errorf("unassigned paths: node %s at %q (%s)", n.Name, n.ModulePath, n.ModuleType)
	}
}
