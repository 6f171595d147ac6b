package exec

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qconv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// linCase is a DQ -> Conv/ConvTranspose/MatMul -> [Clip] -> Q test graph
// with an int32 bias given as DequantizeLinear(b, sx*sw, 0).
type linCase struct {
	name       string
	op         string
	xsh, wsh   []int
	attrs      map[string]*graph.Attr
	perChannel bool
	axis       int64
	nch        int // output channels
	wzp        int8
	clip       bool
	xSigned    bool
	ySigned    bool
}

type linData struct {
	wq   []int8
	sw   []float32
	zw   []int8
	b32  []int32
	sx   float32
	zx   int32
	sy   float32
	zy   int32
	b    *qb
	y    *graph.Value
	xval *graph.Value
}

func (c linCase) build(seed uint64) *linData {
	r := rand.New(rand.NewPCG(seed, 5))
	d := &linData{b: newQB(c.name, seed), sx: 0.02, zx: 120, sy: 0.05, zy: 110}
	if c.xSigned {
		d.zx = -8
	}
	if c.ySigned {
		d.zy = -18
	}
	b := d.b
	x := b.input(c.xsh, c.xSigned, d.zx)
	d.xval = x
	d.wq = make([]int8, shapeNumel(c.wsh))
	for i := range d.wq {
		d.wq[i] = int8(r.IntN(255) - 127)
	}
	nq := 1
	if c.perChannel {
		nq = c.wsh[c.axis]
	}
	d.sw, d.zw = make([]float32, nq), make([]int8, nq)
	for i := range d.sw {
		d.sw[i] = float32(0.002 + 0.004*r.Float64())
		d.zw[i] = c.wzp
	}
	var ws, wz *graph.Value
	if c.perChannel {
		ws = b.g.AddInitializer(b.name("ws"), tensor.FromFloat32(d.sw, nq))
		wz = b.g.AddInitializer(b.name("wz"), tensor.FromInt8(d.zw, nq))
	} else {
		ws = b.g.AddInitializer(b.name("ws"), tensor.Scalar(d.sw[0]))
		wz = b.g.AddInitializer(b.name("wz"), tensor.FromInt8(d.zw[:1]).Reshape())
	}
	wv := b.g.AddInitializer(b.name("wq"), tensor.FromInt8(d.wq, c.wsh...))
	w := b.g.AddNode(b.name("dqw"), "DequantizeLinear", []*graph.Value{wv, ws, wz}, []string{b.name("w")}, map[string]*graph.Attr{"axis": graph.AInt(c.axis)}).Outputs[0]
	in := []*graph.Value{b.dq(x, d.sx, d.zx, c.xSigned), w}
	if c.op != "MatMul" {
		d.b32 = make([]int32, c.nch)
		bs := make([]float32, c.nch)
		for i := range d.b32 {
			d.b32[i] = int32(r.IntN(20001) - 10000)
			s := d.sw[0]
			if c.perChannel {
				s = d.sw[i]
			}
			bs[i] = float32(d.sx * s)
		}
		bq := b.g.AddInitializer(b.name("bq"), tensor.FromInt32(d.b32, c.nch))
		bsv := b.g.AddInitializer(b.name("bs"), tensor.FromFloat32(bs, c.nch))
		bz := b.g.AddInitializer(b.name("bz"), tensor.FromInt32(make([]int32, c.nch), c.nch))
		in = append(in, b.g.AddNode(b.name("dqb"), "DequantizeLinear", []*graph.Value{bq, bsv, bz}, []string{b.name("b")}, map[string]*graph.Attr{"axis": graph.AInt(0)}).Outputs[0])
	}
	v := b.node(c.op, in, c.attrs)
	if c.clip {
		v = b.node("Clip", []*graph.Value{v, b.scalar(0), b.scalar(6)}, nil)
	}
	d.y = b.q(v, d.sy, d.zy, c.ySigned)
	return d
}

