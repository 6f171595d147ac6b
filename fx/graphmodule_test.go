package fx

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// paramNames returns the state-dict names of root's parameters.
func paramNames(root nn.Module) []string {
	var s []string
	for _, p := range nn.NamedParameters(root) {
		s = append(s, p.Name)
	}
	return s
}

// weightedLoss returns sum_i sum(outs[i] * r[i]) over the float outputs,
// with r drawn from rng once per call site (same seed, same weights).
func weightedLoss(outs []*tensor.Tensor, seed uint64) *tensor.Tensor {
	rng := tensor.NewRNG(seed)
	var loss *tensor.Tensor
	for _, y := range outs {
		if y.DType() != tensor.Float32 || !y.RequiresGrad() {
			continue
		}
		l := ops.SumAll(ops.Mul(y, tensor.Randn(rng, y.Shape()...)))
		if loss == nil {
			loss = l
		} else {
			loss = ops.Add(loss, l)
		}
	}
	return loss
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// gmCase is a traced function with its root module and inputs.
type gmCase struct {
	name string
	fn   func(in []*tensor.Tensor) []*tensor.Tensor
	root nn.Module
	ins  []*tensor.Tensor
}

func gmCases(t *testing.T) []gmCase {
	rng := tensor.NewRNG(31)
	net, x := newDemo(t)

	lin := must[*nn.Linear](t)
	ln := must[*nn.LayerNorm](t)
	mlp := nn.NewSequential(
		lin(nn.NewLinear(8, 16, nn.LinearOptions{RNG: rng})), nn.NewGELU(false),
		ln(nn.NewLayerNorm([]int{16}, nn.LayerNormOptions{})),
		lin(nn.NewLinear(16, 16, nn.LinearOptions{RNG: rng})), nn.NewGELU(true), nn.NewSiLU(),
		lin(nn.NewLinear(16, 4, nn.LinearOptions{RNG: rng, NoBias: true})), nn.NewSoftmax(-1))
	nn.AssignPaths(mlp)
	nn.Eval(mlp)

	enc := must[*nn.TransformerEncoderLayer](t)(nn.NewTransformerEncoderLayer(16, 4,
		nn.TransformerEncoderLayerOptions{DimFeedforward: 24, Activation: "gelu", BatchFirst: true, NormFirst: true, RNG: rng}))
	nn.AssignPaths(enc)
	nn.Eval(enc)

	res := &residual{
		Conv: must[*nn.Conv2d](t)(nn.NewConv2d(6, 6, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), Groups: 2, RNG: rng})),
		BN:   must[*nn.BatchNorm2d](t)(nn.NewBatchNorm2d(6, nn.BatchNormOptions{})),
		Pool: must[*nn.AdaptiveAvgPool2d](t)(nn.NewAdaptiveAvgPool2d([2]int{1, 1})),
		FC:   must[*nn.Linear](t)(nn.NewLinear(6, 3, nn.LinearOptions{RNG: rng})),
	}
	randomizeBN(res, rng)
	nn.AssignPaths(res)
	nn.Eval(res)

	ids := tensor.FromInt64([]int64{1, 9, 0, 4, 4, 2}, 2, 3)
	bags := tensor.FromInt64([]int64{0, 1, 2, 3, 6, 6, 5, 4, 1, 1, 1, 1}, 3, 4)
	return []gmCase{
		{"demo CNN", layerFn(net), net, []*tensor.Tensor{x}},
		{"MLP 2-D", layerFn(mlp), mlp, []*tensor.Tensor{tensor.Randn(rng, 5, 8)}},
		{"MLP 3-D", layerFn(mlp), mlp, []*tensor.Tensor{tensor.Randn(rng, 2, 3, 8)}},
		{"transformer layer", layerFn(enc), enc, []*tensor.Tensor{tensor.Randn(rng, 2, 5, 16)}},
		{"residual", layerFn(res), res, []*tensor.Tensor{tensor.Randn(rng, 2, 6, 7, 7)}},
		{"nn zoo", nnZoo(rng), nil, []*tensor.Tensor{tensor.Randn(rng, 2, 4, 9, 9), tensor.Randn(rng, 2, 4, 10), tensor.Randn(rng, 4, 9, 9)}},
		{"elementwise zoo", elementwiseZoo(rng), nil, []*tensor.Tensor{tensor.Randn(rng, 3, 5)}},
		{"shape zoo", shapeZoo(rng), nil, []*tensor.Tensor{tensor.Randn(rng, 2, 3, 4, 5), ids, bags}},
	}
}

