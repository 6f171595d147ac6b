package fx

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// calibBatches returns n batches of [b, 1, 28, 28] inputs.
func calibBatches(seed uint64, n, b int) []*tensor.Tensor {
	rng := tensor.NewRNG(seed)
	out := make([]*tensor.Tensor, n)
	for i := range out {
		out[i] = tensor.Randn(rng, b, 1, 28, 28)
	}
	return out
}

func x86(t *testing.T, qat bool) (*quant.QConfigMapping, *quant.BackendConfig) {
	t.Helper()
	return engine(t, "x86", qat)
}

// engine returns the default mapping and backend of a preset.
func engine(t *testing.T, name string, qat bool) (*quant.QConfigMapping, *quant.BackendConfig) {
	t.Helper()
	var mp *quant.QConfigMapping
	var err error
	if qat {
		mp, err = quant.DefaultQATQConfigMapping(name)
	} else {
		mp, err = quant.DefaultQConfigMapping(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	be, err := quant.GetBackendConfig(name)
	if err != nil {
		t.Fatal(err)
	}
	return mp, be
}

// maxAbs returns the largest |a-b| and the largest |b|.
func maxAbs(a, b *tensor.Tensor) (diff, scale float64) {
	for i, v := range b.F32() {
		diff = max(diff, math.Abs(float64(a.F32()[i]-v)))
		scale = max(scale, math.Abs(float64(v)))
	}
	return diff, scale
}

// TestPrepareConvertFXDemo quantizes the demo CNN in graph mode with no
// stubs and no fuse list: the observed module computes the float model,
// its calibration equals graph/quantize's own (Observe on graph/exec), and
// the converted model runs int8 kernels close to float at any batch size.
func TestPrepareConvertFXDemo(t *testing.T) {
	net, x := newDemo(t)
	nn.Train(net)
	mapping, backend := x86(t, false)
	om, err := PrepareFX(net, mapping, x, backend)
	if err != nil {
		t.Fatal(err)
	}
	if !net.ModuleBase().Training() {
		t.Error("PrepareFX left the model in evaluation mode")
	}
	nn.Eval(net)
	for _, n := range om.Model().Graph.Nodes {
		if n.OpType == "BatchNormalization" || strings.Contains(n.ModuleType, "Stub") {
			t.Errorf("prepared graph holds %s (%s)", n, n.ModuleType)
		}
	}
	if len(om.Prepared.Points) == 0 || len(om.Prepared.Weights) != 5 {
		t.Fatalf("%d points, %d weights (want 5: four convolutions and the linear head)", len(om.Prepared.Points), len(om.Prepared.Weights))
	}
	calib := calibBatches(2, 3, 8)
	for _, b := range calib {
		var y *tensor.Tensor
		autograd.NoGrad(func() { y = om.Forward(b) })
		want := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Forward(b)} })[0]
		assertCloseQuiet(t, "observed forward", y, want, 1e-4, new(float64))
	}
	if om.Prepared.Feeds != len(calib) {
		t.Errorf("%d feeds counted, want %d", om.Prepared.Feeds, len(calib))
	}

	q, err := ConvertFX(om)
	if err != nil {
		t.Fatal(err)
	}
	counts := q.Model().Graph.OpCounts()
	if counts["QuantizeLinear"] == 0 || counts["DequantizeLinear"] == 0 || counts["BatchNormalization"] != 0 {
		t.Errorf("QDQ model ops: %v", counts)
	}
	int8 := 0
	for _, s := range q.Program().Fused() {
		if strings.HasPrefix(s, "int8 ") {
			int8++
		}
	}
	t.Logf("%d int8 kernels: %q", int8, q.Program().Fused())
	if int8 < 5 {
		t.Errorf("%d int8 kernels, want at least the 5 weighted layers", int8)
	}

	// The same calibration through graph/quantize on graph/exec gives the
	// same QDQ model.
	m, err := Trace(net, x)
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Inputs[0].Type.Shape[0] = graph.Dim{Size: -1, Param: "batch"}
	p, err := quantize.Prepare(m, quantize.Options{Mapping: mapping, Backend: backend, Engine: backend.Name, NoEqualize: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range calib {
		if err := p.Observe(context.Background(), map[string]*tensor.Tensor{"input": b}); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := quantize.Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	scales := func(m *graph.Model) map[string][]float32 {
		s := map[string][]float32{}
		for _, v := range m.Graph.Initializers {
			if strings.HasSuffix(v.Name, "_scale") {
				s[v.Name] = v.Const.F32()
			}
		}
		return s
	}
	got, want := scales(q.Model()), scales(direct)
	if len(got) != len(want) || len(got) == 0 {
		for k := range want {
			if _, ok := got[k]; !ok {
				t.Logf("missing %s", k)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Logf("extra %s", k)
			}
		}
		t.Fatalf("%d scales, graph/quantize gives %d", len(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("scale %s: %v, want %v", k, g, w)
		}
		for i := range w {
			if math.Abs(float64(g[i]-w[i])) > 1e-5*math.Abs(float64(w[i])) {
				t.Errorf("scale %s[%d] is %v, graph/quantize's calibration gives %v", k, i, g[i], w[i])
			}
		}
	}

	// Int8 against float, at other batch sizes too; the reference QDQ
	// model agrees with the int8 run.
	ref, err := ConvertToReferenceFX(om)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{1, 5} {
		in := calibBatches(9, 1, b)[0]
		fl := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Forward(in)} })[0]
		y := q.Forward(in)
		d, s := maxAbs(y, fl)
		if d > 0.1*s {
			t.Errorf("batch %d: int8 output differs from float by %v (largest |float| %v)", b, d, s)
		}
		r := ref.Forward(in)
		rd, _ := maxAbs(r, y)
		t.Logf("batch %d: int8 vs float %.4f (scale %.3f), reference vs int8 %.5f", b, d, s, rd)
		if rd > 0.02*s {
			t.Errorf("batch %d: reference output differs from int8 by %v", b, rd)
		}
	}
}

