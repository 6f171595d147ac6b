package passes_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant"
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

// convNet is conv-bn-relu, conv-relu, flatten, linear-relu, linear.
func convNet(t *testing.T, rng *tensor.RNG) *nn.Sequential {
	conv := must[*nn.Conv2d](t)
	bn := must[*nn.BatchNorm2d](t)(nn.NewBatchNorm2d(4, nn.BatchNormOptions{}))
	copy(bn.RunningMean.F32(), tensor.Randn(rng, 4).F32())
	copy(bn.RunningVar.F32(), positive(rng, 4).F32())
	copy(bn.Weight.F32(), tensor.Randn(rng, 4).F32())
	copy(bn.Bias.F32(), tensor.Randn(rng, 4).F32())
	lin := must[*nn.Linear](t)
	m := nn.NewSequential(
		conv(nn.NewConv2d(3, 4, [2]int{3, 3}, nn.Conv2dOptions{Padding: [2]int{1, 1}, RNG: rng})),
		bn,
		nn.NewReLU(),
		conv(nn.NewConv2d(4, 4, [2]int{3, 3}, nn.Conv2dOptions{RNG: rng})),
		nn.NewReLU(),
		nn.NewFlatten(1, -1),
		lin(nn.NewLinear(64, 8, nn.LinearOptions{RNG: rng})),
		nn.NewReLU(),
		lin(nn.NewLinear(8, 2, nn.LinearOptions{RNG: rng})),
	)
	nn.Eval(m)
	return m
}

func names(nodes []*graph.Node) []string {
	var s []string
	for _, n := range nodes {
		s = append(s, n.Name)
	}
	return s
}

type want struct {
	key   string
	nodes []string
}

func checkMatches(t *testing.T, what string, got []passes.Match, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		var ks []string
		for _, m := range got {
			ks = append(ks, m.Key+fmt.Sprint(names(m.Nodes)))
		}
		t.Fatalf("%s: matches %v, want %v", what, ks, wants)
	}
	for i, w := range wants {
		m := got[i]
		if m.Key != w.key || !slices.Equal(names(m.Nodes), w.nodes) || m.Root != m.Nodes[0] || m.Config == nil || m.Config.Key() != w.key {
			t.Errorf("%s: match %d is %s %v (root %v), want %s %v", what, i, m.Key, names(m.Nodes), m.Root, w.key, w.nodes)
		}
	}
}

// TestTracedConvNet traces conv-bn-relu, conv-relu, linear-relu, linear,
// folds the batch norm (outputs within 1e-5 of the traced model's own and
// of the unfolded graph) and finds the fusions before and after folding.
func TestTracedConvNet(t *testing.T) {
	rng := tensor.NewRNG(7)
	net := convNet(t, rng)
	in := tensor.Randn(rng, 2, 3, 6, 6)
	m := must[*graph.Model](t)(fx.Trace(net, in))
	cfg := must[*quant.BackendConfig](t)(quant.GetBackendConfig("x86"))

	checkMatches(t, "unfolded", must[[]passes.Match](t)(passes.FusePatterns(m.Graph, cfg)), []want{
		{"Conv2d+BatchNorm2d+ReLU", []string{"0/Conv", "1/BatchNormalization", "2/Relu"}},
		{"Conv2d+ReLU", []string{"3/Conv", "4/Relu"}},
		{"Linear+ReLU", []string{"6/Gemm", "7/Relu"}},
	})
	before := run(t, m, in)[0]
	var direct *tensor.Tensor
	autograd.NoGrad(func() { direct = net.Forward(in) })
	assertClose(t, "traced", before, direct, 1e-5)

	n, err := passes.FoldBatchNorm(m.Graph)
	if err != nil || n != 1 {
		t.Fatalf("FoldBatchNorm = %d, %v; want 1", n, err)
	}
	if c := m.Graph.OpCounts(); c["BatchNormalization"] != 0 || c["Conv"] != 2 {
		t.Fatalf("after folding: %v", c)
	}
	after := run(t, m, in)[0]
	assertClose(t, "folded vs unfolded", after, before, 1e-5)
	assertClose(t, "folded vs model", after, direct, 1e-5)

	checkMatches(t, "folded", must[[]passes.Match](t)(passes.FusePatterns(m.Graph, cfg)), []want{
		{"Conv2d+ReLU", []string{"0/Conv", "2/Relu"}},
		{"Conv2d+ReLU", []string{"3/Conv", "4/Relu"}},
		{"Linear+ReLU", []string{"6/Gemm", "7/Relu"}},
	})
}

// TestTracedLinear3D traces Linear layers on a 3-D input, which lower to
// Transpose, MatMul and the Add of the bias: the Add belongs to the Linear.
func TestTracedLinear3D(t *testing.T) {
	rng := tensor.NewRNG(9)
	lin := must[*nn.Linear](t)
	net := nn.NewSequential(
		lin(nn.NewLinear(8, 6, nn.LinearOptions{RNG: rng})),
		nn.NewReLU(),
		lin(nn.NewLinear(6, 4, nn.LinearOptions{RNG: rng})),
	)
	nn.Eval(net)
	m := must[*graph.Model](t)(fx.Trace(net, tensor.Randn(rng, 2, 5, 8)))
	cfg := must[*quant.BackendConfig](t)(quant.GetBackendConfig("qnnpack"))
	var mm, adds []string
	for _, n := range m.Graph.Nodes {
		switch n.OpType {
		case "MatMul":
			mm = append(mm, n.Name)
		case "Add":
			adds = append(adds, n.Name)
		}
	}
	if len(mm) != 2 || len(adds) != 2 {
		t.Fatalf("traced graph has MatMul %v and Add %v, want two of each", mm, adds)
	}
	checkMatches(t, "linear 3-D", must[[]passes.Match](t)(passes.FusePatterns(m.Graph, cfg)), []want{
		{"Linear+ReLU", []string{mm[0], adds[0], "1/Relu"}},
		{"Linear", []string{mm[1], adds[1]}},
	})
}