// withGrad returns copies of ins; the float ones require grad.
func withGrad(ins []*tensor.Tensor) []*tensor.Tensor {
	out := make([]*tensor.Tensor, len(ins))
	for i, x := range ins {
		out[i] = x.Clone()
		if x.DType() == tensor.Float32 {
			out[i].SetRequiresGrad(true)
		}
	}
	return out
}

// TestGraphModuleMatchesModelAndExec runs traced models on the
// interpreter: outputs equal the Go model's and graph/exec's within 1e-5,
// and the gradients of a loss with respect to the parameters and the
// inputs equal the Go model's.
func TestGraphModuleMatchesModelAndExec(t *testing.T) {
	for _, c := range gmCases(t) {
		t.Run(c.name, func(t *testing.T) {
			m, err := TraceFunc(c.fn, c.root, c.ins)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			if c.root != nil {
				for _, n := range paramNames(c.root) {
					if slices.Contains(initNames(m.Graph), n) {
						names = append(names, n)
					}
				}
			}
			gm, err := NewGraphModule(m, GraphModuleOptions{Parameters: names})
			if err != nil {
				t.Fatal(err)
			}
			if got := paramNames(gm); !slices.Equal(sorted(got), sorted(names)) {
				t.Fatalf("parameters %v, want %v", got, names)
			}
			nn.Eval(gm)
			want := forward(func() []*tensor.Tensor { return c.fn(c.ins) })
			execOut := runGraph(t, m, c.ins...)
			var got []*tensor.Tensor
			autograd.NoGrad(func() { got, err = gm.Run(c.ins...) })
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d outputs, want %d", len(got), len(want))
			}
			for i := range want {
				if want[i].DType() != tensor.Float32 {
					if !slices.Equal(got[i].I64(), want[i].I64()) {
						t.Errorf("output %d: %v, want %v", i, got[i].I64(), want[i].I64())
					}
					continue
				}
				assertCloseQuiet(t, c.name+" vs model", got[i], want[i], 1e-5, new(float64))
				assertCloseQuiet(t, c.name+" vs exec", got[i], execOut[i], 1e-5, new(float64))
			}

			// Gradients: the Go model's parameters and inputs against the
			// interpreter's.
			if c.root != nil {
				nn.ZeroGrad(c.root)
			}
			goIns, gmIns := withGrad(c.ins), withGrad(c.ins)
			if err := autograd.Backward(weightedLoss(c.fn(goIns), 5), nil); err != nil {
				t.Fatal(err)
			}
			outs, err := gm.Run(gmIns...)
			if err != nil {
				t.Fatal(err)
			}
			if err := autograd.Backward(weightedLoss(outs, 5), nil); err != nil {
				t.Fatal(err)
			}
			worst := 0.0
			if c.root != nil {
				goParams := map[string]*tensor.Tensor{}
				for _, p := range nn.NamedParameters(c.root) {
					goParams[p.Name] = p.Tensor
				}
				for _, p := range nn.NamedParameters(gm) {
					g, w := p.Tensor.Grad(), goParams[p.Name].Grad()
					if g == nil || w == nil {
						t.Fatalf("parameter %s: gradient %v, model's %v", p.Name, g != nil, w != nil)
					}
					assertCloseQuiet(t, "gradient of "+p.Name, g, w, 1e-4, &worst)
				}
				nn.ZeroGrad(c.root)
			}
			for i, x := range goIns {
				if x.Grad() == nil {
					continue
				}
				if gmIns[i].Grad() == nil {
					t.Fatalf("input %d has no gradient on the interpreter", i)
				}
				assertCloseQuiet(t, "input gradient", gmIns[i].Grad(), x.Grad(), 1e-4, &worst)
			}
			t.Logf("%d parameters, largest relative gradient difference %.3g", len(names), worst)
		})
	}
}

