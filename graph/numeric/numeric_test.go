package numeric

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/passes"
	"github.com/quanta-go/quanta/tensor"
)

// The test network: x[1,2,5,5] -> conv1 (3x3, pad 1, 3 channels) -> relu1
// -> conv2 (1x1, 2 channels) -> y, and its QDQ version in the format
// quanta writes (activations uint8 with fixed scales, weights int8 per
// output channel, int32 biases).
const (
	inC, midC, outC, hw = 2, 3, 2, 5
	sx, sr, sy          = float32(0.02), float32(0.03), float32(0.05)
	zx, zr, zy          = 128, 0, 128
)

type convNet struct {
	w1, b1, w2, b2 []float32
}

func randn(rng *tensor.RNG, scale float32, shape ...int) []float32 {
	return tensor.MulScalar(tensor.Randn(rng, shape...), scale).F32()
}

func newConvNet(seed uint64) convNet {
	rng := tensor.NewRNG(seed)
	return convNet{
		w1: randn(rng, 0.4, midC, inC, 3, 3), b1: randn(rng, 0.2, midC),
		w2: randn(rng, 0.6, outC, midC, 1, 1), b2: randn(rng, 0.3, outC),
	}
}

func xType() graph.Type {
	return graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 1}, {Size: inC}, {Size: hw}, {Size: hw}}}
}

var pad1 = map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1), "kernel_shape": graph.AInts(3, 3)}

func (n convNet) float() *graph.Model {
	g := graph.New("convnet")
	x := g.AddInput("x", xType())
	w1 := g.AddInitializer("W1", tensor.FromFloat32(n.w1, midC, inC, 3, 3))
	b1 := g.AddInitializer("B1", tensor.FromFloat32(n.b1, midC))
	w2 := g.AddInitializer("W2", tensor.FromFloat32(n.w2, outC, midC, 1, 1))
	b2 := g.AddInitializer("B2", tensor.FromFloat32(n.b2, outC))
	c1 := g.AddNode("conv1", "Conv", []*graph.Value{x, w1, b1}, []string{"c1"}, pad1)
	c1.ModulePath = "features.0"
	r1 := g.AddNode("relu1", "Relu", []*graph.Value{c1.Outputs[0]}, []string{"r1"}, nil)
	r1.ModulePath = "features.1"
	c2 := g.AddNode("conv2", "Conv", []*graph.Value{r1.Outputs[0], w2, b2}, []string{"y"}, nil)
	c2.ModulePath = "head"
	g.Outputs = []*graph.Value{c2.Outputs[0]}
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
}

// perChannel returns symmetric int8 weights with one scale per output
// channel (max |w| / 127).
func perChannel(w []float32, oc int) ([]int8, []float32) {
	per := len(w) / oc
	q := make([]int8, len(w))
	s := make([]float32, oc)
	for c := 0; c < oc; c++ {
		var m float32
		for _, v := range w[c*per : (c+1)*per] {
			m = max(m, float32(math.Abs(float64(v))))
		}
		s[c] = m / 127
		for i := c * per; i < (c+1)*per; i++ {
			q[i] = int8(max(-127, min(127, math.RoundToEven(float64(w[i]/s[c])))))
		}
	}
	return q, s
}

// biasQ returns int32 biases with scale float32(sx*sw[c]).
func biasQ(b []float32, sx float32, sw []float32) ([]int32, []float32) {
	q := make([]int32, len(b))
	s := make([]float32, len(b))
	for c, v := range b {
		s[c] = sx * sw[c]
		q[c] = int32(math.RoundToEven(float64(v / s[c])))
	}
	return q, s
}

// qdq adds v -> QuantizeLinear -> DequantizeLinear with the convention's
// names; out names the dequantized value.
func qdq(g *graph.Graph, v *graph.Value, name string, s float32, z uint8, out string) *graph.Value {
	sc := g.AddInitializer(name+"_scale", tensor.Scalar(s))
	zp := g.AddInitializer(name+"_zero_point", tensor.FromUint8([]uint8{z}).Reshape())
	q := g.AddNode(name+"_QuantizeLinear", "QuantizeLinear", []*graph.Value{v, sc, zp}, []string{name + "_quantized"}, nil)
	return g.AddNode(name+"_DequantizeLinear", "DequantizeLinear", []*graph.Value{q.Outputs[0], sc, zp}, []string{out}, nil).Outputs[0]
}