// TestPrepareQATFX trains the demo CNN with fake quantization: the
// BN-folded weights are the parameters, gradients reach them through the
// fake quantizers, the loss falls, and the converted model agrees with the
// fake-quantized one. The "quanta" preset's activations use the full
// uint8 range; with x86's reduce_range, fake quantization clamps at 127
// steps where QuantizeLinear does not (as in PyTorch's converted models),
// so values beyond a frozen moving-average range would differ.
func TestPrepareQATFX(t *testing.T) {
	net, x := newDemo(t)
	mapping, backend := engine(t, "quanta", true)
	om, err := PrepareQATFX(net, mapping, x, backend)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range nn.NamedParameters(om) {
		names = append(names, p.Name)
	}
	folded := 0
	for _, n := range names {
		if strings.HasSuffix(n, "_bnfold") {
			folded++
		}
	}
	if folded != 8 || !slices.Contains(names, "fc.weight") || !slices.Contains(names, "fc.bias") || len(names) != 10 {
		t.Fatalf("parameters %v: want the 4 folded convolution weights and biases and the linear head", names)
	}
	before := map[string][]float32{}
	for _, p := range nn.NamedParameters(om) {
		before[p.Name] = slices.Clone(p.Tensor.F32())
	}
	opt := must[*nn.SGD](t)(nn.NewSGD(nn.Parameters(om), nn.SGDOptions{LR: 0.05, Momentum: 0.9}))
	in := calibBatches(3, 1, 16)[0]
	y := tensor.FromInt64([]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5}, 16)
	var first, last float64
	nn.Train(om)
	for step := 0; step < 8; step++ {
		loss := ops.CrossEntropy(om.Forward(in), y, "mean", 0)
		opt.ZeroGrad()
		if err := autograd.Backward(loss, nil); err != nil {
			t.Fatal(err)
		}
		for _, p := range nn.NamedParameters(om) {
			if p.Tensor.Grad() == nil {
				t.Fatalf("step %d: no gradient for %s", step, p.Name)
			}
		}
		opt.Step()
		if step == 0 {
			first = loss.Item()
		}
		last = loss.Item()
	}
	t.Logf("QAT loss %.4f -> %.4f", first, last)
	if !(last < first) {
		t.Errorf("loss rose from %v to %v", first, last)
	}
	for _, p := range nn.NamedParameters(om) {
		if slices.Equal(before[p.Name], p.Tensor.F32()) {
			t.Errorf("%s did not change", p.Name)
		}
	}
	// Observers off: the qparams freeze, and the converted model uses the
	// ones the fake-quantized forward uses.
	om.EnableObserver(false)
	q, err := ConvertFX(om)
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(om)
	// Every point's fake-quantized value is within two quantization steps
	// of the QDQ model's dequantized value (one-step rounding flips between
	// the float and the integer computation, and their propagation), and
	// the outputs are close.
	test := in
	ref, err := ConvertToReferenceFX(om)
	if err != nil {
		t.Fatal(err)
	}
	prog := must[*exec.Program](t)(exec.Compile(ref.Model(), exec.Options{Reference: true, Unoptimized: true}))
	qdq := map[string]*tensor.Tensor{}
	if _, err := prog.RunWith(context.Background(), map[string]*tensor.Tensor{"input": test}, exec.RunOptions{Observe: func(v *graph.Value, t *tensor.Tensor) error {
		qdq[v.Name] = t.Clone()
		return nil
	}}); err != nil {
		t.Fatal(err)
	}
	vals := interpretValues(t, om.GraphModule, test)
	for _, pt := range om.Prepared.Points {
		if pt.Value.Name == "input" {
			continue
		}
		qp := must[*tensor.QParams](t)(pt.Observer.CalculateQParams())
		want := qdq[pt.Value.Name+"_dequantized"]
		if want == nil {
			want = qdq[pt.Value.Name] // a graph output keeps its name on the DequantizeLinear
		}
		if want == nil {
			t.Fatalf("the QDQ model computes no %s_dequantized", pt.Value.Name)
		}
		if d, _ := maxAbs(vals[pt.Value.Name], want); d > 2.01*float64(qp.Scale[0]) {
			t.Errorf("%s: fake-quantized and QDQ values differ by %v, %.1f steps", pt.Value.Name, d, d/float64(qp.Scale[0]))
		}
	}
	var fq *tensor.Tensor
	autograd.NoGrad(func() { fq = om.Forward(test) })
	got := q.Forward(test)
	d, s := maxAbs(got, fq)
	t.Logf("int8 vs fake-quantized output: largest difference %.4f (largest |output| %.3f)", d, s)
	if d > 0.01*s {
		t.Errorf("converted model differs from the fake-quantized one by %v (scale %v)", d, s)
	}
}