// TestGraphModuleFiniteDifferences checks the interpreter's parameter
// gradients against central differences of the loss in float64.
func TestGraphModuleFiniteDifferences(t *testing.T) {
	cases := gmCases(t)
	for _, c := range cases {
		if c.name != "MLP 3-D" && c.name != "transformer layer" && c.name != "residual" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			m, err := TraceFunc(c.fn, c.root, c.ins)
			if err != nil {
				t.Fatal(err)
			}
			gm, err := NewGraphModule(m, GraphModuleOptions{Parameters: paramNames(c.root)})
			if err != nil {
				t.Fatal(err)
			}
			nn.Eval(gm)
			outs, err := gm.Run(c.ins...)
			if err != nil {
				t.Fatal(err)
			}
			if err := autograd.Backward(weightedLoss(outs, 9), nil); err != nil {
				t.Fatal(err)
			}
			loss64 := func() float64 {
				var outs []*tensor.Tensor
				autograd.NoGrad(func() { outs, err = gm.Run(c.ins...) })
				if err != nil {
					t.Fatal(err)
				}
				rng := tensor.NewRNG(9)
				s := 0.0
				for _, y := range outs {
					r := tensor.Randn(rng, y.Shape()...).F32()
					for i, v := range y.F32() {
						s += float64(v) * float64(r[i])
					}
				}
				return s
			}
			checked := 0
			for _, p := range nn.NamedParameters(gm) {
				d := p.Tensor.F32()
				g := p.Tensor.Grad().F32()
				for _, i := range []int{0, len(d) / 2, len(d) - 1} {
					const h = 1e-2
					old := d[i]
					d[i] = old + h
					up := loss64()
					d[i] = old - h
					down := loss64()
					d[i] = old
					fd := (up - down) / (2 * h)
					if diff := math.Abs(fd - float64(g[i])); diff > 2e-3+2e-2*math.Abs(fd) {
						t.Errorf("%s[%d]: gradient %v, finite difference %v", p.Name, i, g[i], fd)
					}
					checked++
				}
			}
			t.Logf("%d gradient entries checked", checked)
		})
	}
}

// TestGraphModuleTrains takes optimizer steps on the interpreted demo CNN
// and on the Go model from the same weights: the losses agree.
func TestGraphModuleTrains(t *testing.T) {
	net, x := newDemo(t)
	m, err := Trace(net, x)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := NewGraphModule(m, GraphModuleOptions{Parameters: paramNames(net)})
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(gm)
	y := tensor.FromInt64([]int64{3, 1, 7}, 3)
	optA := must[*nn.SGD](t)(nn.NewSGD(nn.Parameters(net), nn.SGDOptions{LR: 0.05}))
	optB := must[*nn.SGD](t)(nn.NewSGD(nn.Parameters(gm), nn.SGDOptions{LR: 0.05}))
	var la, lb float64
	for step := 0; step < 3; step++ {
		lossA := ops.CrossEntropy(net.Forward(x), y, "mean", 0)
		optA.ZeroGrad()
		if err := autograd.Backward(lossA, nil); err != nil {
			t.Fatal(err)
		}
		optA.Step()
		lossB := ops.CrossEntropy(gm.Forward(x), y, "mean", 0)
		optB.ZeroGrad()
		if err := autograd.Backward(lossB, nil); err != nil {
			t.Fatal(err)
		}
		optB.Step()
		la, lb = lossA.Item(), lossB.Item()
		if math.Abs(la-lb) > 1e-5*math.Max(1, math.Abs(la)) {
			t.Fatalf("step %d: loss %v on the interpreter, %v on the model", step, lb, la)
		}
	}
	// The module's parameters are the graph's initializers: the trained
	// graph runs on graph/exec with the trained weights.
	want := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Forward(x)} })[0]
	assertCloseQuiet(t, "trained graph", runGraph(t, gm.Model(), x)[0], want, 1e-4, new(float64))
	t.Logf("loss after 3 steps: model %.6f, interpreter %.6f", la, lb)
}

