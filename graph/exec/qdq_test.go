package exec

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// qdqCase describes a DQ -> op [-> Relu] -> Q test graph.
type qdqCase struct {
	name       string
	op         string // Conv, MatMul or Gemm
	xsh, wsh   []int
	attrs      map[string]*graph.Attr
	perChannel bool // weight scales per output channel
	wAxis      int64
	bias       bool
	relu       bool
	int8Out    bool
}

// qdqData is the quantized data of a case.
type qdqData struct {
	xq      []uint8
	sx      float32
	zx      uint8
	wq      []int8
	sw      []float32
	bias    []float32
	outRows int // output channels
}

// minMaxQ returns ONNX-style uint8 qparams covering xs and 0.
func minMaxQ(xs []float32) (float32, uint8) {
	lo, hi := float32(0), float32(0)
	for _, v := range xs {
		lo, hi = min(lo, v), max(hi, v)
	}
	s := (hi - lo) / 255
	if s == 0 {
		s = 1
	}
	return s, uint8(math.RoundToEven(float64(-lo / s)))
}

func quantU8(xs []float32, s float32, z uint8) []uint8 {
	q := make([]uint8, len(xs))
	for i, v := range xs {
		q[i] = uint8(min(255, max(0, math.RoundToEven(float64(v/s))+float64(z))))
	}
	return q
}

// newQDQData quantizes random float activations and weights: uint8 x by
// its min and max, int8 w symmetric per tensor or per output channel (the
// weight elements of channel c are those with index/chStride%nch == c).
func newQDQData(r *rand.Rand, c qdqCase, nch, chStride int) qdqData {
	var d qdqData
	x := make([]float32, shapeNumel(c.xsh))
	for i := range x {
		x[i] = float32(r.NormFloat64()*1.5 + 0.7)
	}
	d.sx, d.zx = minMaxQ(x)
	d.xq = quantU8(x, d.sx, d.zx)
	w := make([]float32, shapeNumel(c.wsh))
	for i := range w {
		w[i] = float32(r.NormFloat64() * 0.3)
	}
	amax := make([]float32, nch)
	for i, v := range w {
		ch := i / chStride % nch
		if !c.perChannel {
			ch = 0
		}
		amax[ch] = max(amax[ch], float32(math.Abs(float64(v))))
	}
	if !c.perChannel {
		amax = amax[:1]
	}
	d.sw = make([]float32, len(amax))
	for i, a := range amax {
		d.sw[i] = a / 127
	}
	d.wq = make([]int8, len(w))
	for i, v := range w {
		ch := 0
		if c.perChannel {
			ch = i / chStride % nch
		}
		d.wq[i] = int8(min(127, max(-127, math.RoundToEven(float64(v/d.sw[ch])))))
	}
	if c.bias {
		d.bias = make([]float32, nch)
		for i := range d.bias {
			d.bias[i] = float32(r.NormFloat64())
		}
	}
	d.outRows = nch
	return d
}

