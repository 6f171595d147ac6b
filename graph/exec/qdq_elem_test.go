package exec

import (
	"context"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// TestQDQRegionLUT checks that regions of elementwise nodes between one
// DequantizeLinear and one QuantizeLinear run as one table lookup
// bit-identical to the literal graph, on random codes and the edge codes,
// for uint8 and int8 data.
func TestQDQRegionLUT(t *testing.T) {
	type build func(b *qb, x *graph.Value) *graph.Value
	unary := func(op string, attrs map[string]*graph.Attr) build {
		return func(b *qb, x *graph.Value) *graph.Value { return b.node(op, []*graph.Value{x}, attrs) }
	}
	scalarOp := func(op string, c float32) build {
		return func(b *qb, x *graph.Value) *graph.Value { return b.node(op, []*graph.Value{x, b.scalar(c)}, nil) }
	}
	cases := []struct {
		name       string
		f          build
		inS, outS  bool
		sy         float32
		zy         int32
		perChannel bool
	}{
		{name: "sigmoid", f: unary("Sigmoid", nil), sy: 1.0 / 256},
		{name: "hardsigmoid", f: unary("HardSigmoid", map[string]*graph.Attr{"alpha": graph.AFloat(1.0 / 6)}), sy: 1.0 / 255},
		{name: "hardswish", f: unary("HardSwish", nil), sy: 0.04, zy: 20},
		{name: "relu", f: unary("Relu", nil), sy: 0.03, zy: 0},
		{name: "leakyrelu", f: unary("LeakyRelu", map[string]*graph.Attr{"alpha": graph.AFloat(0.1)}), sy: 0.02, zy: 100},
		{name: "tanh", f: unary("Tanh", nil), sy: 2.0 / 255, zy: 128},
		{name: "elu", f: unary("Elu", nil), sy: 0.03, zy: 40},
		{name: "clip06", f: func(b *qb, x *graph.Value) *graph.Value {
			return b.node("Clip", []*graph.Value{x, b.scalar(0), b.scalar(6)}, nil)
		}, sy: 6.0 / 255},
		{name: "mul", f: scalarOp("Mul", 0.37), sy: 0.02, zy: 128},
		{name: "add", f: scalarOp("Add", 1.5), sy: 0.05, zy: 60},
		{name: "sub", f: scalarOp("Sub", 0.25), sy: 0.05, zy: 128},
		{name: "div", f: scalarOp("Div", 3), sy: 0.01, zy: 128},
		{name: "hardswish-expanded", f: func(b *qb, x *graph.Value) *graph.Value {
			// x * Clip(x + 3, 0, 6) / 6 reads x twice.
			a := b.node("Add", []*graph.Value{x, b.scalar(3)}, nil)
			c := b.node("Clip", []*graph.Value{a, b.scalar(0), b.scalar(6)}, nil)
			m := b.node("Mul", []*graph.Value{x, c}, nil)
			return b.node("Div", []*graph.Value{m, b.scalar(6)}, nil)
		}, sy: 0.04, zy: 20},
		{name: "broadcast-const", f: func(b *qb, x *graph.Value) *graph.Value {
			c := b.g.AddInitializer(b.name("c"), tensor.FromFloat32([]float32{0.5}, 1, 1, 1, 1, 1))
			return b.node("Mul", []*graph.Value{x, c}, nil)
		}, sy: 0.02, zy: 128},
		{name: "requantize", f: func(b *qb, x *graph.Value) *graph.Value { return x }, sy: 0.07, zy: 90},
		{name: "channel-add", f: func(b *qb, x *graph.Value) *graph.Value {
			c := b.g.AddInitializer(b.name("c"), tensor.FromFloat32([]float32{0.5, -1, 2}, 3, 1, 1))
			return b.node("Add", []*graph.Value{x, c}, nil)
		}, sy: 0.05, zy: 100, perChannel: true},
		{name: "channel-bn-relu", f: func(b *qb, x *graph.Value) *graph.Value {
			f := func(v ...float32) *graph.Value {
				return b.g.AddInitializer(b.name("bn"), tensor.FromFloat32(v, len(v)))
			}
			bn := b.node("BatchNormalization", []*graph.Value{x, f(1.5, -0.7, 0.9), f(0.1, -0.3, 0.2), f(0.5, -1, 0), f(1, 2, 0.5)}, nil)
			return b.node("Relu", []*graph.Value{bn}, nil)
		}, sy: 0.03, perChannel: true},
		{name: "channel-mul-sigmoid", f: func(b *qb, x *graph.Value) *graph.Value {
			c := b.g.AddInitializer(b.name("c"), tensor.FromFloat32([]float32{0.5, -1, 2}, 1, 3, 1, 1))
			return b.node("Sigmoid", []*graph.Value{b.node("Mul", []*graph.Value{x, c}, nil)}, nil)
		}, sy: 1.0 / 256, perChannel: true},
		{name: "int8-in", f: unary("Sigmoid", nil), inS: true, sy: 1.0 / 256},
		{name: "int8-both", f: unary("HardSwish", nil), inS: true, outS: true, sy: 0.03, zy: -10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newQB(c.name, 7)
			zx := int32(113)
			if c.inS {
				zx = -15
			}
			x := b.input([]int{2, 3, 17, 5}, c.inS, zx)
			y := b.q(c.f(b, b.dq(x, 0.045, zx, c.inS)), c.sy, c.zy, c.outS)
			m := b.model(y)
			p := runQDQBoth(t, m, b.feeds)
			pattern := "QLinearLUT"
			if c.name == "requantize" {
				pattern = "QLinearRequantize"
			}
			if c.perChannel {
				pattern = "QLinearLUT (per channel)"
			}
			wantAllInt8(t, p, pattern)
			if len(p.main.steps) != 1 {
				t.Fatalf("%d steps, want 1", len(p.main.steps))
			}
		})
	}
}