// weightDQ adds an int8 per-channel weight and its DequantizeLinear.
func weightDQ(g *graph.Graph, name string, q []int8, s []float32, shape ...int) *graph.Value {
	wq := g.AddInitializer(name+"_quantized", tensor.FromInt8(q, shape...))
	ws := g.AddInitializer(name+"_scale", tensor.FromFloat32(s, len(s)))
	wz := g.AddInitializer(name+"_zero_point", tensor.FromInt8(make([]int8, len(s)), len(s)))
	return g.AddNode(name+"_DequantizeLinear", "DequantizeLinear", []*graph.Value{wq, ws, wz}, []string{name + "_dequantized"}, map[string]*graph.Attr{"axis": graph.AInt(0)}).Outputs[0]
}

func biasDQ(g *graph.Graph, name string, q []int32, s []float32) *graph.Value {
	bq := g.AddInitializer(name+"_quantized", tensor.FromInt32(q, len(q)))
	bs := g.AddInitializer(name+"_scale", tensor.FromFloat32(s, len(s)))
	bz := g.AddInitializer(name+"_zero_point", tensor.FromInt32(make([]int32, len(s)), len(s)))
	return g.AddNode(name+"_DequantizeLinear", "DequantizeLinear", []*graph.Value{bq, bs, bz}, []string{name + "_dequantized"}, map[string]*graph.Attr{"axis": graph.AInt(0)}).Outputs[0]
}

func (n convNet) qdq() *graph.Model {
	g := graph.New("convnet_qdq")
	x := g.AddInput("x", xType())
	xd := qdq(g, x, "x", sx, zx, "x_dequantized")
	q1, s1 := perChannel(n.w1, midC)
	bq1, bs1 := biasQ(n.b1, sx, s1)
	c1 := g.AddNode("conv1", "Conv", []*graph.Value{xd, weightDQ(g, "W1", q1, s1, midC, inC, 3, 3), biasDQ(g, "B1", bq1, bs1)}, []string{"c1"}, pad1)
	r1 := g.AddNode("relu1", "Relu", []*graph.Value{c1.Outputs[0]}, []string{"r1"}, nil)
	rd := qdq(g, r1.Outputs[0], "r1", sr, zr, "r1_dequantized")
	q2, s2 := perChannel(n.w2, outC)
	bq2, bs2 := biasQ(n.b2, sr, s2)
	c2 := g.AddNode("conv2", "Conv", []*graph.Value{rd, weightDQ(g, "W2", q2, s2, outC, midC, 1, 1), biasDQ(g, "B2", bq2, bs2)}, []string{"y_prequant"}, nil)
	y := qdq(g, c2.Outputs[0], "y", sy, zy, "y")
	g.Outputs = []*graph.Value{y}
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
}

// The independent reference: naive loops.

// conv computes a stride-1 2-D convolution of x[ic,h,w] (one image) with
// w[oc,ic,k,k] and zero padding pad, accumulating in float64.
func conv(x []float32, ic int, w []float32, oc, k, pad int, b []float32) []float32 {
	out := make([]float32, oc*hw*hw)
	for o := 0; o < oc; o++ {
		for i := 0; i < hw; i++ {
			for j := 0; j < hw; j++ {
				s := float64(b[o])
				for c := 0; c < ic; c++ {
					for di := 0; di < k; di++ {
						for dj := 0; dj < k; dj++ {
							ii, jj := i+di-pad, j+dj-pad
							if ii >= 0 && ii < hw && jj >= 0 && jj < hw {
								s += float64(x[(c*hw+ii)*hw+jj]) * float64(w[((o*ic+c)*k+di)*k+dj])
							}
						}
					}
				}
				out[(o*hw+i)*hw+j] = float32(s)
			}
		}
	}
	return out
}

func relu(x []float32) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = max(v, 0)
	}
	return out
}

// fq quantizes to uint8 and dequantizes, as QuantizeLinear and
// DequantizeLinear: q = clamp(RNE(x/s) + z), x' = (q - z) * s.
func fq(x []float32, s float32, z int) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		q := max(0, min(255, math.RoundToEven(float64(v/s))+float64(z)))
		out[i] = float32(int32(q)-int32(z)) * s
	}
	return out
}

func dqWeight(q []int8, s []float32) []float32 {
	per := len(q) / len(s)
	out := make([]float32, len(q))
	for i, v := range q {
		out[i] = float32(v) * s[i/per]
	}
	return out
}

