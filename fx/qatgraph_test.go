package fx

import (
	"context"
	"slices"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestPrepareQATGraph prepares the demo CNN, given as a graph (as an
// imported ONNX model is), for QAT: the parameters are the quantized
// nodes' weights and biases, a training step changes them and not the
// input model, and the converted model runs.
func TestPrepareQATGraph(t *testing.T) {
	net, x := newDemo(t)
	m, err := Trace(net, x)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := map[string][]float32{}
	for _, v := range m.Graph.Initializers {
		if v.Const.DType() == tensor.Float32 {
			snapshot[v.Name] = slices.Clone(v.Const.F32())
		}
	}
	om, err := PrepareQATGraph(m, quantize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range nn.NamedParameters(om) {
		names = append(names, p.Name)
	}
	// 4 BN-folded convolutions (weight and bias) and the linear head.
	if len(names) != 10 {
		t.Fatalf("parameters %v, want the 4 folded convolutions' weights and biases and the linear head's", names)
	}
	before := map[string][]float32{}
	for _, p := range nn.NamedParameters(om) {
		before[p.Name] = slices.Clone(p.Tensor.F32())
	}
	opt := must[*nn.SGD](t)(nn.NewSGD(nn.Parameters(om), nn.SGDOptions{LR: 0.05}))
	y := tensor.FromInt64([]int64{0, 1, 2}, 3)
	in := x
	for step := 0; step < 3; step++ {
		outs, err := om.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		loss := ops.CrossEntropy(outs[0], y, "mean", 0)
		opt.ZeroGrad()
		if err := autograd.Backward(loss, nil); err != nil {
			t.Fatal(err)
		}
		opt.Step()
	}
	for _, p := range nn.NamedParameters(om) {
		if slices.Equal(before[p.Name], p.Tensor.F32()) {
			t.Errorf("%s did not change", p.Name)
		}
	}
	for _, v := range m.Graph.Initializers {
		if want, ok := snapshot[v.Name]; ok && !slices.Equal(want, v.Const.F32()) {
			t.Errorf("training changed the input model's %s", v.Name)
		}
	}
	qm, err := ConvertFX(om)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := qm.Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareQATGraph(nil, quantize.Options{}); err == nil {
		t.Error("PrepareQATGraph(nil): no error")
	}
}
