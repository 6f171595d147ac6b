package fx

import (
	"context"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// runGraph compiles m with graph/exec and runs it on ins (in input order).
func runGraph(t *testing.T, m *graph.Model, ins ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	p, err := exec.Compile(m, exec.Options{})
	if err != nil {
		t.Fatalf("compiling the traced model: %v", err)
	}
	names := p.InputNames()
	if len(names) != len(ins) {
		t.Fatalf("traced model has inputs %v, want %d", names, len(ins))
	}
	feed := map[string]*tensor.Tensor{}
	for i, n := range names {
		feed[n] = ins[i]
	}
	res, err := p.Run(context.Background(), feed)
	if err != nil {
		t.Fatalf("running the traced model: %v", err)
	}
	var outs []*tensor.Tensor
	for _, n := range p.OutputNames() {
		outs = append(outs, res[n])
	}
	return outs
}

// forward runs fn without gradients.
func forward(fn func() []*tensor.Tensor) (outs []*tensor.Tensor) {
	autograd.NoGrad(func() { outs = fn() })
	return outs
}

// assertClose checks |got-want| <= tol*max(1, |want|) elementwise and equal
// shapes.
func assertClose(t *testing.T, what string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	if !slices.Equal(got.Shape(), want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	g, w := got.F32(), want.F32()
	worst := 0.0
	for i := range w {
		d := math.Abs(float64(g[i])-float64(w[i])) / math.Max(1, math.Abs(float64(w[i])))
		if !(d <= tol) {
			t.Fatalf("%s: element %d is %v, want %v (tolerance %g)", what, i, g[i], w[i], tol)
		}
		worst = max(worst, d)
	}
	t.Logf("%s: %d values, largest relative difference %.3g", what, len(w), worst)
}

// randomizeBN gives every BatchNorm of m running statistics and affine
// parameters away from the defaults, so that tracing them matters.
func randomizeBN(m nn.Module, rng *tensor.RNG) {
	for _, nm := range nn.NamedModules(m) {
		if bn, ok := nm.Module.(*nn.BatchNorm2d); ok {
			c := bn.RunningMean.Numel()
			bn.RunningMean.CopyFrom(tensor.RandUniform(rng, -0.5, 0.5, c))
			bn.RunningVar.CopyFrom(tensor.RandUniform(rng, 0.5, 2, c))
			bn.Weight.CopyFrom(tensor.RandUniform(rng, 0.5, 1.5, c))
			bn.Bias.CopyFrom(tensor.RandUniform(rng, -0.3, 0.3, c))
		}
	}
}

// nodeOf returns the first node of g at module path whose op is opType.
func nodeOf(g *graph.Graph, path, opType string) *graph.Node {
	for _, n := range g.Nodes {
		if n.ModulePath == path && n.OpType == opType {
			return n
		}
	}
	return nil
}

func initNames(g *graph.Graph) []string {
	var s []string
	for _, v := range g.Initializers {
		s = append(s, v.Name)
	}
	return s
}

// roundTrip encodes m as ONNX, decodes it, and checks the decoded graph
// prints the same and computes the same outputs.
func roundTrip(t *testing.T, m *graph.Model, ins ...*tensor.Tensor) *graph.Model {
	t.Helper()
	data, err := onnx.Encode(m)
	if err != nil {
		t.Fatalf("onnx.Encode: %v", err)
	}
	back, err := onnx.Decode(data, onnx.DecodeOptions{})
	if err != nil {
		t.Fatalf("onnx.Decode of the exported model: %v", err)
	}
	if a, b := m.Graph.String(), back.Graph.String(); a != b {
		t.Fatalf("round trip changed the graph:\n%s\nvs\n%s", a, b)
	}
	want := runGraph(t, m, ins...)
	got := runGraph(t, back, ins...)
	for i := range want {
		assertClose(t, "round trip", got[i], want[i], 0)
	}
	return back
}

func newDemo(t *testing.T) (*demoNet, *tensor.Tensor) {
	t.Helper()
	rng := tensor.NewRNG(7)
	net, err := newDemoNet(4, rng)
	if err != nil {
		t.Fatal(err)
	}
	randomizeBN(net, rng)
	nn.Eval(net)
	return net, tensor.Randn(rng, 3, 1, 28, 28)
}

func TestTraceDemoCNN(t *testing.T) {
	net, x := newDemo(t)
	want := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Forward(x)} })[0]
	m, err := Trace(net, x)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	t.Logf("traced graph:\n%s", g.String())
	got := runGraph(t, m, x)[0]
	assertClose(t, "demo CNN", got, want, 1e-5)

	if m.Opset("") != Opset || len(g.Inputs) != 1 || g.Inputs[0].Name != "input" || len(g.Outputs) != 1 || g.Outputs[0].Name != "output" {
		t.Fatalf("opset %d, inputs %v, outputs %v", m.Opset(""), g.Inputs, g.Outputs)
	}
	// Every op the model runs, in order, with its module.
	type row struct{ name, op, path, typ string }
	var rows []row
	for _, n := range g.Nodes {
		rows = append(rows, row{n.Name, n.OpType, n.ModulePath, n.ModuleType})
	}
	wantRows := []row{
		{"features.0.0/Conv", "Conv", "features.0.0", "Conv2d"},
		{"features.0.1/BatchNormalization", "BatchNormalization", "features.0.1", "BatchNorm2d"},
		{"features.0.2/Relu", "Relu", "features.0.2", "ReLU"},
		{"features.1/MaxPool", "MaxPool", "features.1", "MaxPool2d"},
		{"features.2.0/Conv", "Conv", "features.2.0", "Conv2d"},
		{"features.2.1/BatchNormalization", "BatchNormalization", "features.2.1", "BatchNorm2d"},
		{"features.2.2/Relu", "Relu", "features.2.2", "ReLU"},
		{"features.3/MaxPool", "MaxPool", "features.3", "MaxPool2d"},
		{"res1.0/Conv", "Conv", "res1.0", "Conv2d"},
		{"res1.1/BatchNormalization", "BatchNormalization", "res1.1", "BatchNorm2d"},
		{"res1.2/Relu", "Relu", "res1.2", "ReLU"},
		{"res2.0/Conv", "Conv", "res2.0", "Conv2d"},
		{"res2.1/BatchNormalization", "BatchNormalization", "res2.1", "BatchNorm2d"},
		{"skip/Add", "Add", "skip", "FloatFunctional"},
		{"skip/Relu", "Relu", "skip", "FloatFunctional"},
		{"flatten/Flatten", "Flatten", "flatten", "Flatten"},
		{"fc/Gemm", "Gemm", "fc", "Linear"},
	}
	if !slices.Equal(rows, wantRows) {
		t.Fatalf("nodes\n%v\nwant\n%v", rows, wantRows)
	}
	conv := g.Nodes[0]
	for name, want := range map[string][]int64{"kernel_shape": {3, 3}, "strides": {1, 1}, "pads": {1, 1, 1, 1}, "dilations": {1, 1}} {
		if got, _ := conv.Ints(name, nil); !slices.Equal(got, want) {
			t.Errorf("Conv %s = %v, want %v", name, got, want)
		}
	}
	if g, _ := conv.Int("group", 0); g != 1 || len(conv.Inputs) != 2 {
		t.Errorf("Conv group %d, %d inputs (the conv has no bias)", g, len(conv.Inputs))
	}
	pool := g.Nodes[3]
	if k, _ := pool.Ints("kernel_shape", nil); !slices.Equal(k, []int64{2, 2}) {
		t.Errorf("MaxPool kernel_shape %v", k)
	}
	if tb, _ := g.Nodes[16].Int("transB", 0); tb != 1 {
		t.Errorf("Gemm transB = %d, want 1", tb)
	}
	wantInits := []string{
		"features.0.0.weight", "features.0.1.weight", "features.0.1.bias", "features.0.1.running_mean", "features.0.1.running_var",
		"features.2.0.weight", "features.2.1.weight", "features.2.1.bias", "features.2.1.running_mean", "features.2.1.running_var",
		"res1.0.weight", "res1.1.weight", "res1.1.bias", "res1.1.running_mean", "res1.1.running_var",
		"res2.0.weight", "res2.1.weight", "res2.1.bias", "res2.1.running_mean", "res2.1.running_var",
		"fc.weight", "fc.bias",
	}
	if got := initNames(g); !slices.Equal(got, wantInits) {
		t.Fatalf("initializers %v\nwant %v", got, wantInits)
	}
	// Initializers are copies of the state dict.
	sd := nn.StateDict(net)
	for _, v := range g.Initializers {
		if !slices.Equal(v.Const.F32(), sd[v.Name].F32()) {
			t.Errorf("initializer %s differs from the state dict", v.Name)
		}
	}
	sd["fc.bias"].F32()[0] += 1
	if v := g.Initializers[len(g.Initializers)-1]; v.Const.F32()[0] == sd["fc.bias"].F32()[0] {
		t.Errorf("initializer fc.bias shares storage with the model")
	}
	roundTrip(t, m, x)
}

