package quantize

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/tensor"
)

// dwModel is x[1,4,8,8] -> Conv 1x1 (channel gains 1, 0.3, 0.03, 0.01)
// -> act -> depthwise 3x3 (weights inversely large) -> y, the layout of a
// mobile block after batch-norm folding.
func dwModel(act string) *graph.Model {
	r := rand.New(rand.NewSource(9))
	g := graph.New("dw")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 4, 8, 8))
	gains := []float32{1, 0.3, 0.03, 0.01}
	w1 := make([]float32, 16)
	for o := 0; o < 4; o++ {
		for c := 0; c < 4; c++ {
			w1[o*4+c] = gains[o] * (r.Float32() - 0.3)
		}
	}
	c1 := g.AddNode("pw", "Conv", []*graph.Value{x, g.AddInitializer("pw.w", tensor.FromFloat32(w1, 4, 4, 1, 1)),
		g.AddInitializer("pw.b", tensor.FromFloat32([]float32{0.1, 0.03, 0.003, 0.001}, 4))}, []string{"h"}, nil)
	a := g.AddNode("act", act, c1.Outputs, []string{"a"}, nil)
	w2 := make([]float32, 36)
	for c := 0; c < 4; c++ {
		for k := 0; k < 9; k++ {
			w2[c*9+k] = (r.Float32() - 0.5) / gains[c]
		}
	}
	d := g.AddNode("dw", "Conv", []*graph.Value{a.Outputs[0], g.AddInitializer("dw.w", tensor.FromFloat32(w2, 4, 1, 3, 3)),
		g.AddInitializer("dw.b", tensor.FromFloat32([]float32{0, 0, 0, 0}, 4))}, []string{"y"},
		map[string]*graph.Attr{"group": graph.AInt(4), "pads": graph.AInts(1, 1, 1, 1)})
	g.Outputs = d.Outputs
	g.Outputs[0].Type = graph.TensorType(graph.Float, 1, 4, 8, 8)
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}
}

func dwFeeds(n int) []map[string]*tensor.Tensor {
	r := rand.New(rand.NewSource(10))
	var out []map[string]*tensor.Tensor
	for i := 0; i < n; i++ {
		out = append(out, map[string]*tensor.Tensor{"x": randT(r, 2, 1, 4, 8, 8)})
	}
	return out
}