// TestQDQLinear checks the int8 Conv/ConvTranspose/MatMul steps: they
// fuse (report), their outputs equal an independent int8 computation with
// the graph's int32 bias bit for bit (QLinearConv/QLinearMatMul nodes, or
// qconv's reference for ConvTranspose; int8 data shifted to uint8, Clip
// applied as a clamp), are within one step of the literal graph, and do
// not depend on the thread count.
func TestQDQLinear(t *testing.T) {
	pads1 := map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}
	cases := []linCase{
		{name: "conv-int32bias", op: "Conv", xsh: []int{1, 8, 9, 10}, wsh: []int{12, 8, 3, 3}, attrs: pads1, perChannel: true, nch: 12},
		{name: "conv-wzp", op: "Conv", xsh: []int{2, 4, 7, 7}, wsh: []int{6, 4, 1, 1}, nch: 6, wzp: 3},
		{name: "conv-clip6", op: "Conv", xsh: []int{1, 6, 8, 8}, wsh: []int{6, 1, 3, 3}, attrs: map[string]*graph.Attr{"group": graph.AInt(6), "pads": graph.AInts(1, 1, 1, 1), "strides": graph.AInts(2, 2)}, perChannel: true, nch: 6, clip: true},
		{name: "conv-asym-pads", op: "Conv", xsh: []int{1, 3, 8, 9}, wsh: []int{5, 3, 3, 3}, attrs: map[string]*graph.Attr{"pads": graph.AInts(0, 1, 2, 1)}, perChannel: true, nch: 5},
		{name: "conv1d", op: "Conv", xsh: []int{1, 16, 40}, wsh: []int{8, 16, 5}, attrs: map[string]*graph.Attr{"pads": graph.AInts(2, 2), "strides": graph.AInts(2)}, perChannel: true, nch: 8},
		{name: "conv-int8", op: "Conv", xsh: []int{1, 5, 6, 6}, wsh: []int{7, 5, 3, 3}, nch: 7, xSigned: true, ySigned: true},
		{name: "matmul-axis1-wzp", op: "MatMul", xsh: []int{3, 4, 20}, wsh: []int{20, 9}, perChannel: true, axis: 1, nch: 9, wzp: -2},
		{name: "convT", op: "ConvTranspose", xsh: []int{1, 6, 5, 4}, wsh: []int{6, 4, 3, 3}, attrs: map[string]*graph.Attr{"strides": graph.AInts(2, 2), "pads": graph.AInts(1, 1, 1, 1), "output_padding": graph.AInts(1, 0)}, nch: 4},
		{name: "convT-perchannel", op: "ConvTranspose", xsh: []int{2, 3, 4, 4}, wsh: []int{3, 5, 2, 2}, attrs: map[string]*graph.Attr{"strides": graph.AInts(2, 2)}, perChannel: true, axis: 1, nch: 5, clip: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.build(21)
			m := d.b.model(d.y)
			ref, err := Compile(m, Options{Reference: true})
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Run(context.Background(), d.b.feeds)
			if err != nil {
				t.Fatal(err)
			}
			var first []int32
			for _, th := range []int{1, 2} {
				p, err := Compile(m, Options{Threads: th})
				if err != nil {
					t.Fatal(err)
				}
				wantAllInt8(t, p, map[string]string{"Conv": "QLinearConv", "MatMul": "QLinearMatMul", "ConvTranspose": "QLinearConvTranspose"}[c.op])
				out, err := p.Run(context.Background(), d.b.feeds)
				if err != nil {
					t.Fatal(err)
				}
				got := qvals(out[d.y.Name])
				if first == nil {
					first = got
				}
				wv := qvals(want[d.y.Name])
				off := 0
				for i := range got {
					if got[i] != first[i] {
						t.Fatalf("[%d]: %d with %d threads, %d with 1", i, got[i], th, first[i])
					}
					if diff := got[i] - wv[i]; diff < -1 || diff > 1 {
						t.Fatalf("[%d]: fused %d, literal %d", i, got[i], wv[i])
					} else if diff != 0 {
						off++
					}
				}
				if float64(off) > 0.02*float64(len(got)) {
					t.Errorf("%d of %d one step off the literal graph", off, len(got))
				}
			}
			exact := c.independent(t, d)
			for i, v := range exact {
				if first[i] != v {
					t.Fatalf("[%d]: fused %d, independent int8 %d", i, first[i], v)
				}
			}
		})
	}
}