// TestGraphModuleObservers attaches a min/max observer to an activation
// (calibration), a fake quantizer to another (QAT) and a weight fake
// quantizer, and checks values and straight-through gradients against
// ops computed by hand.
func TestGraphModuleObservers(t *testing.T) {
	rng := tensor.NewRNG(3)
	fc := must[*nn.Linear](t)(nn.NewLinear(4, 3, nn.LinearOptions{RNG: rng}))
	seq := nn.NewSequential(fc, nn.NewReLU())
	nn.AssignPaths(seq)
	x := tensor.Randn(rng, 5, 4)
	m, err := Trace(seq, x)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := NewGraphModule(m, GraphModuleOptions{Parameters: []string{"0.weight", "0.bias"}})
	if err != nil {
		t.Fatal(err)
	}
	gemm := m.Graph.Nodes[0]
	if gemm.OpType != "Gemm" {
		t.Fatalf("first node %s", gemm)
	}
	// Calibration: the observer sees the Gemm output, the output is the
	// float model's.
	mm := observer.NewMinMax(observer.Config{})
	if err := gm.SetObservers(map[string]observer.Observer{gemm.Outputs[0].Name: mm}); err != nil {
		t.Fatal(err)
	}
	var y *tensor.Tensor
	autograd.NoGrad(func() { y = gm.Forward(x) })
	h := forward(func() []*tensor.Tensor { return []*tensor.Tensor{ops.Linear(x, fc.Weight, fc.Bias)} })[0]
	q, err := mm.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := min(0, slices.Min(h.F32())), max(0, slices.Max(h.F32()))
	if want := (hi - lo) / 255; math.Abs(float64(q.Scale[0]-want)) > 1e-6 {
		t.Errorf("observed scale %v, want %v from range [%v, %v]", q.Scale[0], want, lo, hi)
	}
	assertCloseQuiet(t, "observed forward", y, ops.ReLU(h), 0, new(float64))

	// QAT: fixed qparams on the output, a weight fake quantizer on input 1
	// of the Gemm.
	out := fakequant.NewFixedQParams(0.05, 10, tensor.QUInt8, 0, 255)
	wq := fakequant.New(observer.NewMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerTensorSymmetric}))
	if err := gm.SetObservers(map[string]observer.Observer{"output": out}); err != nil {
		t.Fatal(err)
	}
	if err := gm.SetWeightObservers([]WeightHook{{Node: gemm.Name, Input: 1, Observer: wq}}); err != nil {
		t.Fatal(err)
	}
	y = gm.Forward(x)
	if err := autograd.Backward(ops.SumAll(y), nil); err != nil {
		t.Fatal(err)
	}
	wqp, err := wq.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	w := fc.Weight.Detach().Clone().SetRequiresGrad(true)
	b := fc.Bias.Detach().Clone().SetRequiresGrad(true)
	ref := ops.FakeQuantizePerTensor(ops.ReLU(ops.Linear(x, ops.FakeQuantizePerTensor(w, wqp.Scale[0], wqp.ZeroPoint[0], -128, 127), b)), 0.05, 10, 0, 255)
	if err := autograd.Backward(ops.SumAll(ref), nil); err != nil {
		t.Fatal(err)
	}
	assertCloseQuiet(t, "fake-quantized forward", y, ref, 0, new(float64))
	params := nn.NamedParameters(gm)
	assertCloseQuiet(t, "weight gradient (STE)", params[0].Tensor.Grad(), w.Grad(), 1e-6, new(float64))
	assertCloseQuiet(t, "bias gradient (STE)", params[1].Tensor.Grad(), b.Grad(), 1e-6, new(float64))
	if slices.Equal(params[0].Tensor.F32(), y.F32()) || !slices.Equal(params[0].Tensor.F32(), fc.Weight.F32()) {
		t.Error("weight fake quantization changed the stored weight")
	}

	// Errors.
	if err := gm.SetObservers(map[string]observer.Observer{"nope": mm}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown value: %v", err)
	}
	if err := gm.SetWeightObservers([]WeightHook{{Node: gemm.Name, Input: 7, Observer: wq}}); err == nil {
		t.Error("input 7 of a Gemm was accepted")
	}
}