// TestQDQRegionPerChannel checks regions between a per-channel (axis 1)
// DequantizeLinear and QuantizeLinear, and a per-channel requantization:
// one table per channel, bit-identical to the literal graph.
func TestQDQRegionPerChannel(t *testing.T) {
	for _, op := range []string{"HardSwish", ""} {
		b := newQB("pc", 3)
		x := b.input([]int{2, 3, 5, 7}, false, 90)
		pc := func(v *graph.Value, q bool, s ...float32) *graph.Value {
			sv := b.g.AddInitializer(b.name("s"), tensor.FromFloat32(s, len(s)))
			zv := b.g.AddInitializer(b.name("z"), tensor.FromUint8([]uint8{90, 90, 90}, 3))
			name := "DequantizeLinear"
			if q {
				name = "QuantizeLinear"
			}
			return b.node(name, []*graph.Value{v, sv, zv}, map[string]*graph.Attr{"axis": graph.AInt(1)})
		}
		v := pc(x, false, 0.02, 0.05, 0.03)
		if op != "" {
			v = b.node(op, []*graph.Value{v}, nil)
		}
		p := runQDQBoth(t, b.model(pc(v, true, 0.03, 0.01, 0.04)), b.feeds)
		pattern := "QLinearLUT (per channel)"
		if op == "" {
			pattern = "QLinearRequantize"
		}
		wantAllInt8(t, p, pattern)
	}
}

// TestQDQRegionNotFused checks that a region whose intermediate value is
// returned by the graph, or whose other operand is not a one-element
// constant, stays literal.
func TestQDQRegionNotFused(t *testing.T) {
	b := newQB("kept", 1)
	x := b.input([]int{4, 6}, false, 128)
	a := b.node("Add", []*graph.Value{b.dq(x, 0.1, 128, false), b.scalar(3)}, nil)
	s := b.node("Sigmoid", []*graph.Value{a}, nil)
	m := b.model(b.q(s, 1.0/256, 0, false), a)
	p := runQDQBoth(t, m, b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with an intermediate returned", pat)
	}
	b = newQB("vector", 1)
	x = b.input([]int{4, 6}, false, 128)
	c := b.g.AddInitializer("c", tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 6))
	mu := b.node("Mul", []*graph.Value{b.dq(x, 0.1, 128, false), c}, nil)
	m = b.model(b.q(mu, 0.2, 128, false))
	p = runQDQBoth(t, m, b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with an operand along the last axis", pat)
	}
}