// independent computes the case with QLinearConv/QLinearMatMul nodes on
// uint8 data (or qconv's ConvTranspose reference) and the int32 bias.
func (c linCase) independent(t *testing.T, d *linData) []int32 {
	x := d.b.feeds[d.xval.Name]
	xb := bytesOf(x)
	zx, zy := d.zx, d.zy
	if c.xSigned {
		xb, zx = flip128(nil, xb), zx+128
	}
	if c.ySigned {
		zy += 128
	}
	lo, hi := int32(0), int32(255)
	if c.clip {
		lo = max(lo, qmath.Quantize(0, d.sy, zy, 0, 255))
		hi = min(hi, qmath.Quantize(6, d.sy, zy, 0, 255))
	}
	var out []int32
	if c.op == "ConvTranspose" {
		p := qconv.TransposeParams{InZeroPoint: zx}
		p.ConvTranspose2DParams = conv.ConvTranspose2DParams{N: c.xsh[0], C: c.xsh[1], H: c.xsh[2], W: c.xsh[3], OutC: c.nch, KH: c.wsh[2], KW: c.wsh[3]}
		if s, ok := c.attrs["strides"]; ok {
			p.StrideH, p.StrideW = int(s.Is[0]), int(s.Is[1])
		}
		if s, ok := c.attrs["pads"]; ok {
			p.PadH, p.PadW = int(s.Is[0]), int(s.Is[1])
		}
		if s, ok := c.attrs["output_padding"]; ok {
			p.OutPadH, p.OutPadW = int(s.Is[0]), int(s.Is[1])
		}
		mult := make([]float32, c.nch)
		for i := range c.nch {
			s, z := d.sw[0], d.zw[0]
			if c.perChannel {
				s, z = d.sw[i], d.zw[i]
			}
			p.WeightZeroPoints = append(p.WeightZeroPoints, int32(z))
			mult[i] = qmath.Multiplier(d.sx, s, d.sy)
		}
		y := make([]uint8, p.Norm().OutputLen())
		qconv.ConvTranspose2DReference(&p, xb, d.wq, &qgemm.Requant{Bias: d.b32, Multiplier: mult, ZeroPoint: zy, Min: lo, Max: hi}, y)
		out = qvals(tensor.FromUint8(y, len(y)))
	} else {
		g := graph.New("ql")
		dims := make([]int64, len(c.xsh))
		for i, v := range c.xsh {
			dims[i] = int64(v)
		}
		xv := g.AddInput("x", graph.TensorType(graph.Uint8, dims...))
		nq := len(d.sw)
		var ws, wz *graph.Value
		if nq == 1 {
			ws, wz = g.AddInitializer("ws", tensor.Scalar(d.sw[0])), g.AddInitializer("wz", tensor.FromInt8(d.zw[:1]).Reshape())
		} else {
			ws, wz = g.AddInitializer("ws", tensor.FromFloat32(d.sw, nq)), g.AddInitializer("wz", tensor.FromInt8(d.zw, nq))
		}
		in := []*graph.Value{xv, g.AddInitializer("xs", tensor.Scalar(d.sx)), g.AddInitializer("xz", tensor.FromUint8([]uint8{uint8(zx)}).Reshape()),
			g.AddInitializer("w", tensor.FromInt8(d.wq, c.wsh...)), ws, wz,
			g.AddInitializer("ys", tensor.Scalar(d.sy)), g.AddInitializer("yz", tensor.FromUint8([]uint8{uint8(zy)}).Reshape())}
		op := "QLinearMatMul"
		if c.op == "Conv" {
			op = "QLinearConv"
			in = append(in, g.AddInitializer("b", tensor.FromInt32(d.b32, len(d.b32))))
		}
		g.Outputs = g.AddNode("ql", op, in, []string{"y"}, c.attrs).Outputs
		y, _ := runModel(t, model(g, 13), Options{}, map[string]*tensor.Tensor{"x": tensor.FromUint8(xb, c.xsh...)})
		out = qvals(y)
		for i := range out {
			out[i] = min(max(out[i], lo), hi)
		}
	}
	if c.ySigned {
		for i := range out {
			out[i] -= 128
		}
	}
	return out
}