func TestGraphModuleErrors(t *testing.T) {
	if _, err := NewGraphModule(nil, GraphModuleOptions{}); err == nil {
		t.Error("nil model accepted")
	}
	g := graph.New("g")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2))
	n := g.AddNode("n", "Celu", []*graph.Value{x}, []string{"y"}, nil)
	g.Outputs = append(g.Outputs, n.Outputs[0])
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}}
	if _, err := NewGraphModule(m, GraphModuleOptions{}); err == nil || !strings.Contains(err.Error(), "Celu") {
		t.Errorf("unsupported operator: %v", err)
	}
	n.OpType = "Reshape"
	n.Inputs = append(n.Inputs, g.AddInitializer("shape", tensor.FromInt64([]int64{3}, 1)))
	if _, err := NewGraphModule(m, GraphModuleOptions{Parameters: []string{"w"}}); err == nil {
		t.Error("unknown parameter accepted")
	}
	if _, err := NewGraphModule(m, GraphModuleOptions{Parameters: []string{"shape"}}); err == nil {
		t.Error("int64 parameter accepted")
	}
	gm, err := NewGraphModule(m, GraphModuleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gm.Run(tensor.Zeros(2)); err == nil || !strings.Contains(err.Error(), "node n (Reshape)") {
		t.Errorf("bad reshape: %v", err)
	}
	if _, err := gm.Run(); err == nil {
		t.Error("missing input accepted")
	}
}

// TestSupportedOpTypesCoverTracing checks that every operator the traced
// zoos and models emit is interpreted.
func TestSupportedOpTypesCoverTracing(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range gmCases(t) {
		m, err := TraceFunc(c.fn, c.root, c.ins)
		if err != nil {
			t.Fatal(err)
		}
		for k := range m.Graph.OpCounts() {
			seen[k] = true
		}
	}
	sup := SupportedOpTypes()
	for k := range seen {
		if !slices.Contains(sup, k) {
			t.Errorf("traced operator %s is not interpreted", k)
		}
	}
	t.Logf("%d traced operator types, %d interpreted", len(seen), len(sup))
}

// TestGraphModuleWeightAxis fake-quantizes the [K, N] weight of a MatMul
// per output channel (axis 1): the observer sees it channels first, the
// node reads per-channel fake quantization along axis 1.
func TestGraphModuleWeightAxis(t *testing.T) {
	rng := tensor.NewRNG(4)
	g := graph.New("g")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2, 3))
	w := g.AddInitializer("w", tensor.Randn(rng, 3, 4))
	n := g.AddNode("mm", "MatMul", []*graph.Value{x, w}, []string{"y"}, nil)
	g.Outputs = append(g.Outputs, n.Outputs[0])
	gm, err := NewGraphModule(&graph.Model{Graph: g, Opsets: map[string]int64{"": 17}}, GraphModuleOptions{Parameters: []string{"w"}})
	if err != nil {
		t.Fatal(err)
	}
	fq := fakequant.New(observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric}))
	if err := gm.SetWeightObservers([]WeightHook{{Node: "mm", Input: 1, Observer: fq, Axis: 1}}); err != nil {
		t.Fatal(err)
	}
	in := tensor.Randn(rng, 2, 3)
	y := gm.Forward(in)
	q, err := fq.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Scale) != 4 {
		t.Fatalf("%d scales, want one per output column", len(q.Scale))
	}
	want := ops.MatMul(in, ops.FakeQuantizePerChannel(w.Const, q.Scale, q.ZeroPoint, 1, -128, 127))
	assertCloseQuiet(t, "per-column fake quantization", y, want, 0, new(float64))
	if err := gm.SetWeightObservers([]WeightHook{{Node: "mm", Input: 1, Observer: fq, Axis: 2}}); err == nil {
		t.Error("axis 2 of a 2-D weight accepted")
	}
}