// TestQDQBinary checks Add/Sub/Mul/Div of two DQ'd activations, with
// ONNX broadcasting and fused Relu/Clip, against the literal graph bit
// for bit.
func TestQDQBinary(t *testing.T) {
	cases := []struct {
		name     string
		op       string
		as, bs   []int
		tail     string
		sa, sb   bool
		outS     bool
		sameZero bool
	}{
		{name: "add", op: "Add", as: []int{2, 8, 9, 7}, bs: []int{2, 8, 9, 7}},
		{name: "add-relu", op: "Add", as: []int{1, 16, 33}, bs: []int{1, 16, 33}, tail: "Relu"},
		{name: "add-bcast", op: "Add", as: []int{2, 3, 4, 5}, bs: []int{1, 3, 1, 1}},
		{name: "mul-se", op: "Mul", as: []int{1, 8, 5, 5}, bs: []int{1, 8, 1, 1}},
		{name: "mul-se-scale-first", op: "Mul", as: []int{1, 8, 1, 1}, bs: []int{1, 8, 5, 5}},
		{name: "mul-se-scale-first-long", op: "Mul", as: []int{1, 3, 1, 1}, bs: []int{1, 3, 40, 32}},
		{name: "mul-se-relu", op: "Mul", as: []int{2, 8, 5, 5}, bs: []int{2, 8, 1, 1}, tail: "Relu"},
		{name: "sub-se", op: "Sub", as: []int{1, 8, 5, 5}, bs: []int{1, 8, 1, 1}},
		{name: "mul", op: "Mul", as: []int{3, 700}, bs: []int{3, 700}, tail: "Clip"},
		{name: "mul-rows", op: "Mul", as: []int{4, 1}, bs: []int{3}},
		{name: "sub", op: "Sub", as: []int{5, 6}, bs: []int{6}},
		{name: "div", op: "Div", as: []int{2, 40}, bs: []int{2, 40}, sameZero: true},
		{name: "add-int8", op: "Add", as: []int{3, 50}, bs: []int{3, 50}, sa: true, sb: true, outS: true},
		{name: "mul-mixed", op: "Mul", as: []int{3, 50}, bs: []int{50}, sa: true, tail: "Relu"},
		{name: "mul-se-equalize", op: "Mul", as: []int{2, 8, 9, 11}, bs: []int{2, 8, 1, 1}, tail: "Equalize"},
		{name: "mul-se-small-equalize", op: "Mul", as: []int{2, 8, 3, 5}, bs: []int{2, 8, 1, 1}, tail: "Equalize"},
		{name: "add-equalize-relu", op: "Add", as: []int{2, 3, 4, 5}, bs: []int{2, 3, 4, 5}, tail: "EqualizeRelu"},
		{name: "add-bcast-constfirst", op: "Add", as: []int{2, 6, 70}, bs: []int{1, 6, 1}, tail: "ConstSub"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newQB(c.name, 3)
			za, zb := int32(100), int32(140)
			if c.sa {
				za = -20
			}
			if c.sb {
				zb = 9
			}
			a := b.dq(b.input(c.as, c.sa, za), 0.05, za, c.sa)
			bb := b.dq(b.input(c.bs, c.sb, zb), 0.07, zb, c.sb)
			v := b.node(c.op, []*graph.Value{a, bb}, nil)
			switch c.tail {
			case "Relu":
				v = b.node("Relu", []*graph.Value{v}, nil)
			case "Clip":
				v = b.node("Clip", []*graph.Value{v, b.scalar(-1), b.scalar(2)}, nil)
			case "Equalize", "EqualizeRelu":
				cs := make([]float32, c.as[1])
				for i := range cs {
					cs[i] = 0.4 + 0.37*float32(i)
				}
				v = b.node("Mul", []*graph.Value{v, b.g.AddInitializer(b.name("eq"), tensor.FromFloat32(cs, 1, len(cs), 1, 1))}, nil)
				if c.tail == "EqualizeRelu" {
					v = b.node("Relu", []*graph.Value{v}, nil)
				}
			case "ConstSub":
				v = b.node("Sub", []*graph.Value{b.scalar(1.5), v}, nil)
			}
			zy := int32(128)
			if c.outS {
				zy = 3
			}
			m := b.model(b.q(v, 0.06, zy, c.outS))
			p := runQDQBoth(t, m, b.feeds)
			wantAllInt8(t, p, "QLinear"+c.op)
		})
	}
}