// interpretValues runs gm on x without gradients and returns every value
// it computes, after observers, by name.
func interpretValues(t *testing.T, gm *GraphModule, x *tensor.Tensor) map[string]*tensor.Tensor {
	t.Helper()
	vals := map[*graph.Value]*tensor.Tensor{}
	for v, c := range gm.consts {
		vals[v] = c
	}
	autograd.NoGrad(func() {
		in := gm.model.Graph.Inputs[0]
		xv, err := gm.hook(in, x)
		if err != nil {
			t.Fatal(err)
		}
		vals[in] = xv
		for _, n := range gm.order {
			if err := gm.step(n, vals); err != nil {
				t.Fatal(err)
			}
		}
	})
	out := map[string]*tensor.Tensor{}
	for v, t := range vals {
		out[v.Name] = t
	}
	return out
}

func TestFuseFX(t *testing.T) {
	net, x := newDemo(t)
	_, backend := x86(t, false)
	f, err := FuseFX(net, x, backend)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, m := range f.Matches {
		keys = append(keys, m.Key+"@"+m.Root.ModulePath)
	}
	t.Logf("matches %v", keys)
	if f.Folded != 4 {
		t.Errorf("%d batch norms folded, want 4", f.Folded)
	}
	for _, k := range []string{"Conv2d+ReLU@features.0.0", "Conv2d+ReLU@features.2.0", "Conv2d+ReLU@res1.0"} {
		if !slices.Contains(keys, k) {
			t.Errorf("no match %s in %v", k, keys)
		}
	}
	want := forward(func() []*tensor.Tensor { return []*tensor.Tensor{net.Forward(x)} })[0]
	var got *tensor.Tensor
	autograd.NoGrad(func() { got = f.Forward(x) })
	assertCloseQuiet(t, "fused forward", got, want, 1e-4, new(float64))
}

func TestQuantizeFXErrors(t *testing.T) {
	net, x := newDemo(t)
	mapping, backend := x86(t, false)
	if _, err := PrepareFX(net, nil, x, backend); err == nil || !strings.Contains(err.Error(), "QConfigMapping") {
		t.Errorf("nil mapping: %v", err)
	}
	if _, err := PrepareFX(nil, mapping, x, backend); err == nil {
		t.Error("nil model accepted")
	}
	if _, err := PrepareQATFX(net, mapping, nil, backend); err == nil {
		t.Error("nil example accepted")
	}
	if _, err := ConvertFX(nil); err == nil {
		t.Error("nil module converted")
	}
	om, err := PrepareFX(net, mapping, x, backend)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ConvertFX(om); err == nil || !strings.Contains(err.Error(), "calibration") {
		t.Errorf("converting without calibration: %v", err)
	}
	if _, err := FuseFX(net, tensor.Randn(tensor.NewRNG(1), 1, 3, 28, 28), nil); err == nil {
		t.Error("FuseFX traced a 3-channel input through a 1-channel convolution")
	}
}
