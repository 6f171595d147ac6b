package fx

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/tensor"
)

// demoQDQ returns the demo CNN as a graph, the program running it (the
// teacher), its statically quantized QDQ model and the feeds it was
// calibrated on.
func demoQDQ(t *testing.T) (float *graph.Model, teacher *exec.Program, qdq *graph.Model, train []map[string]*tensor.Tensor) {
	t.Helper()
	net, x := newDemo(t)
	m, err := Trace(net, x)
	if err != nil {
		t.Fatal(err)
	}
	m.Graph.Inputs[0].Type.Shape[0] = graph.Dim{Size: -1, Param: "batch"}
	name := m.Graph.Inputs[0].Name
	feedsOf := func(ts []*tensor.Tensor) []map[string]*tensor.Tensor {
		var fs []map[string]*tensor.Tensor
		for _, x := range ts {
			fs = append(fs, map[string]*tensor.Tensor{name: x})
		}
		return fs
	}
	train = feedsOf(calibBatches(11, 8, 2))
	p, err := quantize.Prepare(m, quantize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range train {
		if err := p.Observe(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	teacher, err = exec.Compile(m, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, teacher, q, train
}

// lossOf is Distill's loss of quant against float on feeds, computed with
// graph/exec (the literal QDQ graph): the mean over feeds of
// ‖quant - float‖² / ‖float‖².
func lossOf(t *testing.T, float, quant *exec.Program, feeds []map[string]*tensor.Tensor) float64 {
	t.Helper()
	var sum float64
	for _, f := range feeds {
		a, err := float.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := quant.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		for k, x := range a {
			var sig, noise float64
			for i, v := range x.F32() {
				d := float64(v - b[k].F32()[i])
				sig += float64(v) * float64(v)
				noise += d * d
			}
			sum += noise / sig
		}
	}
	return sum / float64(len(feeds))
}

// TestFinetuneQDQ fine-tunes the demo CNN's QDQ model: the measuring pass
// computes the loss graph/exec's literal run of the QDQ model gives (the
// interpreter's QuantizeLinear/DequantizeLinear are the QDQ semantics);
// training on the feeds lowers their loss, measured again with graph/exec
// on the model written back; only weight and bias codes change; and the
// input model is untouched.
func TestFinetuneQDQ(t *testing.T) {
	_, teacher, qdq, train := demoQDQ(t)
	ref := func(m *graph.Model) *exec.Program {
		p, err := exec.Compile(m, exec.Options{Reference: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	before := lossOf(t, teacher, ref(qdq), train)
	snapshot := map[string]string{}
	for _, v := range qdq.Graph.Initializers {
		snapshot[v.Name] = contents(v.Const)
	}
	out, res, err := FinetuneQDQ(context.Background(), qdq, teacher, train, FinetuneOptions{Epochs: 30, LR: 1e-4, NoMixup: true})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Losses[0]-before) > 0.02*before {
		t.Errorf("measuring pass loss %.6g, graph/exec's literal QDQ run %.6g", res.Losses[0], before)
	}
	after := lossOf(t, teacher, ref(out), train)
	t.Logf("loss on the training feeds: %.4g before, %.4g after (epoch losses %.4g ... %.4g)", before, after, res.Losses[0], res.Losses[len(res.Losses)-1])
	if !(after < 0.7*before) {
		t.Errorf("fine-tuned loss %.4g, want below 0.7 x %.4g", after, before)
	}
	changed := 0
	for _, v := range out.Graph.Initializers {
		old, ok := snapshot[v.Name]
		if !ok {
			t.Errorf("new initializer %s", v.Name)
			continue
		}
		if old != contents(v.Const) {
			changed++
			if dt := v.Const.DType(); dt != tensor.Int8 && dt != tensor.Int32 {
				t.Errorf("%s (%s) changed; only integer codes may", v.Name, dt)
			}
		}
	}
	if changed == 0 || len(out.Graph.Nodes) != len(qdq.Graph.Nodes) {
		t.Errorf("%d initializers changed, %d nodes (input %d)", changed, len(out.Graph.Nodes), len(qdq.Graph.Nodes))
	}
	for _, v := range qdq.Graph.Initializers {
		if snapshot[v.Name] != contents(v.Const) {
			t.Errorf("the input model's %s changed", v.Name)
		}
	}
}

// TestFinetuneQDQRoundTrip checks the write-back: with a learning rate too
// small to move any weight across a rounding boundary, the codes written
// are the input's, bit for bit.
func TestFinetuneQDQRoundTrip(t *testing.T) {
	_, teacher, qdq, train := demoQDQ(t)
	out, _, err := FinetuneQDQ(context.Background(), qdq, teacher, train[:2], FinetuneOptions{Epochs: 1, LR: 1e-12})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, v := range qdq.Graph.Initializers {
		want[v.Name] = contents(v.Const)
	}
	for _, v := range out.Graph.Initializers {
		if want[v.Name] != contents(v.Const) {
			t.Errorf("%s changed", v.Name)
		}
	}
}

// TestFinetuneQDQErrors checks the refusals.
func TestFinetuneQDQErrors(t *testing.T) {
	float, teacher, qdq, train := demoQDQ(t)
	cases := []struct {
		m     *graph.Model
		feeds []map[string]*tensor.Tensor
		want  string
	}{
		{nil, train, "nil model"},
		{float, train, "no quantized weights"},
		{qdq, nil, "no feeds"},
		{withIf(qdq), train, "node if (If) has a subgraph"},
	}
	for _, c := range cases {
		_, _, err := FinetuneQDQ(context.Background(), c.m, teacher, c.feeds, FinetuneOptions{Epochs: 1})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v", c.want, err)
		}
	}
	// The teacher's outputs pair with the model's by name.
	renamed := float.Clone()
	out := qdq.Graph.Outputs[0].Name
	renamed.Graph.Outputs[0].Name = "renamed"
	other, err := exec.Compile(renamed, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := FinetuneQDQ(context.Background(), qdq, other, train, FinetuneOptions{Epochs: 1}); err == nil || !strings.Contains(err.Error(), `the teacher has no output "`+out+`" (it has renamed)`) {
		t.Errorf("teacher with other output names: error %v", err)
	}
}

// contents renders a constant's type, shape and values.
func contents(t *tensor.Tensor) string {
	var data any
	switch t.DType() {
	case tensor.Float32:
		data = t.F32()
	case tensor.Int8:
		data = t.I8()
	case tensor.Uint8:
		data = t.U8()
	case tensor.Int32:
		data = t.I32()
	case tensor.Int64:
		data = t.I64()
	}
	return fmt.Sprint(t.DType(), t.Shape(), data)
}

// withIf returns a copy of m with an If node added.
func withIf(m *graph.Model) *graph.Model {
	c := m.Clone()
	branch := func() *graph.Graph {
		b := graph.New("branch")
		b.Outputs = []*graph.Value{b.AddInitializer("one", tensor.Scalar(1))}
		return b
	}
	cond := c.Graph.AddInitializer("cond", tensor.FromBool([]bool{true}))
	c.Graph.AddNode("if", "If", []*graph.Value{cond}, []string{"picked"}, map[string]*graph.Attr{
		"then_branch": graph.AGraph(branch()), "else_branch": graph.AGraph(branch())})
	return c
}
