package quantize

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

func randT(r *rand.Rand, scale float32, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	d := make([]float32, n)
	for i := range d {
		d[i] = (r.Float32()*2 - 1) * scale
	}
	return tensor.FromFloat32(d, shape...)
}

// smallCNN is x[1,2,6,6] -> Conv(3x3, pad 1) -> Relu -> MaxPool(2) ->
// Flatten -> Gemm(transB) -> y.
func smallCNN(seed int64) *graph.Model {
	r := rand.New(rand.NewSource(seed))
	g := graph.New("cnn")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 2, 6, 6))
	w := g.AddInitializer("conv.weight", randT(r, 0.5, 3, 2, 3, 3))
	b := g.AddInitializer("conv.bias", randT(r, 0.2, 3))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, w, b}, []string{"c"}, map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1), "kernel_shape": graph.AInts(3, 3)})
	relu := g.AddNode("relu", "Relu", []*graph.Value{conv.Outputs[0]}, []string{"r"}, nil)
	pool := g.AddNode("pool", "MaxPool", []*graph.Value{relu.Outputs[0]}, []string{"p"}, map[string]*graph.Attr{"kernel_shape": graph.AInts(2, 2), "strides": graph.AInts(2, 2)})
	flat := g.AddNode("flat", "Flatten", []*graph.Value{pool.Outputs[0]}, []string{"f"}, nil)
	fw := g.AddInitializer("fc.weight", randT(r, 0.3, 4, 27))
	fb := g.AddInitializer("fc.bias", randT(r, 0.1, 4))
	fc := g.AddNode("fc", "Gemm", []*graph.Value{flat.Outputs[0], fw, fb}, []string{"y"}, map[string]*graph.Attr{"transB": graph.AInt(1)})
	g.Outputs = []*graph.Value{fc.Outputs[0]}
	g.Outputs[0].Type = graph.TensorType(graph.Float, 1, 4)
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}
}

func minmaxMapping() *quant.QConfigMapping {
	return quant.NewQConfigMapping().SetGlobal(&quant.QConfig{
		Activation: func() observer.Observer { return observer.NewMinMax(observer.Config{}) },
		Weight: func() observer.Observer {
			return observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric})
		},
	})
}

func feeds(seed int64, n int) []map[string]*tensor.Tensor {
	r := rand.New(rand.NewSource(seed))
	var out []map[string]*tensor.Tensor
	for i := 0; i < n; i++ {
		out = append(out, map[string]*tensor.Tensor{"x": randT(r, 1, 1, 2, 6, 6)})
	}
	return out
}