// build returns the QDQ model of case c with output qparams sy, zy; with
// probe the float result of the op is the graph's output instead.
func (c qdqCase) build(d qdqData, sy float32, zy int32, probe bool) *graph.Model {
	g := graph.New(c.name)
	xshape := make([]graph.Dim, len(c.xsh))
	for i, v := range c.xsh {
		xshape[i] = graph.Dim{Size: int64(v)}
	}
	xq := g.AddInput("xq", graph.Type{Elem: graph.Uint8, HasShape: true, Shape: xshape})
	xs := g.AddInitializer("xs", tensor.Scalar(d.sx))
	xz := g.AddInitializer("xz", tensor.FromUint8([]uint8{d.zx}).Reshape())
	wq := g.AddInitializer("wq", tensor.FromInt8(d.wq, c.wsh...))
	var ws, wz *graph.Value
	if c.perChannel {
		ws = g.AddInitializer("ws", tensor.FromFloat32(d.sw, len(d.sw)))
		wz = g.AddInitializer("wz", tensor.FromInt8(make([]int8, len(d.sw)), len(d.sw)))
	} else {
		ws = g.AddInitializer("ws", tensor.Scalar(d.sw[0]))
		wz = g.AddInitializer("wz", tensor.FromInt8([]int8{0}).Reshape())
	}
	dx := g.AddNode("dqx", "DequantizeLinear", []*graph.Value{xq, xs, xz}, []string{"x"}, nil).Outputs[0]
	dw := g.AddNode("dqw", "DequantizeLinear", []*graph.Value{wq, ws, wz}, []string{"w"}, map[string]*graph.Attr{"axis": graph.AInt(c.wAxis)}).Outputs[0]
	in := []*graph.Value{dx, dw}
	if c.bias {
		in = append(in, g.AddInitializer("b", tensor.FromFloat32(d.bias, len(d.bias))))
	}
	y := g.AddNode("op", c.op, in, []string{"c"}, c.attrs).Outputs[0]
	if c.relu {
		y = g.AddNode("relu", "Relu", []*graph.Value{y}, []string{"r"}, nil).Outputs[0]
	}
	if probe {
		g.Outputs = []*graph.Value{y}
		return model(g, 13)
	}
	ys := g.AddInitializer("ys", tensor.Scalar(sy))
	var yz *graph.Value
	if c.int8Out {
		yz = g.AddInitializer("yz", tensor.FromInt8([]int8{int8(zy)}).Reshape())
	} else {
		yz = g.AddInitializer("yz", tensor.FromUint8([]uint8{uint8(zy)}).Reshape())
	}
	q := g.AddNode("q", "QuantizeLinear", []*graph.Value{y, ys, yz}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{q.Outputs[0]}
	return model(g, 13)
}

func runModel(t *testing.T, m *graph.Model, opts Options, in map[string]*tensor.Tensor) (*tensor.Tensor, *Program) {
	t.Helper()
	p, err := Compile(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return out[p.OutputNames()[0]], p
}

func qvals(t *tensor.Tensor) []int32 {
	v, _ := int32s(t)
	return v
}

// TestQDQFusion checks, per pattern, that the fused int8 program runs one
// int8 step (Fused), that its outputs equal the literal program's
// (dequantize, float op, quantize) exactly on at least 99% of the elements
// and within one step on all, that they do not depend on the thread count
// or on Options.Unoptimized,
// and, for the Conv and MatMul cases, that they equal QLinearConv /
// QLinearMatMul nodes on the same quantized data bit for bit.
func TestQDQFusion(t *testing.T) {
	cases := []qdqCase{
		{name: "conv3x3", op: "Conv", xsh: []int{2, 8, 10, 9}, wsh: []int{16, 8, 3, 3},
			attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}, perChannel: true, bias: true, relu: true},
		{name: "conv-valid", op: "Conv", xsh: []int{1, 5, 7, 7}, wsh: []int{6, 5, 3, 3},
			attrs: map[string]*graph.Attr{"strides": graph.AInts(2, 1)}, bias: true},
		{name: "depthwise", op: "Conv", xsh: []int{2, 8, 9, 11}, wsh: []int{8, 1, 3, 3},
			attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1), "strides": graph.AInts(2, 2), "group": graph.AInt(8)}, perChannel: true, bias: true, int8Out: true},
		{name: "matmul", op: "MatMul", xsh: []int{2, 5, 24}, wsh: []int{24, 12}, perChannel: true, wAxis: 1},
		{name: "matmul-tensor", op: "MatMul", xsh: []int{7, 33}, wsh: []int{33, 17}, int8Out: true, relu: true},
		{name: "gemm-transB", op: "Gemm", xsh: []int{6, 40}, wsh: []int{10, 40}, attrs: map[string]*graph.Attr{"transB": graph.AInt(1)},
			perChannel: true, wAxis: 0, bias: true, relu: true},
		{name: "gemm", op: "Gemm", xsh: []int{3, 20}, wsh: []int{20, 9}, bias: true, int8Out: true},
	}
	r := rand.New(rand.NewPCG(11, 12))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			nch, chStride := c.wsh[0], shapeNumel(c.wsh[1:])
			if c.op == "MatMul" || (c.op == "Gemm" && c.attrs["transB"] == nil) {
				nch, chStride = c.wsh[1], 1
			}
			d := newQDQData(r, c, nch, chStride)
			in := map[string]*tensor.Tensor{"xq": tensor.FromUint8(d.xq, c.xsh...)}
			// Output qparams from the float result.
			yf, _ := runModel(t, c.build(d, 0, 0, true), Options{}, in)
			sy, zy8 := minMaxQ(yf.F32())
			zy := int32(zy8)
			if c.int8Out {
				zy -= 128
			}
			m := c.build(d, sy, zy, false)
			want, ref := runModel(t, m, Options{Reference: true}, in)
			got, p := runModel(t, m, Options{Threads: 1}, in)
			got2, _ := runModel(t, m, Options{Threads: 2}, in)
			got3, pu := runModel(t, m, Options{Unoptimized: true}, in)
			if len(pu.Fused()) != 1 {
				t.Fatalf("unoptimized report %q, want one int8 step", pu.Fused())
			}
			rep := p.Fused()
			if len(rep) != 1 || !strings.HasPrefix(rep[0], "int8 ") || len(p.main.steps) != 1 {
				t.Fatalf("fused report %q, %d steps; want one int8 step", rep, len(p.main.steps))
			}
			for _, line := range ref.Fused() {
				if !strings.HasPrefix(line, "float: ") {
					t.Fatalf("reference report %q", ref.Fused())
				}
			}
			if len(ref.Fused()) != 2 {
				t.Fatalf("reference report %q, want the DequantizeLinear of x and the QuantizeLinear", ref.Fused())
			}
			if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
				t.Fatalf("fused %s%v, reference %s%v", got.DType(), got.Shape(), want.DType(), want.Shape())
			}
			gv, wv, g2, g3 := qvals(got), qvals(want), qvals(got2), qvals(got3)
			off := 0
			for i := range gv {
				if gv[i] != g2[i] || gv[i] != g3[i] {
					t.Fatalf("[%d]: %d with 1 thread, %d with 2, %d unoptimized", i, gv[i], g2[i], g3[i])
				}
				diff := gv[i] - wv[i]
				if diff < -1 || diff > 1 {
					t.Fatalf("[%d]: fused %d, reference %d", i, gv[i], wv[i])
				}
				if diff != 0 {
					off++
				}
			}
			t.Logf("%d of %d elements one step off the float path", off, len(gv))
			if float64(off) > 0.01*float64(len(gv)) {
				t.Errorf("%d of %d elements differ from the float path", off, len(gv))
			}
			if exp := c.qlinear(t, d, sy, zy, in); exp != nil {
				for i, v := range exp {
					if gv[i] != v {
						t.Fatalf("[%d]: fused %d, QLinear node %d", i, gv[i], v)
					}
				}
			}
		})
	}
}