// TestTraceRestoresAndDoesNotMutate checks the previous tracer is restored and that the
// traced model ran in the mode it was given (BatchNorm statistics
// untouched).
func TestTraceRestoresAndDoesNotMutate(t *testing.T) {
	net, x := newDemo(t)
	before := nn.StateDict(net)
	snap := map[string][]float32{}
	for k, v := range before {
		if v.DType() == tensor.Float32 {
			snap[k] = slices.Clone(v.F32())
		}
	}
	rec := &countingTracer{}
	prev := ops.SetTracer(rec)
	defer ops.SetTracer(prev)
	if _, err := Trace(net, x); err != nil {
		t.Fatal(err)
	}
	if cur := ops.CurrentTracer(); cur != rec {
		t.Fatalf("tracer after Trace is %T, want the one installed before", cur)
	}
	if rec.ops != 0 {
		t.Fatalf("the outer tracer saw %d ops of the trace", rec.ops)
	}
	for k, v := range nn.StateDict(net) {
		if want, ok := snap[k]; ok && !slices.Equal(v.F32(), want) {
			t.Errorf("tracing changed %s", k)
		}
	}
}

// TestTraceErrors checks that what tracing cannot capture is reported,
// naming the op and the module.
func TestTraceErrors(t *testing.T) {
	rng := tensor.NewRNG(3)
	x := tensor.Randn(rng, 2, 4, 6, 6)

	net, _ := newDemo(t)
	nn.Train(net)
	if _, err := Trace(net, tensor.Randn(rng, 2, 1, 28, 28)); err == nil || !strings.Contains(err.Error(), "BatchNorm in training mode") ||
		!strings.Contains(err.Error(), `"features.0.1"`) {
		t.Errorf("training-mode BatchNorm: %v", err)
	}

	drop, err := nn.NewDropout(0.5, rng)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Trace(drop, x); err == nil || !strings.Contains(err.Error(), "Dropout in training mode") {
		t.Errorf("training-mode Dropout: %v", err)
	}
	nn.Eval(drop)
	if m, err := Trace(drop, x); err != nil || m.Graph.Nodes[0].OpType != "Identity" {
		t.Errorf("evaluation-mode Dropout: %v", err)
	}

	pool, err := nn.NewAdaptiveAvgPool2d([2]int{4, 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Trace(pool, x); err == nil || !strings.Contains(err.Error(), "AdaptiveAvgPool2d") || !strings.Contains(err.Error(), "does not divide") {
		t.Errorf("AdaptiveAvgPool2d 6x6 -> 4x4: %v", err)
	}

	lin, err := nn.NewLinear(6, 3, nn.LinearOptions{RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor {
		return []*tensor.Tensor{nn.NewCrossEntropyLoss().Forward(lin.Forward(in[0]), in[1])}
	}, lin, []*tensor.Tensor{tensor.Randn(rng, 2, 6), tensor.FromInt64([]int64{0, 2}, 2)}); err == nil || !strings.Contains(err.Error(), "has no ONNX mapping") {
		t.Errorf("loss: %v", err)
	}

	if _, err := Trace(lin); err == nil {
		t.Error("Trace without an example succeeded")
	}
	if _, err := TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor { return in }, nil, []*tensor.Tensor{x, x}); err == nil {
		t.Error("the same tensor as two example inputs was accepted")
	}
	if _, err := TraceFunc(func([]*tensor.Tensor) []*tensor.Tensor { panic("boom") }, nil, []*tensor.Tensor{x}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("panic: %v", err)
	}
	// A module computing outside package ops.
	if _, err := Trace(&outsideOps{}, x); err == nil || !strings.Contains(err.Error(), "not computed by a traced op") {
		t.Errorf("module outside ops: %v", err)
	}
}

// countingTracer counts the ops it sees.
type countingTracer struct{ ops int }

func (c *countingTracer) Op(string, any, []*tensor.Tensor, []*tensor.Tensor) { c.ops++ }
func (c *countingTracer) EnterModule(string, string, []*tensor.Tensor)       {}
func (c *countingTracer) ExitModule(string, string, []*tensor.Tensor)        {}

// outsideOps computes its output with package tensor directly.
type outsideOps struct{ nn.Base }

func (m *outsideOps) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return tensor.MulScalar(x, 2) })
}