// TestQDQLinearBiasExact checks that an int32 bias given through
// DequantizeLinear is used as it is: biases above 2^24 do not survive a
// round trip through float32, and the fused step must hold them exactly.
func TestQDQLinearBiasExact(t *testing.T) {
	c := linCase{name: "bias", op: "Conv", xsh: []int{1, 2, 3, 3}, wsh: []int{3, 2, 1, 1}, nch: 3}
	d := c.build(3)
	for i := range d.b32 {
		d.b32[i] = 1<<24 + 1 + int32(i)*2
	}
	p, err := Compile(d.b.model(d.y), Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := p.main.steps[0].kernel.(*qlinearKernel)
	for i, v := range k.req.Bias {
		if v != d.b32[i] {
			t.Fatalf("bias[%d] = %d, want %d", i, v, d.b32[i])
		}
	}
	// Dequantizing and rounding again loses these values.
	s := float32(d.sx * d.sw[0])
	if v := qmath.Quantize(qmath.Dequantize(d.b32[0], 0, s), s, 0, math.MinInt32, math.MaxInt32); v == d.b32[0] {
		t.Fatalf("bias %d survives a float round trip; the test would not show exactness", v)
	}
}

// TestQDQLinearNotFused: a Conv whose float output has a second reader,
// or whose Relu output is returned, stays literal.
func TestQDQLinearNotFused(t *testing.T) {
	c := linCase{name: "kept", op: "Conv", xsh: []int{1, 2, 4, 4}, wsh: []int{3, 2, 1, 1}, nch: 3}
	d := c.build(3)
	conv := d.y.Producer.Inputs[0]
	p := runQDQBoth(t, d.b.model(d.y, d.b.node("Neg", []*graph.Value{conv}, nil)), d.b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with the conv output read twice", pat)
	}
	c.clip = true
	d = c.build(3)
	clip := d.y.Producer.Inputs[0]
	p = runQDQBoth(t, d.b.model(d.y, clip), d.b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with the Clip output returned", pat)
	}
}

// TestQDQLinearBatchNorm checks a Conv followed by a BatchNormalization
// (which the float rewrite folds into the Conv step) with negative and
// positive scales: the BatchNormalization goes into the int8 step's
// multipliers and bias, within one step of the literal graph.
func TestQDQLinearBatchNorm(t *testing.T) {
	for _, convT := range []bool{false, true} {
		c := linCase{name: "bn", op: "Conv", xsh: []int{1, 6, 9, 9}, wsh: []int{5, 6, 3, 3}, attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}, perChannel: true, nch: 5}
		if convT {
			c = linCase{name: "bnT", op: "ConvTranspose", xsh: []int{1, 6, 5, 5}, wsh: []int{6, 5, 2, 2}, attrs: map[string]*graph.Attr{"strides": graph.AInts(2, 2)}, nch: 5}
		}
		d := c.build(4)
		b := d.b
		q := d.y.Producer
		conv := q.Inputs[0]
		f := func(v ...float32) *graph.Value {
			return b.g.AddInitializer(b.name("bn"), tensor.FromFloat32(v, len(v)))
		}
		bn := b.node("BatchNormalization", []*graph.Value{conv, f(1.5, -0.7, 0.9, 2, -1.2), f(0.1, -0.3, 0.2, 0, 1), f(0.5, -1, 0, 2, 0.3), f(1, 2, 0.5, 4, 1.5)}, nil)
		relu := b.node("Relu", []*graph.Value{bn}, nil)
		q.Inputs[0] = relu
		m := b.model(d.y)
		if err := graph.Verify(m.Graph); err != nil {
			t.Fatal(err)
		}
		want, _ := runModel(t, m, Options{Reference: true}, b.feeds)
		got, p := runModel(t, m, Options{}, b.feeds)
		pat, fl := int8Nodes(p)
		if len(fl) != 0 || pat["QLinear"+c.op] != 5 {
			t.Fatalf("report %v, float %v; want DQ, %s, BatchNormalization, Relu, Q in one int8 step", pat, fl, c.op)
		}
		gv, wv := qvals(got), qvals(want)
		off := 0
		for i := range gv {
			if dv := gv[i] - wv[i]; dv < -1 || dv > 1 {
				t.Fatalf("[%d]: fused %d, literal %d", i, gv[i], wv[i])
			} else if dv != 0 {
				off++
			}
		}
		if float64(off) > 0.02*float64(len(gv)) {
			t.Errorf("%d of %d one step off", off, len(gv))
		}
	}
}