// qlinear runs case c as one QLinearConv or QLinearMatMul node (with the
// int32 bias RNE(b / float32(sx*sw))), applies the Relu as a clamp at the
// output zero point, and returns the values; nil for Gemm.
func (c qdqCase) qlinear(t *testing.T, d qdqData, sy float32, zy int32, in map[string]*tensor.Tensor) []int32 {
	if c.op == "Gemm" {
		return nil
	}
	g := graph.New("qlinear")
	dims := make([]int64, len(c.xsh))
	for i, v := range c.xsh {
		dims[i] = int64(v)
	}
	xq := g.AddInput("xq", graph.TensorType(graph.Uint8, dims...))
	vals := []*graph.Value{xq,
		g.AddInitializer("xs", tensor.Scalar(d.sx)),
		g.AddInitializer("xz", tensor.FromUint8([]uint8{d.zx}).Reshape()),
		g.AddInitializer("wq", tensor.FromInt8(d.wq, c.wsh...)),
	}
	if len(d.sw) > 1 {
		vals = append(vals, g.AddInitializer("ws", tensor.FromFloat32(d.sw, len(d.sw))),
			g.AddInitializer("wz", tensor.FromInt8(make([]int8, len(d.sw)), len(d.sw))))
	} else {
		vals = append(vals, g.AddInitializer("ws", tensor.Scalar(d.sw[0])), g.AddInitializer("wz", tensor.FromInt8([]int8{0}).Reshape()))
	}
	vals = append(vals, g.AddInitializer("ys", tensor.Scalar(sy)))
	if c.int8Out {
		vals = append(vals, g.AddInitializer("yz", tensor.FromInt8([]int8{int8(zy)}).Reshape()))
	} else {
		vals = append(vals, g.AddInitializer("yz", tensor.FromUint8([]uint8{uint8(zy)}).Reshape()))
	}
	op := "QLinearMatMul"
	if c.op == "Conv" {
		op = "QLinearConv"
		if c.bias {
			b := make([]int32, len(d.bias))
			for i, v := range d.bias {
				s := d.sw[0]
				if len(d.sw) > 1 {
					s = d.sw[i]
				}
				b[i] = int32(math.RoundToEven(float64(v / (d.sx * s))))
			}
			vals = append(vals, g.AddInitializer("b", tensor.FromInt32(b, len(b))))
		}
	}
	n := g.AddNode("ql", op, vals, []string{"y"}, c.attrs)
	g.Outputs = n.Outputs
	y, _ := runModel(t, model(g, 13), Options{}, in)
	v := qvals(y)
	if c.relu {
		for i := range v {
			v[i] = max(v[i], zy)
		}
	}
	return v
}

// TestQDQNotFused checks that a pattern whose intermediate value is also
// returned by the graph stays literal, and that an activation
// DequantizeLinear read by a second node stays for it while the pattern
// fuses.
func TestQDQNotFused(t *testing.T) {
	c := qdqCase{name: "conv", op: "Conv", xsh: []int{1, 3, 5, 5}, wsh: []int{4, 3, 3, 3}, bias: true}
	d := newQDQData(rand.New(rand.NewPCG(1, 2)), c, 4, 27)
	m := c.build(d, 0.05, 128, false)
	g := m.Graph
	g.Outputs = append(g.Outputs, g.Nodes[2].Outputs[0]) // the Conv result
	p, err := Compile(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep := p.Fused(); len(rep) != 2 || !strings.HasPrefix(rep[0], "float: ") || !strings.HasPrefix(rep[1], "float: ") {
		t.Fatalf("report %q, want the two float DequantizeLinear/QuantizeLinear", rep)
	}
	m = c.build(d, 0.05, 128, false)
	g = m.Graph
	dx := g.Nodes[0].Outputs[0]
	extra := g.AddNode("neg", "Neg", []*graph.Value{dx}, []string{"neg"}, nil)
	g.Outputs = append(g.Outputs, extra.Outputs[0])
	if p, err = Compile(m, Options{}); err != nil {
		t.Fatal(err)
	}
	// The DequantizeLinear of x stays for Neg; the Conv reads x_q itself.
	if rep := p.Fused(); len(rep) != 2 || !strings.HasPrefix(rep[0], "float: dqx") || !strings.HasPrefix(rep[1], "int8 QLinearConv") {
		t.Fatalf("report %q, want the float DequantizeLinear and one int8 step", rep)
	}
}