func dqBias(q []int32, s []float32) []float32 {
	out := make([]float32, len(q))
	for i, v := range q {
		out[i] = float32(v) * s[i]
	}
	return out
}

// refStats is the textbook definition over the concatenated elements.
type refStats struct{ x, q []float64 }

func (r *refStats) add(x, q []float32) {
	for i := range x {
		r.x = append(r.x, float64(x[i]))
		r.q = append(r.q, float64(q[i]))
	}
}

func (r *refStats) want() (sqnrDB, cos, maxAbs, meanAbs float64) {
	var sx, se, sxq, sqq, sa float64
	for i, x := range r.x {
		q := r.q[i]
		sx += x * x
		se += (x - q) * (x - q)
		sxq += x * q
		sqq += q * q
		maxAbs = max(maxAbs, math.Abs(x-q))
		sa += math.Abs(x - q)
	}
	return 10 * math.Log10(sx/se), sxq / math.Sqrt(sx*sqq), maxAbs, sa / float64(len(r.x))
}

func checkStats(t *testing.T, what string, got Stats, r *refStats) {
	t.Helper()
	s, c, m, a := r.want()
	if got.Count != int64(len(r.x)) || math.Abs(got.SQNR-s) > 1e-3 || math.Abs(got.Cosine-c) > 1e-7 ||
		math.Abs(got.MaxAbs-m) > 1e-5*max(m, 1e-3) || math.Abs(got.MeanAbs-a) > 1e-5*max(a, 1e-3) {
		t.Errorf("%s: got %+v, want SQNR %.4f cosine %.8f max %.6g mean %.6g count %d", what, got, s, c, m, a, len(r.x))
	}
}

func feedsOf(seed uint64, n int) []map[string]*tensor.Tensor {
	rng := tensor.NewRNG(seed)
	var fs []map[string]*tensor.Tensor
	for i := 0; i < n; i++ {
		fs = append(fs, map[string]*tensor.Tensor{"x": tensor.MulScalar(tensor.Randn(rng, 1, inC, hw, hw), 0.8)})
	}
	return fs
}