func nodeByName(g *graph.Graph, name string) *graph.Node {
	for _, n := range g.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// TestPrepareConvertCNN checks the units, shared observers and the QDQ
// file of a small CNN against values computed here from the definitions.
func TestPrepareConvertCNN(t *testing.T) {
	m := smallCNN(1)
	var before bytes.Buffer
	graph.Dump(&before, m.Graph)
	p, err := Prepare(m, Options{Mapping: minmaxMapping(), NoEqualize: true})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, u := range p.Units {
		keys = append(keys, u.Key)
		if !u.Quantized {
			t.Errorf("unit %s (%s) is float: %s", u.Key, u.Nodes[0].Name, u.Reason)
		}
	}
	if got := strings.Join(keys, ","); got != "Conv2d+ReLU,MaxPool2d,Flatten,Linear" {
		t.Fatalf("units %s", got)
	}
	if fc := p.Units[3]; !fc.OutputQuantized {
		t.Error("the Gemm computing the graph output has a float output; weighted ops quantize theirs")
	}
	obs := map[string]observer.Observer{}
	for _, pt := range p.Points {
		obs[pt.Value.Name] = pt.Observer
	}
	if len(obs) != 5 || obs["r"] != obs["p"] || obs["p"] != obs["f"] || obs["x"] == obs["r"] || obs["y"] == obs["r"] || obs["y"] == nil {
		t.Fatalf("points %v: want x and y alone and r, p, f sharing one observer", obs)
	}
	fs := feeds(2, 3)
	lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
	for _, f := range fs {
		if err := p.Observe(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		for _, v := range f["x"].F32() {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	q, err := Convert(p)
	if err != nil {
		t.Fatal(err)
	}
	var after bytes.Buffer
	graph.Dump(&after, m.Graph)
	if before.String() != after.String() {
		t.Fatal("Prepare or Convert changed the input model")
	}
	counts := q.Graph.OpCounts()
	if counts["QuantizeLinear"] != 5 || counts["DequantizeLinear"] != 9 {
		t.Fatalf("op counts %v: want 5 QuantizeLinear (x, r, p, f, y) and 9 DequantizeLinear (5 activations, 2 weights, 2 biases)", counts)
	}
	if q.Graph.Outputs[0].Name != "y" || q.Graph.Outputs[0].Producer.OpType != "DequantizeLinear" {
		t.Errorf("the graph output is %s from %v, want y from its DequantizeLinear", q.Graph.Outputs[0].Name, q.Graph.Outputs[0].Producer)
	}
	// Input qparams: PyTorch's affine quint8 from the observed range.
	xq := nodeByName(q.Graph, "x_QuantizeLinear")
	sx := xq.Inputs[1].Const.F32()[0]
	lo, hi = min(lo, 0), max(hi, 0)
	wantS := (hi - lo) / 255
	if math.Abs(float64(sx-wantS)) > 1e-7*float64(wantS) {
		t.Errorf("input scale %g, want (max-min)/255 = %g", sx, wantS)
	}
	// Conv weight: per-channel symmetric int8, scale max|w_c|/127.5.
	conv := nodeByName(q.Graph, "conv")
	wdq := conv.Inputs[1].Producer
	if wdq == nil || wdq.OpType != "DequantizeLinear" || wdq.Attrs["axis"].I != 0 {
		t.Fatalf("conv weight is not read through a per-channel DequantizeLinear")
	}
	w := nodeByName(m.Graph, "conv").Inputs[1].Const.F32()
	codes, scales := wdq.Inputs[0].Const.I8(), wdq.Inputs[1].Const.F32()
	for c := 0; c < 3; c++ {
		mx := float32(0)
		for _, v := range w[c*18 : (c+1)*18] {
			mx = max(mx, float32(math.Abs(float64(v))))
		}
		if s := mx / 127.5; math.Abs(float64(scales[c]-s)) > 1e-7*float64(s) {
			t.Errorf("channel %d weight scale %g, want %g", c, scales[c], s)
		}
		// The default rounding (RoundKeepSum): every code within one step
		// of its scaled weight, and each 3x3 filter's codes summing to its
		// scaled taps' sum rounded.
		for f := c * 2; f < c*2+2; f++ {
			var sum float64
			var csum int
			for i := f * 9; i < (f+1)*9; i++ {
				v := float64(w[i]) / float64(scales[c])
				if d := math.Abs(float64(codes[i]) - v); d >= 1 {
					t.Fatalf("weight %d code %d is %.3f steps from %.3f", i, codes[i], d, v)
				}
				sum += v
				csum += int(codes[i])
			}
			if want := int(math.RoundToEven(sum)); csum != want {
				t.Errorf("filter %d codes sum to %d, want the rounded scaled sum %d", f, csum, want)
			}
		}
	}
	// RoundNearest: each code the nearest, as PyTorch rounds.
	pn, err := Prepare(m, Options{Mapping: minmaxMapping(), NoEqualize: true, WeightRounding: RoundNearest})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if err := pn.Observe(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	qn, err := Convert(pn)
	if err != nil {
		t.Fatal(err)
	}
	ncodes := nodeByName(qn.Graph, "conv").Inputs[1].Producer.Inputs[0].Const.I8()
	for i, v := range w {
		c := i / 18
		if want := int8(min(max(math.RoundToEven(float64(v/scales[c])), -128), 127)); ncodes[i] != want {
			t.Fatalf("RoundNearest: weight %d code %d, want %d", i, ncodes[i], want)
		}
	}
	// Bias: int32 RNE(b / float32(sx*sw[c])).
	bdq := conv.Inputs[2].Producer
	b := nodeByName(m.Graph, "conv").Inputs[2].Const.F32()
	for c := 0; c < 3; c++ {
		s := float32(sx * scales[c])
		if got := bdq.Inputs[1].Const.F32()[c]; got != s {
			t.Errorf("bias scale %d = %g, want sx*sw = %g", c, got, s)
		}
		if got, want := bdq.Inputs[0].Const.I32()[c], int32(math.RoundToEven(float64(b[c]/s))); got != want {
			t.Errorf("bias code %d = %d, want %d", c, got, want)
		}
	}
	// Shared qparams: r, p and f quantize with one scale and zero point.
	sr := nodeByName(q.Graph, "r_QuantizeLinear").Inputs[1].Const.F32()[0]
	for _, v := range []string{"p", "f"} {
		if s := nodeByName(q.Graph, v+"_QuantizeLinear").Inputs[1].Const.F32()[0]; s != sr {
			t.Errorf("%s scale %g, want the shared %g", v, s, sr)
		}
	}
	// The quantized model tracks the float one, fused or literal.
	fp, _ := exec.Compile(m, exec.Options{})
	for _, ref := range []bool{false, true} {
		qp, err := exec.Compile(q, exec.Options{Reference: ref})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			a, _ := fp.Run(context.Background(), f)
			bq, err := qp.Run(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			if e := relL2(a["y"].F32(), bq["y"].F32()); e > 0.05 {
				t.Errorf("reference=%v: relative L2 error %.3g against float", ref, e)
			}
		}
	}
}

func relL2(x, y []float32) float64 {
	var num, den float64
	for i := range x {
		d := float64(x[i] - y[i])
		num += d * d
		den += float64(x[i]) * float64(x[i])
	}
	return math.Sqrt(num / den)
}

// TestMergeAndState checks that calibrating two shards and merging them
// gives the model one calibration over all feeds gives, and that the
// state round-trips through MarshalBinary.
func TestMergeAndState(t *testing.T) {
	m := smallCNN(3)
	fs := feeds(4, 6)
	whole, _ := Prepare(m, Options{Mapping: minmaxMapping()})
	a, _ := Prepare(m, Options{Mapping: minmaxMapping()})
	b, _ := Prepare(m, Options{Mapping: minmaxMapping()})
	for i, f := range fs {
		whole.Observe(context.Background(), f)
		if i < 2 {
			a.Observe(context.Background(), f)
		} else {
			b.Observe(context.Background(), f)
		}
	}
	state, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := Prepare(m, Options{Mapping: minmaxMapping()})
	if err := c.UnmarshalBinary(state); err != nil {
		t.Fatal(err)
	}
	if err := a.Merge(c); err != nil {
		t.Fatal(err)
	}
	if a.Feeds != 6 {
		t.Errorf("merged feeds %d, want 6", a.Feeds)
	}
	dump := func(p *Prepared) string {
		q, err := Convert(p)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		graph.Dump(&buf, q.Graph)
		for _, n := range q.Graph.Nodes {
			if n.OpType == "QuantizeLinear" {
				buf.WriteString(n.Name)
				fmt.Fprintf(&buf, " %v %v\n", n.Inputs[1].Const.F32(), n.Inputs[2].Const.U8())
			}
		}
		return buf.String()
	}
	if dump(a) != dump(whole) {
		t.Fatal("merged shards convert differently from one calibration over all feeds")
	}
	if err := a.UnmarshalBinary([]byte("junk")); err == nil {
		t.Fatal("a bad state was accepted")
	}
}

// TestErrors checks the errors users meet: no calibration, NaN in the
// data (naming the value), a missing input.
func TestErrors(t *testing.T) {
	m := smallCNN(5)
	p, _ := Prepare(m, Options{})
	if _, err := Convert(p); err == nil || !strings.Contains(err.Error(), "calibration") {
		t.Fatalf("Convert before calibration: %v", err)
	}
	x := tensor.Zeros(1, 2, 6, 6)
	x.F32()[7] = float32(math.NaN())
	err := p.Observe(context.Background(), map[string]*tensor.Tensor{"x": x})
	if err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("NaN input: %v", err)
	}
	if err := p.Observe(context.Background(), map[string]*tensor.Tensor{}); err == nil || !strings.Contains(err.Error(), "x") {
		t.Fatalf("missing input: %v", err)
	}
	if _, err := Prepare(m, Options{Engine: "tpu"}); err == nil || !strings.Contains(err.Error(), "tpu") {
		t.Fatalf("unknown engine: %v", err)
	}
}

// TestMappingRules checks that nil qconfigs by module name, regex, object
// type and Exclude keep units float.
func TestMappingRules(t *testing.T) {
	m := smallCNN(6)
	cases := []struct {
		name string
		opts func() Options
	}{
		{"object type Conv2d", func() Options {
			return Options{Mapping: minmaxMapping().SetObjectType("Conv2d", nil)}
		}},
		{"ONNX op type Conv", func() Options { return Options{Mapping: minmaxMapping().SetObjectType("Conv", nil)} }},
		{"module name", func() Options { return Options{Mapping: minmaxMapping().SetModuleName("conv", nil)} }},
		{"regex", func() Options {
			mp, _ := minmaxMapping().SetModuleNameRegex("co.v", nil)
			return Options{Mapping: mp}
		}},
		{"exclude", func() Options {
			return Options{Mapping: minmaxMapping(), Exclude: []*regexp.Regexp{regexp.MustCompile("^conv$")}}
		}},
	}
	for _, c := range cases {
		p, err := Prepare(m, c.opts())
		if err != nil {
			t.Fatal(err)
		}
		if p.Units[0].Quantized {
			t.Errorf("%s: the conv unit is quantized", c.name)
		}
		if !p.Units[3].Quantized {
			t.Errorf("%s: the Gemm unit is float (%s)", c.name, p.Units[3].Reason)
		}
	}
}

func TestScopeOf(t *testing.T) {
	for in, want := range map[string]string{
		"/features/features.3/conv/Conv":    "features.3.conv",
		"/layer1/layer1.0/conv1/Conv":       "layer1.0.conv1",
		"/fc/Gemm":                          "fc",
		"/Add":                              "",
		"p2o.Conv.3":                        "",
		"/encoder/0/reparam_conv/Conv":      "encoder.0.reparam_conv",
		"/blocks/blocks.1/attn/qkv/MatMul":  "blocks.1.attn.qkv",
		"/features/features.0/features.0.0": "features.0",
	} {
		if got := ScopeOf(in); got != want {
			t.Errorf("ScopeOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestQuantizeDynamic checks the dynamic form of a Gemm model and that it
// tracks float.
func TestQuantizeDynamic(t *testing.T) {
	m := smallCNN(7)
	q, err := QuantizeDynamic(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := q.Graph.OpCounts()
	if c["DynamicQuantizeLinear"] != 2 || c["QuantizeLinear"] != 0 {
		t.Fatalf("op counts %v: want a DynamicQuantizeLinear before the conv and the gemm", c)
	}
	fp, _ := exec.Compile(m, exec.Options{})
	qp, err := exec.Compile(q, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range feeds(8, 3) {
		a, _ := fp.Run(context.Background(), f)
		b, err := qp.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		if e := relL2(a["y"].F32(), b["y"].F32()); e > 0.05 {
			t.Errorf("relative L2 error %.3g against float", e)
		}
	}
}

// TestKeepFilterSums checks RoundKeepSum on hand-computed filters of a
// [2, 1, 2, 2] weight (scales 1 and 0.5, zero point 0): the codes that
// move are the fewest, with the largest remainders toward the error, ties
// by position; codes at the range limit stay.
func TestKeepFilterSums(t *testing.T) {
	data := []float32{
		0.375, 0.375, 0.375, -0.125, // scale 1: nearest 0 0 0 0, remainders sum 1.0 -> the first 0.375 up
		-0.6875, -0.1875, 0.125, -0.1875, // scale 0.5: -1.375 -0.375 0.25 -0.375, nearest -1 0 0 0, remainders sum -0.875 -> the first -0.375 down
	}
	q := &tensor.QParams{Scale: []float32{1, 0.5}, ZeroPoint: []int32{0, 0}}
	codes := []int32{0, 0, 0, 0, -1, 0, 0, 0}
	keepFilterSums(data, codes, []int{2, 1, 2, 2}, 0, q, -128, 127)
	want := []int32{1, 0, 0, 0, -2, 0, 0, 0}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	// At the limit: 126.6 and 126.6 (nearest 127, 127) sum 253.2 -> 253
	// wants one down; 0.4 and 0.4 (nearest 0, 0) in the next filter want
	// one up, but with hi 0 that code stays.
	data = []float32{126.6, 126.6, 0, 0, 0.4, 0.4, 0, 0}
	codes = []int32{127, 127, 0, 0, 0, 0, 0, 0}
	keepFilterSums(data, codes, []int{1, 2, 1, 4}, -1, &tensor.QParams{Scale: []float32{1}, ZeroPoint: []int32{0}}, -128, 127)
	if want := []int32{126, 127, 0, 0, 1, 0, 0, 0}; fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("per-tensor codes %v, want %v", codes, want)
	}
	codes = []int32{0, 0, 0, 0}
	keepFilterSums([]float32{0.4, 0.4, 0, 0}, codes, []int{1, 1, 2, 2}, -1, &tensor.QParams{Scale: []float32{1}, ZeroPoint: []int32{0}}, -128, 0)
	if fmt.Sprint(codes) != "[0 0 0 0]" {
		t.Fatalf("codes at the limit moved: %v", codes)
	}
	// 1x1 filters never move.
	codes = []int32{0, 0}
	keepFilterSums([]float32{0.4, 0.4}, codes, []int{2, 1, 1, 1}, 0, q, -128, 127)
	if fmt.Sprint(codes) != "[0 0]" {
		t.Fatalf("1x1 codes moved: %v", codes)
	}
}