// TestQDQLinearFloatTail checks an int8 Conv or MatMul whose float result
// goes through elementwise nodes (HardSwish written out, a per-channel
// Mul, a Sigmoid) before the QuantizeLinear: one step, within one
// quantization step of the literal graph on all but a few elements.
func TestQDQLinearFloatTail(t *testing.T) {
	cases := []linCase{
		{name: "conv-hardswish", op: "Conv", xsh: []int{1, 6, 9, 9}, wsh: []int{5, 6, 3, 3}, attrs: map[string]*graph.Attr{"pads": graph.AInts(1, 1, 1, 1)}, perChannel: true, nch: 5},
		{name: "conv1x1-hardswish", op: "Conv", xsh: []int{2, 6, 7, 5}, wsh: []int{5, 6, 1, 1}, perChannel: true, nch: 5},
		{name: "matmul-hardswish", op: "MatMul", xsh: []int{3, 4, 20}, wsh: []int{20, 5}, perChannel: true, axis: 1, nch: 5},
		{name: "matmul-sigmoid", op: "MatMul", xsh: []int{4, 30}, wsh: []int{30, 7}, perChannel: true, axis: 1, nch: 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := c.build(6)
			b := d.b
			q := d.y.Producer
			v := q.Inputs[0]
			if c.name != "matmul-sigmoid" {
				a := b.node("Add", []*graph.Value{v, b.scalar(3)}, nil)
				cl := b.node("Clip", []*graph.Value{a, b.scalar(0), b.scalar(6)}, nil)
				hs := b.node("Div", []*graph.Value{b.node("Mul", []*graph.Value{v, cl}, nil), b.scalar(6)}, nil)
				eqs := []int{5}
				if c.op == "Conv" {
					eqs = []int{1, 5, 1, 1}
				}
				eq := b.g.AddInitializer(b.name("eq"), tensor.FromFloat32([]float32{0.5, 1, 1.5, 2, 0.7}, eqs...))
				q.Inputs[0] = b.node("Mul", []*graph.Value{hs, eq}, nil)
			} else {
				q.Inputs[0] = b.node("Sigmoid", []*graph.Value{v}, nil)
			}
			want, got, got2, _ := runOneInt8Step(t, b.model(d.y), b.feeds)
			gv, g2, wv := qvals(got), qvals(got2), qvals(want)
			off := 0
			for i := range gv {
				if gv[i] != g2[i] {
					t.Fatalf("[%d]: %d with 1 thread, %d with 2", i, gv[i], g2[i])
				}
				if dv := gv[i] - wv[i]; dv < -1 || dv > 1 {
					t.Fatalf("[%d]: fused %d, literal %d", i, gv[i], wv[i])
				} else if dv != 0 {
					off++
				}
			}
			if float64(off) > 0.02*float64(len(gv)) {
				t.Errorf("%d of %d one step off", off, len(gv))
			}
		})
	}
}