func TestSupportedOpsRunOnExec(t *testing.T) {
	names := SupportedOps()
	if len(names) < 70 || !slices.IsSorted(names) {
		t.Fatalf("SupportedOps: %d ops %v", len(names), names)
	}
	onnxOps := map[string]bool{}
	for _, s := range exec.Supported() {
		onnxOps[s] = true
	}
	if !onnxOps["Gemm"] || !onnxOps["Resize"] {
		t.Fatalf("exec.Supported lacks basic operators")
	}
}

// TestConcurrentTraces traces models from several goroutines at once: the
// package lock keeps the traces apart, so each equals a trace made alone.
func TestConcurrentTraces(t *testing.T) {
	net, x := newDemo(t)
	rng := tensor.NewRNG(4)
	lin := must[*nn.Linear](t)
	mlp := nn.NewSequential(lin(nn.NewLinear(5, 7, nn.LinearOptions{RNG: rng})), nn.NewTanh(), lin(nn.NewLinear(7, 2, nn.LinearOptions{RNG: rng})))
	xm := tensor.Randn(rng, 3, 5)
	jobs := []func() (*graph.Model, error){
		func() (*graph.Model, error) { return Trace(net, x) },
		func() (*graph.Model, error) { return Trace(mlp, xm) },
	}
	want := make([]string, len(jobs))
	for i, j := range jobs {
		m, err := j()
		if err != nil {
			t.Fatal(err)
		}
		want[i] = m.Graph.String()
	}
	const rounds = 4
	got := make([]string, 2*len(jobs)*rounds)
	errs := make([]error, len(got))
	var wg sync.WaitGroup
	for k := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := jobs[k%len(jobs)]()
			if errs[k] = err; err == nil {
				got[k] = m.Graph.String()
			}
		}()
	}
	wg.Wait()
	for k := range got {
		if errs[k] != nil {
			t.Fatalf("trace %d: %v", k, errs[k])
		}
		if got[k] != want[k%len(jobs)] {
			t.Fatalf("trace %d differs from the trace made alone:\n%s\nwant\n%s", k, got[k], want[k%len(jobs)])
		}
	}
}