// quantizeDW quantizes dwModel and returns the QDQ model and its output's
// SQNR against float on fresh data.
func quantizeDW(t *testing.T, act string, noEq bool) (*graph.Model, float64) {
	m := dwModel(act)
	p, err := Prepare(m, Options{Mapping: minmaxMapping(), NoEqualize: noEq})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range dwFeeds(8) {
		if err := p.Observe(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	q, err := Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := exec.Compile(m, exec.Options{})
	qp, err := exec.Compile(q, exec.Options{Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	var num, den float64
	for _, f := range dwFeeds(12)[8:] {
		a, _ := fp.Run(context.Background(), f)
		b, err := qp.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		x, y := a["y"].F32(), b["y"].F32()
		for i := range x {
			d := float64(x[i] - y[i])
			num += d * d
			den += float64(x[i]) * float64(x[i])
		}
	}
	return q, 10 * math.Log10(den/num)
}

// dequantized returns the float weight a node reads through its
// DequantizeLinear at input i.
func dequantized(t *testing.T, n *graph.Node, i int) []float32 {
	d := n.Inputs[i].Producer
	if d == nil || d.OpType != "DequantizeLinear" {
		t.Fatalf("%s input %d is not dequantized", n.Name, i)
	}
	codes, scales := d.Inputs[0].Const.I8(), d.Inputs[1].Const.F32()
	inner := len(codes) / len(scales)
	out := make([]float32, len(codes))
	for j, c := range codes {
		out[j] = float32(c) * scales[j/inner]
	}
	return out
}

// TestEqualizeFoldsIntoConv checks the Relu case: the scales go into the
// pointwise Conv (no Mul), each channel's product of the two layers'
// weights is unchanged up to int8 rounding, and the quantized model is
// much closer to float than without equalization.
func TestEqualizeFoldsIntoConv(t *testing.T) {
	q, eq := quantizeDW(t, "Relu", false)
	_, plain := quantizeDW(t, "Relu", true)
	if c := q.Graph.OpCounts(); c["Mul"] != 0 {
		t.Errorf("op counts %v: the scales should fold into the pointwise Conv", c)
	}
	if eq < plain+10 {
		t.Errorf("SQNR %.1f dB equalized, %.1f dB not: want at least 10 dB gained", eq, plain)
	}
	pw, dw := nodeByName(q.Graph, "pw"), nodeByName(q.Graph, "dw")
	w1, w2 := dequantized(t, pw, 1), dequantized(t, dw, 1)
	orig := dwModel("Relu").Graph
	o1, o2 := nodeByName(orig, "pw").Inputs[1].Const.F32(), nodeByName(orig, "dw").Inputs[1].Const.F32()
	for c := 0; c < 4; c++ {
		// Row c of the pointwise weights times channel c's depthwise
		// weights is scale-free: compare one product per channel.
		got := float64(w1[c*4]) * float64(w2[c*9])
		want := float64(o1[c*4]) * float64(o2[c*9])
		if math.Abs(got-want) > 0.02*math.Abs(want)+1e-6 {
			t.Errorf("channel %d: weight product %g, want %g", c, got, want)
		}
	}
	t.Logf("SQNR %.1f dB equalized, %.1f dB without", eq, plain)
}

// TestEqualizeInsertsMul checks the case where a non-homogeneous op
// computes the input: x (channel ranges 1 to 1/100) -> HardSwish ->
// depthwise. A Mul by a [1,C,1,1] constant goes before the quantization
// step, and the result is much closer to float than without.
func TestEqualizeInsertsMul(t *testing.T) {
	gains := []float32{1, 0.3, 0.03, 0.01}
	build := func() *graph.Model {
		g := graph.New("hsdw")
		x := g.AddInput("x", graph.TensorType(graph.Float, 1, 4, 8, 8))
		a := g.AddNode("act", "HardSwish", []*graph.Value{x}, []string{"a"}, nil)
		r := rand.New(rand.NewSource(11))
		w2 := make([]float32, 36)
		for c := 0; c < 4; c++ {
			for k := 0; k < 9; k++ {
				w2[c*9+k] = (r.Float32() - 0.5) / gains[c]
			}
		}
		d := g.AddNode("dw", "Conv", []*graph.Value{a.Outputs[0], g.AddInitializer("dw.w", tensor.FromFloat32(w2, 4, 1, 3, 3))}, []string{"y"},
			map[string]*graph.Attr{"group": graph.AInt(4), "pads": graph.AInts(1, 1, 1, 1)})
		g.Outputs = d.Outputs
		g.Outputs[0].Type = graph.TensorType(graph.Float, 1, 4, 8, 8)
		return &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}
	}
	feeds := func(seed int64, n int) []map[string]*tensor.Tensor {
		r := rand.New(rand.NewSource(seed))
		var out []map[string]*tensor.Tensor
		for i := 0; i < n; i++ {
			x := randT(r, 4, 1, 4, 8, 8)
			for j := range x.F32() {
				x.F32()[j] *= gains[j/64]
			}
			out = append(out, map[string]*tensor.Tensor{"x": x})
		}
		return out
	}
	run := func(noEq bool) (*graph.Model, float64) {
		m := build()
		p, err := Prepare(m, Options{Mapping: minmaxMapping(), NoEqualize: noEq})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range feeds(12, 8) {
			if err := p.Observe(context.Background(), f); err != nil {
				t.Fatal(err)
			}
		}
		q, err := Convert(p)
		if err != nil {
			t.Fatal(err)
		}
		fp, _ := exec.Compile(m, exec.Options{})
		qp, err := exec.Compile(q, exec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var num, den float64
		for _, f := range feeds(13, 4) {
			a, _ := fp.Run(context.Background(), f)
			b, err := qp.Run(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			x, y := a["y"].F32(), b["y"].F32()
			for i := range x {
				d := float64(x[i] - y[i])
				num += d * d
				den += float64(x[i]) * float64(x[i])
			}
		}
		return q, 10 * math.Log10(den/num)
	}
	q, eq := run(false)
	_, plain := run(true)
	var mul *graph.Node
	for _, n := range q.Graph.Nodes {
		if n.OpType == "Mul" {
			mul = n
		}
	}
	if mul == nil {
		t.Fatal("no equalization Mul")
	}
	s := mul.Inputs[1].Const
	if !tensor.SameShape(s.Shape(), []int{1, 4, 1, 1}) || mul.Outputs[0].Name != "a_equalized" {
		t.Fatalf("equalization Mul computes %s with scale shape %v", mul.Outputs[0].Name, s.Shape())
	}
	if eq < plain+10 {
		t.Errorf("SQNR %.1f dB equalized, %.1f dB not: want at least 10 dB gained", eq, plain)
	}
	t.Logf("SQNR %.1f dB equalized, %.1f dB without; scales %v", eq, plain, s.F32())
}