// TestQDQLinearPerChannelActivations checks per-channel (axis 1)
// activation qparams with one zero point: a depthwise Conv reading a
// per-channel DequantizeLinear, and Convs writing a per-channel
// QuantizeLinear, run int8 within one step of the literal graph.
func TestQDQLinearPerChannelActivations(t *testing.T) {
	for _, dw := range []bool{true, false} {
		b := newQB("pc", 9)
		x := b.input([]int{1, 4, 7, 7}, false, 100)
		var dx *graph.Value
		if dw {
			xs := b.g.AddInitializer(b.name("xs"), tensor.FromFloat32([]float32{0.01, 0.03, 0.02, 0.05}, 4))
			xz := b.g.AddInitializer(b.name("xz"), tensor.FromUint8([]uint8{100, 100, 100, 100}, 4))
			dx = b.node("DequantizeLinear", []*graph.Value{x, xs, xz}, map[string]*graph.Attr{"axis": graph.AInt(1)})
		} else {
			dx = b.dq(x, 0.02, 100, false)
		}
		wsh, nch, attrs := []int{6, 4, 1, 1}, 6, map[string]*graph.Attr(nil)
		if dw {
			wsh, nch, attrs = []int{4, 1, 3, 3}, 4, map[string]*graph.Attr{"group": graph.AInt(4), "pads": graph.AInts(1, 1, 1, 1)}
		}
		wq := make([]int8, shapeNumel(wsh))
		for i := range wq {
			wq[i] = int8(b.r.IntN(255) - 127)
		}
		sw := make([]float32, nch)
		ys := make([]float32, nch)
		for i := range sw {
			sw[i] = 0.004 + 0.001*float32(i)
			ys[i] = 0.02 + 0.01*float32(i)
		}
		w := b.node("DequantizeLinear", []*graph.Value{b.g.AddInitializer(b.name("w"), tensor.FromInt8(wq, wsh...)),
			b.g.AddInitializer(b.name("ws"), tensor.FromFloat32(sw, nch)), b.g.AddInitializer(b.name("wz"), tensor.FromInt8(make([]int8, nch), nch))},
			map[string]*graph.Attr{"axis": graph.AInt(0)})
		r := b.node("Relu", []*graph.Value{b.node("Conv", []*graph.Value{dx, w}, attrs)}, nil)
		y := b.node("QuantizeLinear", []*graph.Value{r, b.g.AddInitializer(b.name("ys"), tensor.FromFloat32(ys, nch)),
			b.g.AddInitializer(b.name("yz"), tensor.FromUint8(make([]uint8, nch), nch))}, map[string]*graph.Attr{"axis": graph.AInt(1)})
		m := b.model(y)
		want, _ := runModel(t, m, Options{Reference: true}, b.feeds)
		got, p := runModel(t, m, Options{}, b.feeds)
		pat, fl := int8Nodes(p)
		if len(fl) != 0 || pat["QLinearConv"] != 4 {
			t.Fatalf("depthwise %v: report %v, float %v; want one int8 step", dw, pat, fl)
		}
		gv, wv := qvals(got), qvals(want)
		off := 0
		for i := range gv {
			if dv := gv[i] - wv[i]; dv < -1 || dv > 1 {
				t.Fatalf("depthwise %v [%d]: fused %d, literal %d", dw, i, gv[i], wv[i])
			} else if dv != 0 {
				off++
			}
		}
		if float64(off) > 0.02*float64(len(gv)) {
			t.Errorf("depthwise %v: %d of %d one step off", dw, off, len(gv))
		}
	}
}

// runOneInt8Step runs m literally (Reference) and fused with 1 and 2
// threads, checks that the fused program is one int8 step with no float
// fallback, and returns the three outputs and the fused program.
func runOneInt8Step(t *testing.T, m *graph.Model, feeds map[string]*tensor.Tensor) (want, got, got2 *tensor.Tensor, p *Program) {
	t.Helper()
	want, _ = runModel(t, m, Options{Reference: true}, feeds)
	got, p = runModel(t, m, Options{Threads: 1}, feeds)
	got2, _ = runModel(t, m, Options{Threads: 2}, feeds)
	if pat, fl := int8Nodes(p); len(fl) != 0 || len(p.main.steps) != 1 {
		t.Fatalf("report %v, float %v; want one int8 step", pat, fl)
	}
	return want, got, got2, p
}