// TestTraceOutputsThatAreNotNodeOutputs returns an input, a constant and one
// value twice: each such output goes through an Identity node.
func TestTraceOutputsThatAreNotNodeOutputs(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, 2, -3}, 3)
	c := tensor.FromFloat32([]float32{7, 8}, 2)
	m, err := TraceFunc(func(in []*tensor.Tensor) []*tensor.Tensor {
		y := ops.ReLU(in[0])
		return []*tensor.Tensor{in[0], c, y, y}
	}, nil, []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	var outs, nodes []string
	for _, v := range m.Graph.Outputs {
		outs = append(outs, v.Name)
	}
	for _, n := range m.Graph.Nodes {
		nodes = append(nodes, n.Name+"("+n.Inputs[0].Name+")")
	}
	if want := []string{"output_0", "output_1", "output_2", "output_3"}; !slices.Equal(outs, want) {
		t.Errorf("outputs %v, want %v", outs, want)
	}
	if want := []string{"Relu(input)", "output_0/Identity(input)", "output_1/Identity(const_0)", "output_3/Identity(output_2)"}; !slices.Equal(nodes, want) {
		t.Errorf("nodes %v, want %v", nodes, want)
	}
	got := runGraph(t, m, x)
	for i, want := range [][]float32{{-1, 2, -3}, {7, 8}, {0, 2, 0}, {0, 2, 0}} {
		if !slices.Equal(got[i].F32(), want) {
			t.Errorf("output %d = %v, want %v", i, got[i].F32(), want)
		}
	}
	roundTrip(t, m, x)
}
