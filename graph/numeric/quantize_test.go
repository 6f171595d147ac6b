package numeric

import (
	"context"
	"math"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/tensor"
)

// residualNet is x -> conv1 -> bn1 -> relu1 -> conv2 -> add(+x) -> y.
func residualNet(seed uint64) *graph.Model {
	net := newConvNet(seed)
	rng := tensor.NewRNG(seed + 100)
	g := graph.New("residual")
	x := g.AddInput("x", xType())
	c1 := g.AddNode("conv1", "Conv", []*graph.Value{x, g.AddInitializer("W1", tensor.FromFloat32(net.w1, midC, inC, 3, 3))}, []string{"c1"}, pad1)
	bn := g.AddNode("bn1", "BatchNormalization", []*graph.Value{c1.Outputs[0],
		g.AddInitializer("gamma", tensor.FromFloat32(randn(rng, 0.3, midC), midC)),
		g.AddInitializer("beta", tensor.FromFloat32(randn(rng, 0.2, midC), midC)),
		g.AddInitializer("mean", tensor.FromFloat32(randn(rng, 0.1, midC), midC)),
		g.AddInitializer("var", tensor.FromFloat32([]float32{0.5, 1, 2}, midC))}, []string{"b1"}, nil)
	r1 := g.AddNode("relu1", "Relu", []*graph.Value{bn.Outputs[0]}, []string{"r1"}, nil)
	c2 := g.AddNode("conv2", "Conv", []*graph.Value{r1.Outputs[0], g.AddInitializer("W2", tensor.FromFloat32(net.w2, outC, midC, 1, 1)),
		g.AddInitializer("B2", tensor.FromFloat32(net.b2, outC))}, []string{"c2"}, nil)
	add := g.AddNode("add", "Add", []*graph.Value{c2.Outputs[0], x}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{add.Outputs[0]}
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
}

// TestCompareQuantized quantizes a model with graph/quantize (batch norm
// folded, Conv+ReLU fused, a residual Add) and compares: every node is
// matched, the folded conv is compared with the batch norm's output, and
// the weight and output statistics equal naive ones computed from the two
// models' initializers and outputs.
func TestCompareQuantized(t *testing.T) {
	ctx := context.Background()
	m := residualNet(4)
	p, err := quantize.Prepare(m, quantize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range feedsOf(21, 8) {
		if err := p.Observe(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	feeds := feedsOf(22, 3)
	rep, err := Compare(ctx, m, q, feeds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rep.Layers); got != "conv1 relu1 conv2 add" || rep.FoldedBatchNorms != 1 || len(rep.Unmatched) != 0 {
		t.Fatalf("layers %q, %d batch norms folded, unmatched %v", got, rep.FoldedBatchNorms, rep.Unmatched)
	}
	if rep.Layers[0].Value != "b1" {
		t.Errorf("conv1 is compared on %q, want the folded batch norm's output b1", rep.Layers[0].Value)
	}
	for _, l := range rep.Layers {
		if !(l.Activation.SQNR > 20) || !(l.Activation.Cosine > 0.99) {
			t.Errorf("%s: %+v: quantization noise far above int8's", l.Node, l.Activation)
		}
	}
	if add := rep.Layers[3]; add.InputSQNR != min(rep.Layers[2].Activation.SQNR, rep.Inputs[0].Stats.SQNR) {
		t.Errorf("add reads conv2 and x: input SQNR %v", add.InputSQNR)
	}

	// Weights: the float model folded as quantize folds it, against the
	// int8 initializers times their scales.
	folded := m.Clone()
	if _, err := passes.FoldBatchNorm(folded.Graph); err != nil {
		t.Fatal(err)
	}
	byName := func(g *graph.Graph, name string) *graph.Node {
		for _, n := range g.Nodes {
			if n.Name == name {
				return n
			}
		}
		t.Fatalf("no node %s", name)
		return nil
	}
	for i, name := range []string{"conv1", "conv2"} {
		fw := byName(folded.Graph, name).Inputs[1].Const.F32()
		dq := byName(q.Graph, name).Inputs[1].Producer
		if dq.OpType != "DequantizeLinear" {
			t.Fatalf("%s: weight from %s", name, dq)
		}
		wq, ws := dq.Inputs[0].Const.I8(), dq.Inputs[1].Const.F32()
		per := len(wq) / len(ws)
		qw := make([]float32, len(wq))
		for j, v := range wq {
			qw[j] = float32(v) * ws[j/per]
		}
		var r refStats
		r.add(fw, qw)
		if l := rep.Layers[[]int{0, 2}[i]]; l.Weight == nil {
			t.Errorf("%s has no weight statistics", name)
		} else {
			checkStats(t, name+" weight", *l.Weight, &r)
		}
	}

	// Outputs: the float model, the literal QDQ graph and the int8 program
	// run directly.
	run := func(m *graph.Model, opts exec.Options) []*tensor.Tensor {
		pr, err := exec.Compile(m, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []*tensor.Tensor
		for _, f := range feeds {
			o, err := pr.Run(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, o["y"])
		}
		return out
	}
	// Compare's float reference is the folded model, each node run alone.
	fy := run(folded, exec.Options{Unoptimized: true})
	for _, c := range []struct {
		what string
		opts exec.Options
		got  *Stats
	}{{"reference", exec.Options{Reference: true}, &rep.Outputs[0].Reference}, {"int8", exec.Options{}, rep.Outputs[0].Fused}} {
		var r refStats
		for i, y := range run(q, c.opts) {
			r.add(fy[i].F32(), y.F32())
		}
		checkStats(t, "output "+c.what, *c.got, &r)
	}
	if math.IsInf(rep.Outputs[0].Reference.SQNR, 0) {
		t.Error("the quantized output equals the float one exactly")
	}
}

// TestCompareEqualized compares a model whose depthwise input graph/quantize
// equalized by rescaling the producing Conv: the scaled activations and
// weights are mapped back through the recorded scales, so the producer's
// weight SQNR is that of int8 rounding and its activation SQNR that of one
// quantization step, not the scaling's.
func TestCompareEqualized(t *testing.T) {
	ctx := context.Background()
	g := graph.New("dw")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 4, 8, 8))
	gains := []float32{1, 0.3, 0.03, 0.01}
	rng := tensor.NewRNG(7)
	w1 := randn(rng, 0.5, 16)
	for i := range w1 {
		w1[i] *= gains[i/4]
	}
	w2 := randn(rng, 0.5, 36)
	for i := range w2 {
		w2[i] /= gains[i/9]
	}
	pw := g.AddNode("pw", "Conv", []*graph.Value{x, g.AddInitializer("pw.w", tensor.FromFloat32(w1, 4, 4, 1, 1))}, []string{"h"}, nil)
	relu := g.AddNode("relu", "Relu", pw.Outputs, []string{"r"}, nil)
	dw := g.AddNode("dw", "Conv", []*graph.Value{relu.Outputs[0], g.AddInitializer("dw.w", tensor.FromFloat32(w2, 4, 1, 3, 3))}, []string{"y"},
		map[string]*graph.Attr{"group": graph.AInt(4), "pads": graph.AInts(1, 1, 1, 1)})
	g.Outputs = dw.Outputs
	m := &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}}
	p, err := quantize.Prepare(m, quantize.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var feeds []map[string]*tensor.Tensor
	for i := 0; i < 6; i++ {
		feeds = append(feeds, map[string]*tensor.Tensor{"x": tensor.FromFloat32(randn(rng, 1, 256), 1, 4, 8, 8)})
	}
	for _, f := range feeds {
		if err := p.Observe(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	eq := false
	for _, kv := range q.Metadata {
		eq = eq || kv.Key == quantize.EqualizationKey
	}
	if !eq {
		t.Fatal("the quantizer recorded no equalization")
	}
	rep, err := Compare(ctx, m, q, feeds, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Layers {
		if l.Weight != nil && l.Weight.SQNR < 30 {
			t.Errorf("%s: weight SQNR %.1f dB, want int8 rounding's (over 30 dB)", l.Node, l.Weight.SQNR)
		}
		if l.Node == "pw" && l.Activation.SQNR < 25 {
			t.Errorf("pw: activation SQNR %.1f dB, want one quantization step's (over 25 dB)", l.Activation.SQNR)
		}
		t.Logf("%s: activation %.1f dB, weight %v", l.Node, l.Activation.SQNR, l.Weight)
	}
}