// TestQDQLinearFoldedBias checks a MatMul whose float result gets a
// constant row vector added (a Linear layer's bias as exporters write it,
// MatMul -> Add(b) -> [ops ->] QuantizeLinear): the step takes b into its
// epilogue, and its outputs equal, bit for bit, the float tail's own
// definition computed here by hand, Q(float32(float32(float32(acc) *
// float32(sx*sw[j])) + b[j])), with acc the exact integer product; they
// are within one step of the literal graph and do not depend on the
// thread count.
func TestQDQLinearFoldedBias(t *testing.T) {
	for _, order := range []string{"y+b", "b+y", "y+b-sigmoid"} {
		t.Run(order, func(t *testing.T) {
			c := linCase{name: "matmul-bias-" + order, op: "MatMul", xsh: []int{2, 3, 24}, wsh: []int{24, 11}, perChannel: true, axis: 1, nch: 11}
			d := c.build(9)
			b := d.b
			q := d.y.Producer
			v := q.Inputs[0]
			bias := make([]float32, c.nch)
			for j := range bias {
				bias[j] = float32(j%5-2) * 0.37
			}
			bv := b.g.AddInitializer(b.name("bias"), tensor.FromFloat32(bias, c.nch))
			in := []*graph.Value{v, bv}
			if order == "b+y" {
				in = []*graph.Value{bv, v}
			}
			s := b.node("Add", in, nil)
			if order == "y+b-sigmoid" {
				s = b.node("Sigmoid", []*graph.Value{s}, nil)
				d.sy, d.zy = 1.0/256, 0
				q.Inputs[1] = b.scalar(d.sy)
				q.Inputs[2] = b.g.AddInitializer(b.name("sz"), tensor.FromUint8([]uint8{0}).Reshape())
			}
			q.Inputs[0] = s
			want, got, got2, p := runOneInt8Step(t, b.model(d.y), b.feeds)
			k, ok := p.main.steps[0].kernel.(*qlinearKernel)
			if !ok || k.tail == nil {
				t.Fatalf("kernel %T: want a qlinearKernel with a float tail", p.main.steps[0].kernel)
			}
			if wantSteps := map[string]int{"y+b": 0, "b+y": 0, "y+b-sigmoid": 1}[order]; len(k.tail.steps) != wantSteps {
				t.Fatalf("tail has %d steps after folding the bias, want %d", len(k.tail.steps), wantSteps)
			}
			xq := qvals(b.feeds[d.xval.Name])
			gv, g2, wv := qvals(got), qvals(got2), qvals(want)
			K, N := c.wsh[0], c.wsh[1]
			for i := range gv {
				row, j := i/N, i%N
				var acc int32
				for kk := 0; kk < K; kk++ {
					acc += (xq[row*K+kk] - d.zx) * int32(d.wq[kk*N+j])
				}
				y := float32(float32(float32(acc)*float32(d.sx*d.sw[j])) + bias[j])
				if order == "y+b-sigmoid" {
					y = float32(1 / (1 + math.Exp(-float64(y))))
				}
				e := qmath.Quantize(y, d.sy, d.zy, 0, 255)
				if order != "y+b-sigmoid" && gv[i] != e {
					t.Fatalf("[%d]: fused %d, epilogue with the bias by hand %d", i, gv[i], e)
				}
				if gv[i] != g2[i] {
					t.Fatalf("[%d]: %d with 1 thread, %d with 2", i, gv[i], g2[i])
				}
				if dv := gv[i] - wv[i]; dv < -1 || dv > 1 {
					t.Fatalf("[%d]: fused %d, literal %d", i, gv[i], wv[i])
				}
			}
		})
	}
}