// TestCompareConvNet compares the network with its QDQ version on two
// feeds and checks every statistic against naive loops.
func TestCompareConvNet(t *testing.T) {
	net := newConvNet(7)
	feeds := feedsOf(11, 2)
	var done []int
	rep, err := Compare(context.Background(), net.float(), net.qdq(), feeds, Options{FloatName: "f.onnx", QuantName: "q.onnx", Progress: func(d, total int) {
		if total != 2 {
			t.Errorf("progress total %d, want 2", total)
		}
		done = append(done, d)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 || done[0] != 1 || done[1] != 2 {
		t.Errorf("progress calls %v, want [1 2]", done)
	}
	// The reference.
	q1, s1 := perChannel(net.w1, midC)
	bq1, bs1 := biasQ(net.b1, sx, s1)
	q2, s2 := perChannel(net.w2, outC)
	bq2, bs2 := biasQ(net.b2, sr, s2)
	w1d, b1d, w2d, b2d := dqWeight(q1, s1), dqBias(bq1, bs1), dqWeight(q2, s2), dqBias(bq2, bs2)
	var rx, rc1, rr1, ry refStats
	for _, f := range feeds {
		x := f["x"].F32()
		c1 := conv(x, inC, net.w1, midC, 3, 1, net.b1)
		r1 := relu(c1)
		y := conv(r1, midC, net.w2, outC, 1, 0, net.b2)
		xq := fq(x, sx, zx)
		c1q := conv(xq, inC, w1d, midC, 3, 1, b1d)
		r1q := fq(relu(c1q), sr, zr)
		yq := fq(conv(r1q, midC, w2d, outC, 1, 0, b2d), sy, zy)
		rx.add(x, xq)
		rc1.add(c1, c1q)
		rr1.add(r1, r1q)
		ry.add(y, yq)
	}
	if rep.Feeds != 2 || rep.FloatName != "f.onnx" || rep.QuantName != "q.onnx" || len(rep.Unmatched) != 0 || rep.FoldedBatchNorms != 0 {
		t.Errorf("report header %+v", rep)
	}
	want := []struct{ node, op, module, value, qvalue string }{
		{"conv1", "Conv", "features.0", "c1", "c1"},
		{"relu1", "Relu", "features.1", "r1", "r1_dequantized"},
		{"conv2", "Conv", "head", "y", "y"},
	}
	if len(rep.Layers) != len(want) {
		t.Fatalf("%d layers, want %d: %+v", len(rep.Layers), len(want), rep.Layers)
	}
	for i, w := range want {
		l := rep.Layers[i]
		if l.Node != w.node || l.OpType != w.op || l.ModulePath != w.module || l.Value != w.value || l.QuantValue != w.qvalue || l.Index != i {
			t.Errorf("layer %d: %+v, want %+v", i, l, w)
		}
	}
	checkStats(t, "conv1", rep.Layers[0].Activation, &rc1)
	checkStats(t, "relu1", rep.Layers[1].Activation, &rr1)
	checkStats(t, "conv2", rep.Layers[2].Activation, &ry)
	var rw1, rw2 refStats
	rw1.add(net.w1, w1d)
	rw2.add(net.w2, w2d)
	if rep.Layers[1].Weight != nil || rep.Layers[0].Weight == nil || rep.Layers[2].Weight == nil {
		t.Fatalf("weights: %+v", rep.Layers)
	}
	checkStats(t, "conv1 weight", *rep.Layers[0].Weight, &rw1)
	checkStats(t, "conv2 weight", *rep.Layers[2].Weight, &rw2)
	if rep.Layers[0].WeightValue != "W1" || rep.Layers[2].WeightValue != "W2" {
		t.Errorf("weight values %q %q", rep.Layers[0].WeightValue, rep.Layers[2].WeightValue)
	}
	if len(rep.Inputs) != 1 || rep.Inputs[0].Name != "x" || rep.Inputs[0].Value != "x_dequantized" {
		t.Fatalf("inputs %+v", rep.Inputs)
	}
	checkStats(t, "input x", rep.Inputs[0].Stats, &rx)
	if len(rep.Outputs) != 1 || rep.Outputs[0].Name != "y" || rep.Outputs[0].Fused == nil {
		t.Fatalf("outputs %+v", rep.Outputs)
	}
	checkStats(t, "output y (reference)", rep.Outputs[0].Reference, &ry)

	// The fused int8 output, measured directly.
	ip, err := exec.Compile(net.qdq(), exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rint8 refStats
	for _, f := range feeds {
		out, err := ip.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		x := f["x"].F32()
		y := conv(relu(conv(x, inC, net.w1, midC, 3, 1, net.b1)), midC, net.w2, outC, 1, 0, net.b2)
		rint8.add(y, out["y"].F32())
	}
	checkStats(t, "output y (int8)", *rep.Outputs[0].Fused, &rint8)

	// Noise propagation: each layer's input SQNR is its producer's.
	ins := []float64{rep.Inputs[0].Stats.SQNR, rep.Layers[0].Activation.SQNR, rep.Layers[1].Activation.SQNR}
	for i, l := range rep.Layers {
		if l.InputSQNR != ins[i] || l.Drop != ins[i]-l.Activation.SQNR {
			t.Errorf("%s: input SQNR %v drop %v, want %v and %v", l.Node, l.InputSQNR, l.Drop, ins[i], ins[i]-l.Activation.SQNR)
		}
	}

	// One feed more changes the sums: statistics cover every feed.
	one, err := Compare(context.Background(), net.float(), net.qdq(), feeds[:1], Options{ReferenceOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if one.Layers[0].Activation.Count*2 != rep.Layers[0].Activation.Count || one.Outputs[0].Fused != nil {
		t.Errorf("one feed: count %d (two feeds %d), fused %v", one.Layers[0].Activation.Count, rep.Layers[0].Activation.Count, one.Outputs[0].Fused)
	}
}

// TestCompareIdentical compares a model with itself: every SQNR is +Inf,
// every cosine 1, every error 0.
func TestCompareIdentical(t *testing.T) {
	m := newConvNet(3).float()
	rep, err := Compare(context.Background(), m, m.Clone(), feedsOf(5, 3), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 3 || len(rep.Inputs) != 0 || len(rep.Unmatched) != 0 {
		t.Fatalf("report %+v", rep)
	}
	exact := func(what string, s Stats) {
		if !math.IsInf(s.SQNR, 1) || s.Cosine != 1 || s.MaxAbs != 0 || s.MeanAbs != 0 || s.Count == 0 {
			t.Errorf("%s: %+v, want SQNR +Inf, cosine 1, no error", what, s)
		}
	}
	for _, l := range rep.Layers {
		exact(l.Node, l.Activation)
		if l.Drop != 0 || !math.IsInf(l.InputSQNR, 1) {
			t.Errorf("%s: input SQNR %v, drop %v", l.Node, l.InputSQNR, l.Drop)
		}
		if l.OpType == "Conv" {
			if l.Weight == nil {
				t.Fatalf("%s has no weight statistics", l.Node)
			}
			exact(l.Node+" weight", *l.Weight)
		}
	}
	exact("output", rep.Outputs[0].Reference)
	exact("output int8", *rep.Outputs[0].Fused)
	if w := rep.Worst(2); len(w) != 2 || w[0].Node != "conv1" || w[1].Node != "relu1" {
		t.Errorf("Worst(2) of equal layers: %+v, want graph order", w)
	}
}

// TestCompareFoldsBatchNorm compares a Conv -> BatchNormalization -> Relu
// model with a copy whose batch norm is folded (as quantization does):
// the conv is compared with the batch norm's output, not its own.
func TestCompareFoldsBatchNorm(t *testing.T) {
	rng := tensor.NewRNG(2)
	g := graph.New("convbn")
	x := g.AddInput("x", xType())
	w := g.AddInitializer("W", tensor.FromFloat32(randn(rng, 0.5, midC, inC, 3, 3), midC, inC, 3, 3))
	cv := g.AddNode("conv", "Conv", []*graph.Value{x, w}, []string{"c"}, pad1)
	scale := g.AddInitializer("gamma", tensor.FromFloat32([]float32{1.5, 0.5, 2}, midC))
	bias := g.AddInitializer("beta", tensor.FromFloat32([]float32{0.1, -0.2, 0.3}, midC))
	mean := g.AddInitializer("mean", tensor.FromFloat32([]float32{0.2, 0, -0.1}, midC))
	vr := g.AddInitializer("var", tensor.FromFloat32([]float32{0.5, 2, 1}, midC))
	bn := g.AddNode("bn", "BatchNormalization", []*graph.Value{cv.Outputs[0], scale, bias, mean, vr}, []string{"b"}, nil)
	r := g.AddNode("relu", "Relu", []*graph.Value{bn.Outputs[0]}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{r.Outputs[0]}
	float := &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	folded := float.Clone()
	if k, err := passes.FoldBatchNorm(folded.Graph); err != nil || k != 1 {
		t.Fatalf("FoldBatchNorm: %d, %v", k, err)
	}
	rep, err := Compare(context.Background(), float, folded, feedsOf(4, 1), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.FoldedBatchNorms != 1 || len(rep.Layers) != 2 || rep.Layers[0].Node != "conv" || rep.Layers[0].Value != "b" {
		t.Fatalf("report %+v", rep)
	}
	if l := rep.Layers[0]; !math.IsInf(l.Activation.SQNR, 1) || l.Weight == nil || !math.IsInf(l.Weight.SQNR, 1) {
		t.Errorf("folded conv: activation %+v weight %+v, want exact", l.Activation, l.Weight)
	}
	if len(float.Graph.Nodes) != 3 {
		t.Errorf("Compare changed the float model: %d nodes", len(float.Graph.Nodes))
	}
}

// TestCompareErrors checks that bad input is an error naming what is
// wrong.
func TestCompareErrors(t *testing.T) {
	net := newConvNet(1)
	cases := []struct {
		float, quant *graph.Model
		feeds        []map[string]*tensor.Tensor
		want         string
	}{
		{net.float(), net.qdq(), []map[string]*tensor.Tensor{{"z": tensor.Zeros(1)}}, `input "x" (float32[1,2,5,5]) of f.onnx is missing`},
		{net.float(), net.qdq(), nil, "no feeds"},
		{nil, net.qdq(), feedsOf(1, 1), "nil model"},
		{net.float(), net.qdq(), []map[string]*tensor.Tensor{{"x": tensor.Zeros(1, 2, 5, 4)}}, "f.onnx: feed 0: exec: Run: input \"x\" has shape [1 2 5 4]"},
	}
	for _, c := range cases {
		_, err := Compare(context.Background(), c.float, c.quant, c.feeds, Options{FloatName: "f.onnx"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want one containing %q", err, c.want)
		}
	}
}

// TestCompareQLinearConv matches a float Conv with an ONNX Runtime-style
// QLinearConv named "<node>_quant": its weight is dequantized from the
// QLinearConv's inputs and its activation is its dequantized output.
func TestCompareQLinearConv(t *testing.T) {
	net := newConvNet(9)
	g := graph.New("qlinear")
	x := g.AddInput("x", xType())
	xs := g.AddInitializer("xs", tensor.Scalar(sx))
	xz := g.AddInitializer("xz", tensor.FromUint8([]uint8{zx}).Reshape())
	xq := g.AddNode("qx", "QuantizeLinear", []*graph.Value{x, xs, xz}, []string{"xq"}, nil).Outputs[0]
	q1, s1 := perChannel(net.w1, midC)
	bq1, _ := biasQ(net.b1, sx, s1)
	ys := g.AddInitializer("ys", tensor.Scalar(sr))
	yz := g.AddInitializer("yz", tensor.FromUint8([]uint8{zr}).Reshape())
	in := []*graph.Value{xq, xs, xz,
		g.AddInitializer("wq", tensor.FromInt8(q1, midC, inC, 3, 3)), g.AddInitializer("ws", tensor.FromFloat32(s1, midC)),
		g.AddInitializer("wz", tensor.FromInt8(make([]int8, midC), midC)), ys, yz, g.AddInitializer("bq", tensor.FromInt32(bq1, midC))}
	cq := g.AddNode("conv1_quant", "QLinearConv", in, []string{"c1q"}, pad1)
	// The uint8 output goes straight to the graph output.
	g.Outputs = []*graph.Value{cq.Outputs[0]}
	quant := &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}

	fg := graph.New("float")
	fx := fg.AddInput("x", xType())
	fc := fg.AddNode("conv1", "Conv", []*graph.Value{fx, fg.AddInitializer("W1", tensor.FromFloat32(net.w1, midC, inC, 3, 3)), fg.AddInitializer("B1", tensor.FromFloat32(net.b1, midC))}, []string{"c1"}, pad1)
	fg.Outputs = []*graph.Value{fc.Outputs[0]}
	float := &graph.Model{Graph: fg, Opsets: map[string]int64{"": 13}}

	feeds := feedsOf(3, 2)
	rep, err := Compare(context.Background(), float, quant, feeds, Options{ReferenceOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Layers) != 1 || rep.Layers[0].Weight == nil || rep.Layers[0].QuantValue != "c1q" {
		t.Fatalf("layers %+v", rep.Layers)
	}
	var rw, ra refStats
	rw.add(net.w1, dqWeight(q1, s1))
	checkStats(t, "weight", *rep.Layers[0].Weight, &rw)
	qp, err := exec.Compile(quant, exec.Options{Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range feeds {
		out, err := qp.Run(context.Background(), f)
		if err != nil {
			t.Fatal(err)
		}
		u := out["c1q"].U8()
		deq := make([]float32, len(u))
		for i, v := range u {
			deq[i] = float32(int32(v)-zr) * sr
		}
		ra.add(conv(f["x"].F32(), inC, net.w1, midC, 3, 1, net.b1), deq)
	}
	checkStats(t, "activation", rep.Layers[0].Activation, &ra)
}

// TestCompareLoopBody compares nodes inside a Loop body, observed once per
// iteration: statistics cover every iteration.
func TestCompareLoopBody(t *testing.T) {
	build := func(scale float32) *graph.Model {
		body := graph.New("body")
		body.AddInput("i", graph.Type{Elem: graph.Int64, HasShape: true})
		cond := body.AddInput("cond", graph.Type{Elem: graph.Bool, HasShape: true})
		acc := body.AddInput("acc", graph.Type{Elem: graph.Float})
		k := body.AddInitializer("k", tensor.Scalar(scale))
		m := body.AddNode("mul", "Mul", []*graph.Value{acc, k}, []string{"acc_next"}, nil)
		co := body.AddNode("cond_id", "Identity", []*graph.Value{cond}, []string{"cond_out"}, nil)
		body.Outputs = []*graph.Value{co.Outputs[0], m.Outputs[0]}
		g := graph.New("loop")
		x := g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 4}}})
		n := g.AddInitializer("n", tensor.FromInt64([]int64{3}).Reshape())
		c := g.AddInitializer("c", tensor.FromBool([]bool{true}).Reshape())
		lp := g.AddNode("loop", "Loop", []*graph.Value{n, c, x}, []string{"y"}, map[string]*graph.Attr{"body": graph.AGraph(body)})
		g.Outputs = []*graph.Value{lp.Outputs[0]}
		return &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	}
	x := []float32{1, -2, 3, 0.5}
	rep, err := Compare(context.Background(), build(2), build(2.5), []map[string]*tensor.Tensor{{"x": tensor.FromFloat32(x, 4)}}, Options{ReferenceOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var mul *Layer
	for i := range rep.Layers {
		if rep.Layers[i].Node == "mul" {
			mul = &rep.Layers[i]
		}
	}
	if mul == nil {
		t.Fatalf("no layer for the Loop body's Mul: %+v", rep.Layers)
	}
	var r refStats
	a, b := append([]float32(nil), x...), append([]float32(nil), x...)
	for it := 0; it < 3; it++ {
		for i := range a {
			a[i] *= 2
			b[i] *= 2.5
		}
		r.add(a, b)
	}
	checkStats(t, "loop body mul", mul.Activation, &r)
	if !math.IsNaN(mul.InputSQNR) {
		t.Errorf("a loop-carried input has unknown SQNR, got %v", mul.InputSQNR)
	}
}

// TestCompareIfBranch compares nodes in an If branch: the branch that
// ran is measured, the If passes its branch's noise on (drop 0), and the
// node after it receives that noise.
func TestCompareIfBranch(t *testing.T) {
	build := func(k float32) *graph.Model {
		g := graph.New("if")
		vec := graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 4}}}
		x := g.AddInput("x", vec)
		then := graph.New("then")
		then.Outputs = then.AddNode("mul", "Mul", []*graph.Value{x, then.AddInitializer("k", tensor.Scalar(k))}, []string{"m"}, nil).Outputs
		els := graph.New("else")
		els.Outputs = els.AddNode("id", "Identity", []*graph.Value{x}, []string{"e"}, nil).Outputs
		c := g.AddInitializer("c", tensor.FromBool([]bool{true}).Reshape())
		y := g.AddNode("if", "If", []*graph.Value{c}, []string{"y"}, map[string]*graph.Attr{"then_branch": graph.AGraph(then), "else_branch": graph.AGraph(els)}).Outputs[0]
		g.Outputs = g.AddNode("relu", "Relu", []*graph.Value{y}, []string{"r"}, nil).Outputs
		return &graph.Model{Graph: g, Opsets: map[string]int64{"": 13}}
	}
	x := []float32{1, -2, 3, 0.5}
	rep, err := Compare(context.Background(), build(2), build(2.5), []map[string]*tensor.Tensor{{"x": tensor.FromFloat32(x, 4)}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(rep.Layers); got != "if mul relu" || len(rep.Unmatched) != 0 {
		t.Fatalf("layers %q (the else branch did not run), unmatched %v", got, rep.Unmatched)
	}
	var r refStats
	r.add([]float32{2, -4, 6, 1}, []float32{2.5, -5, 7.5, 1.25})
	checkStats(t, "mul", rep.Layers[1].Activation, &r)
	checkStats(t, "if", rep.Layers[0].Activation, &r)
	m := rep.Layers[1].Activation.SQNR
	if l := rep.Layers[1]; !math.IsInf(l.InputSQNR, 1) || !math.IsInf(l.Drop, 1) {
		t.Errorf("mul reads the exact input: input SQNR %v, drop %v", l.InputSQNR, l.Drop)
	}
	if l := rep.Layers[0]; l.InputSQNR != m || l.Drop != 0 {
		t.Errorf("if returns its branch's result: input SQNR %v (want %v), drop %v", l.InputSQNR, m, l.Drop)
	}
	if l := rep.Layers[2]; l.InputSQNR != m {
		t.Errorf("relu reads the If's result: input SQNR %v, want %v", l.InputSQNR, m)
	}
}

// TestAccumulator checks that statistics accumulated in parts are those
// measured at once.
func TestAccumulator(t *testing.T) {
	x := []float32{1, -2, 3, 0.5, 4}
	q := []float32{1.1, -2, 2.5, 0.5, 4.2}
	var a Accumulator
	a.Add(x[:2], q[:2])
	a.Add(x[2:], q[2:])
	if got, want := a.Stats(), Measure(x, q); got != want {
		t.Errorf("in parts %+v, at once %+v", got, want)
	}
	var empty Accumulator
	if s := empty.Stats(); s.Count != 0 {
		t.Errorf("empty: %+v", s)
	}
}