// TestQDQBinaryNotFused: an Add whose float result is also returned
// stays literal; the DequantizeLinear of an input read by a float node
// stays while the Add fuses.
func TestQDQBinaryNotFused(t *testing.T) {
	b := newQB("kept", 2)
	a := b.dq(b.input([]int{3, 4}, false, 10), 0.1, 10, false)
	c := b.dq(b.input([]int{3, 4}, false, 20), 0.1, 20, false)
	s := b.node("Add", []*graph.Value{a, c}, nil)
	m := b.model(b.q(s, 0.2, 128, false), s)
	p := runQDQBoth(t, m, b.feeds)
	if pat, _ := int8Nodes(p); len(pat) != 0 {
		t.Fatalf("fused %v with the sum returned", pat)
	}
	b = newQB("shared", 2)
	a = b.dq(b.input([]int{3, 4}, false, 10), 0.1, 10, false)
	c = b.dq(b.input([]int{3, 4}, false, 20), 0.1, 20, false)
	neg := b.node("Neg", []*graph.Value{a}, nil)
	m = b.model(b.q(b.node("Add", []*graph.Value{a, c}, nil), 0.2, 128, false), neg)
	p = runQDQBoth(t, m, b.feeds)
	pat, fl := int8Nodes(p)
	if pat["QLinearAdd"] != 4 || len(fl) != 2 {
		t.Fatalf("report %v, float %v; want the Add fused and DequantizeLinear, Neg float", pat, fl)
	}
}

// TestQDQChain checks that consecutive patterns pass 8-bit tensors: no
// float step is left between them.
func TestQDQChain(t *testing.T) {
	b := newQB("chain", 5)
	x := b.input([]int{2, 4, 6, 6}, false, 128)
	h := b.q(b.node("HardSwish", []*graph.Value{b.dq(x, 0.05, 128, false)}, nil), 0.04, 20, false)
	r := b.q(b.node("Reshape", []*graph.Value{b.dq(h, 0.04, 20, false), b.ints(2, -1)}, nil), 0.04, 20, false)
	g := b.node("Sigmoid", []*graph.Value{b.dq(r, 0.04, 20, false)}, nil)
	m := b.model(b.q(g, 1.0/256, 0, false))
	p := runQDQBoth(t, m, b.feeds)
	wantAllInt8(t, p, "QLinearLUT")
	if len(p.main.steps) != 3 {
		t.Fatalf("%d steps, want 3", len(p.main.steps))
	}
	for _, st := range p.main.steps {
		if _, ok := st.kernel.(qdqKernel); !ok {
			t.Fatalf("step %s is not fused", st.node)
		}
	}
}

func BenchmarkQDQLUT(b *testing.B) {
	qbd := newQB("bench", 1)
	x := qbd.input([]int{1, 64, 56, 56}, false, 128)
	y := qbd.q(qbd.node("HardSwish", []*graph.Value{qbd.dq(x, 0.05, 128, false)}, nil), 0.04, 20, false)
	m := qbd.model(y)
	for _, ref := range []bool{false, true} {
		name := "fused"
		if ref {
			name = "reference"
		}
		b.Run(name, func(b *testing.B) {
			p, err := Compile(m, Options{Reference: ref})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := p.Run(context.Background(), qbd.feeds); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(64*56*56)*float64(b.N)/b.Elapsed().Seconds()/1e9, "Gelem/s")
		})
	}
}
