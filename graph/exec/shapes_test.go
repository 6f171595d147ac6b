package exec

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

// sty parses "float32[N,3,?,4]" ("[*]": unknown rank) into a type.
func sty(t *testing.T, s string) graph.Type {
	t.Helper()
	name, dims, ok := strings.Cut(strings.TrimSuffix(s, "]"), "[")
	if !ok {
		t.Fatalf("bad type %q", s)
	}
	var out graph.Type
	for e := graph.ElemType(0); e <= graph.BFloat16; e++ {
		if e.String() == name {
			out.Elem = e
		}
	}
	if dims == "*" {
		return out
	}
	out.HasShape, out.Shape = true, []graph.Dim{}
	if dims == "" {
		return out
	}
	for _, d := range strings.Split(dims, ",") {
		if d == "?" {
			out.Shape = append(out.Shape, dimUnknown)
		} else if v, err := strconv.ParseInt(d, 10, 64); err == nil {
			out.Shape = append(out.Shape, dimOf(v))
		} else {
			out.Shape = append(out.Shape, graph.Dim{Size: -1, Param: d})
		}
	}
	return out
}

func si64(v ...int64) *tensor.Tensor { return tensor.FromInt64(v, len(v)) }

func sf32(v ...float32) *tensor.Tensor { return tensor.FromFloat32(v, len(v)) }

// nodeCase is one node applied to inputs: a type string (a graph input),
// a tensor (an initializer) or nil (absent).
type nodeCase struct {
	name  string
	opset int64
	op    string
	ins   []any
	attrs map[string]*graph.Attr
	want  []string // output types; "" for an omitted output
	err   string   // substring of the expected error
}

func runNodeCase(t *testing.T, c nodeCase) {
	t.Helper()
	g := graph.New("main")
	var ins []*graph.Value
	for i, x := range c.ins {
		name := "in" + strconv.Itoa(i)
		switch x := x.(type) {
		case nil:
			ins = append(ins, nil)
		case string:
			ins = append(ins, g.AddInput(name, sty(t, x)))
		case *tensor.Tensor:
			ins = append(ins, g.AddInitializer(name, x))
		default:
			t.Fatalf("bad input %T", x)
		}
	}
	var outs []string
	for i, w := range c.want {
		if w == "" {
			outs = append(outs, "")
		} else {
			outs = append(outs, "out"+strconv.Itoa(i))
		}
	}
	if c.want == nil {
		outs = []string{"out0"}
	}
	n := g.AddNode("node", c.op, ins, outs, c.attrs)
	for _, o := range n.Outputs {
		if o != nil {
			g.Outputs = append(g.Outputs, o)
		}
	}
	opset := c.opset
	if opset == 0 {
		opset = 17
	}
	_, err := InferShapes(&graph.Model{Graph: g, Opsets: map[string]int64{"": opset}})
	if c.err != "" {
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Fatalf("error %v, want one containing %q", err, c.err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range c.want {
		if w == "" {
			continue
		}
		if got := n.Outputs[i].Type.String(); got != w {
			t.Errorf("output %d: got %s, want %s", i, got, w)
		}
	}
}

func sints(v ...int64) *graph.Attr { return graph.AInts(v...) }

func TestInferShapesElementwise(t *testing.T) {
	for _, c := range []nodeCase{
		{name: "relu keeps symbols", op: "Relu", ins: []any{"float32[N,3,H,W]"}, want: []string{"float32[N,3,H,W]"}},
		{name: "bias broadcast", op: "Add", ins: []any{"float32[N,3,H,W]", "float32[3,1,1]"}, want: []string{"float32[N,3,H,W]"}},
		{name: "outer broadcast", op: "Mul", ins: []any{"float32[N,1]", "float32[1,M]"}, want: []string{"float32[N,M]"}},
		{name: "two symbols", op: "Sub", ins: []any{"float32[N]", "float32[M]"}, want: []string{"float32[?]"}},
		{name: "known beats symbol", op: "Div", ins: []any{"float32[N,5]", "float32[M,1]"}, want: []string{"float32[?,5]"}},
		{name: "known vs unknown", op: "Add", ins: []any{"float32[4]", "float32[?]"}, want: []string{"float32[4]"}},
		{name: "unknown rank", op: "Add", ins: []any{"float32[*]", "float32[3]"}, want: []string{"float32[*]"}},
		{name: "mismatch", op: "Add", ins: []any{"float32[3]", "float32[4]"}, err: "do not broadcast"},
		{name: "scalar int arithmetic folded", op: "Div", ins: []any{si64(6).Reshape(), si64(2).Reshape()}, want: []string{"int64[]"}},
		{name: "folded", op: "Add", ins: []any{sf32(1, 2), sf32(3)}, want: []string{"float32[2]"}},
		{name: "compare", op: "Less", ins: []any{"int64[N]", "int64[]"}, want: []string{"bool[N]"}},
		{name: "where", op: "Where", ins: []any{"bool[N,1]", "int32[1,5]", "int32[]"}, want: []string{"int32[N,5]"}},
		{name: "variadic", op: "Max", ins: []any{"float32[2,1]", "float32[3]", "float32[1,1,1]"}, want: []string{"float32[1,2,3]"}},
		{name: "not", op: "Not", ins: []any{"bool[K]"}, want: []string{"bool[K]"}},
		{name: "cast", op: "Cast", ins: []any{"float32[N,2]"}, attrs: map[string]*graph.Attr{"to": graph.AInt(int64(graph.Float16))}, want: []string{"float16[N,2]"}},
		{name: "castlike", op: "CastLike", opset: 15, ins: []any{"float32[N,2]", "int8[]"}, want: []string{"int8[N,2]"}},
		{name: "softmax", op: "Softmax", ins: []any{"float32[B,10]"}, want: []string{"float32[B,10]"}},
		{name: "dropout", op: "Dropout", ins: []any{"float32[B,10]"}, want: []string{"float32[B,10]", "bool[B,10]"}},
		{name: "layernorm", op: "LayerNormalization", ins: []any{"float32[B,T,8]", "float32[8]"}, attrs: map[string]*graph.Attr{"axis": graph.AInt(-1)},
			want: []string{"float32[B,T,8]", "float32[B,T,1]", "float32[B,T,1]"}},
		{name: "quantize uint8", op: "QuantizeLinear", ins: []any{"float32[N,4]", "float32[]"}, want: []string{"uint8[N,4]"}},
		{name: "quantize int8", op: "QuantizeLinear", ins: []any{"float32[N,4]", "float32[]", "int8[]"}, want: []string{"int8[N,4]"}},
		{name: "dequantize", op: "DequantizeLinear", ins: []any{"int8[N,4]", "float32[]"}, want: []string{"float32[N,4]"}},
		{name: "dynamic quantize", op: "DynamicQuantizeLinear", ins: []any{"float32[N,4]"}, want: []string{"uint8[N,4]", "float32[]", "uint8[]"}},
	} {
		t.Run(c.name, func(t *testing.T) { runNodeCase(t, c) })
	}
}

func TestInferShapesNN(t *testing.T) {
	w8 := tensor.New(tensor.Float32, 8, 3, 3, 3)
	a := func(kv ...any) map[string]*graph.Attr {
		m := map[string]*graph.Attr{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(*graph.Attr)
		}
		return m
	}
	for _, c := range []nodeCase{
		// out = floor((in + pads - dilation*(k-1) - 1) / stride) + 1
		{name: "conv stride 2", op: "Conv", ins: []any{"float32[1,3,32,31]", w8}, attrs: a("pads", sints(1, 1, 1, 1), "strides", sints(2, 2)), want: []string{"float32[1,8,16,16]"}},
		{name: "conv same size keeps symbols", op: "Conv", ins: []any{"float32[N,3,H,W]", w8}, attrs: a("pads", sints(1, 1, 1, 1)), want: []string{"float32[N,8,H,W]"}},
		{name: "conv stride 2 symbolic", op: "Conv", ins: []any{"float32[N,3,H,W]", w8}, attrs: a("pads", sints(1, 1, 1, 1), "strides", sints(2, 2)), want: []string{"float32[N,8,?,?]"}},
		{name: "conv same_upper", op: "Conv", ins: []any{"float32[1,3,33,8]", w8}, attrs: a("auto_pad", graph.AString("SAME_UPPER"), "strides", sints(2, 2)), want: []string{"float32[1,8,17,4]"}},
		{name: "conv valid dilated", op: "Conv", ins: []any{"float32[1,3,10,10]", w8}, attrs: a("dilations", sints(2, 3)), want: []string{"float32[1,8,6,4]"}},
		{name: "conv asymmetric pads", op: "Conv", ins: []any{"float32[1,3,10,10]", w8}, attrs: a("pads", sints(0, 2, 1, 0)), want: []string{"float32[1,8,9,10]"}},
		{name: "conv group mismatch", op: "Conv", ins: []any{"float32[1,4,10,10]", w8}, err: "does not fit"},
		{name: "conv1d", op: "Conv", ins: []any{"float32[B,2,L]", "float32[6,2,1]"}, want: []string{"float32[B,6,L]"}},
		{name: "convtranspose", op: "ConvTranspose", ins: []any{"float32[1,4,5,5]", "float32[4,2,3,3]"},
			attrs: a("strides", sints(2, 2), "pads", sints(1, 1, 1, 1), "output_padding", sints(1, 1)), want: []string{"float32[1,2,10,10]"}},
		{name: "convtranspose group", op: "ConvTranspose", ins: []any{"float32[N,4,H,W]", "float32[4,3,2,2]"},
			attrs: a("group", graph.AInt(2), "strides", sints(2, 2)), want: []string{"float32[N,6,?,?]"}},
		{name: "convtranspose output_shape", op: "ConvTranspose", ins: []any{"float32[1,4,5,5]", "float32[4,2,3,3]"},
			attrs: a("strides", sints(2, 2), "output_shape", sints(11, 12)), want: []string{"float32[1,2,11,12]"}},
		{name: "maxpool ceil", op: "MaxPool", ins: []any{"float32[1,3,10,10]"}, attrs: a("kernel_shape", sints(3, 3), "strides", sints(2, 2), "ceil_mode", graph.AInt(1)),
			want: []string{"float32[1,3,5,5]", "int64[1,3,5,5]"}},
		{name: "maxpool floor", op: "MaxPool", ins: []any{"float32[1,3,10,10]"}, attrs: a("kernel_shape", sints(3, 3), "strides", sints(2, 2)), want: []string{"float32[1,3,4,4]"}},
		{name: "avgpool 1d", op: "AveragePool", ins: []any{"float32[N,C,9]"}, attrs: a("kernel_shape", sints(2), "strides", sints(2), "pads", sints(1, 0)), want: []string{"float32[N,C,5]"}},
		{name: "global pool", op: "GlobalAveragePool", ins: []any{"float32[N,C,H,W]"}, want: []string{"float32[N,C,1,1]"}},
		{name: "matmul batched", op: "MatMul", ins: []any{"float32[B,N,K]", "float32[K,M]"}, want: []string{"float32[B,N,M]"}},
		{name: "matmul broadcast batch", op: "MatMul", ins: []any{"float32[2,1,N,4]", "float32[3,4,5]"}, want: []string{"float32[2,3,N,5]"}},
		{name: "matmul vector left", op: "MatMul", ins: []any{"float32[4]", "float32[B,4,5]"}, want: []string{"float32[B,5]"}},
		{name: "matmul vector right", op: "MatMul", ins: []any{"float32[N,4]", "float32[4]"}, want: []string{"float32[N]"}},
		{name: "matmul mismatch", op: "MatMul", ins: []any{"float32[N,4]", "float32[5,2]"}, err: "must be equal"},
		{name: "matmulinteger", op: "MatMulInteger", ins: []any{"uint8[N,4]", "int8[4,6]"}, want: []string{"int32[N,6]"}},
		{name: "qlinearmatmul", op: "QLinearMatMul", ins: []any{"uint8[N,4]", "float32[]", "uint8[]", "int8[4,6]", "float32[]", "int8[]", "float32[]", "int8[]"}, want: []string{"int8[N,6]"}},
		{name: "gemm", op: "Gemm", ins: []any{"float32[K,M]", "float32[N,K]", "float32[N]"}, attrs: a("transA", graph.AInt(1), "transB", graph.AInt(1)), want: []string{"float32[M,N]"}},
		{name: "einsum", op: "Einsum", opset: 12, ins: []any{"float32[B,I,J]", "float32[B,J,K]"}, attrs: a("equation", graph.AString("bij,bjk->bik")), want: []string{"float32[B,I,K]"}},
		{name: "einsum implicit", op: "Einsum", opset: 12, ins: []any{"float32[3,4]", "float32[4,5]"}, attrs: a("equation", graph.AString("ij,jk")), want: []string{"float32[3,5]"}},
		{name: "einsum ellipsis", op: "Einsum", opset: 12, ins: []any{"float32[N,2,3,4]"}, attrs: a("equation", graph.AString("...ij->...ji")), want: []string{"float32[N,2,4,3]"}},
		{name: "reduce attr", op: "ReduceMean", opset: 13, ins: []any{"float32[N,C,H,W]"}, attrs: a("axes", sints(2, -1)), want: []string{"float32[N,C,1,1]"}},
		{name: "reduce no keepdims", op: "ReduceMax", opset: 13, ins: []any{"float32[N,C,H,W]"}, attrs: a("axes", sints(1), "keepdims", graph.AInt(0)), want: []string{"float32[N,H,W]"}},
		{name: "reducesum input", op: "ReduceSum", opset: 13, ins: []any{"float32[N,C,H]", si64(0, 2)}, attrs: a("keepdims", graph.AInt(0)), want: []string{"float32[C]"}},
		{name: "reduce all", op: "ReduceL2", opset: 18, ins: []any{"float32[N,C]"}, attrs: a("keepdims", graph.AInt(0)), want: []string{"float32[]"}},
		{name: "reduce noop", op: "ReduceL1", opset: 18, ins: []any{"float32[N,C]"}, attrs: a("noop_with_empty_axes", graph.AInt(1)), want: []string{"float32[N,C]"}},
		{name: "reduce unknown axes", op: "ReduceSum", opset: 13, ins: []any{"float32[N,1,H]", "int64[1]"}, want: []string{"float32[?,1,?]"}},
		{name: "argmax", op: "ArgMax", ins: []any{"float32[N,C,H]"}, attrs: a("axis", graph.AInt(1), "keepdims", graph.AInt(0)), want: []string{"int64[N,H]"}},
		{name: "topk", op: "TopK", ins: []any{"float32[N,100]", si64(5)}, want: []string{"float32[N,5]", "int64[N,5]"}},
		{name: "topk attr", op: "TopK", opset: 9, ins: []any{"float32[N,100,3]"}, attrs: a("k", graph.AInt(7), "axis", graph.AInt(1)), want: []string{"float32[N,7,3]", "int64[N,7,3]"}},
		{name: "resize scales", op: "Resize", opset: 13, ins: []any{"float32[1,3,5,7]", nil, sf32(1, 1, 2, 2.5)}, want: []string{"float32[1,3,10,17]"}},
		{name: "resize scales symbolic", op: "Resize", opset: 13, ins: []any{"float32[N,3,H,W]", sf32(), sf32(1, 1, 2, 2)}, want: []string{"float32[N,3,?,?]"}},
		{name: "resize sizes", op: "Resize", opset: 13, ins: []any{"float32[N,3,H,W]", nil, nil, si64(1, 3, 64, 32)}, want: []string{"float32[1,3,64,32]"}},
		{name: "resize not_larger", op: "Resize", opset: 18, ins: []any{"float32[1,3,10,20]", nil, nil, si64(5, 5)},
			attrs: a("axes", sints(2, 3), "keep_aspect_ratio_policy", graph.AString("not_larger")), want: []string{"float32[1,3,3,5]"}},
		{name: "upsample", op: "Upsample", opset: 9, ins: []any{"float32[1,3,5,7]", sf32(1, 1, 2, 3)}, want: []string{"float32[1,3,10,21]"}},
		{name: "upsample attr", op: "Upsample", opset: 7, ins: []any{"float32[1,3,5,7]"}, attrs: a("scales", graph.AFloats(1, 1, 2, 2)), want: []string{"float32[1,3,10,14]"}},
		{name: "pad input", op: "Pad", opset: 13, ins: []any{"float32[N,3,H,5]", si64(0, 0, 0, 1, 0, 0, 0, 2)}, want: []string{"float32[N,3,H,8]"}},
		{name: "pad attr", op: "Pad", opset: 2, ins: []any{"float32[4,5]"}, attrs: a("pads", sints(1, -1, 2, 0)), want: []string{"float32[7,4]"}},
		{name: "pad axes", op: "Pad", opset: 18, ins: []any{"float32[N,3,4]", si64(1, 1), nil, si64(-1)}, want: []string{"float32[N,3,6]"}},
		{name: "lstm", op: "LSTM", ins: []any{"float32[T,B,8]", "float32[2,64,8]", "float32[2,64,16]"}, attrs: a("direction", graph.AString("bidirectional")),
			want: []string{"float32[T,2,B,16]", "float32[2,B,16]", "float32[2,B,16]"}},
		{name: "gru batch first", op: "GRU", opset: 14, ins: []any{"float32[B,T,8]", "float32[1,48,8]", "float32[1,48,16]"}, attrs: a("layout", graph.AInt(1), "hidden_size", graph.AInt(16)),
			want: []string{"float32[B,T,1,16]", "float32[B,1,16]"}},
		{name: "rnn omitted Y", op: "RNN", ins: []any{"float32[T,B,8]", "float32[1,4,8]", "float32[1,4,4]"}, want: []string{"", "float32[1,B,4]"}},
		{name: "qlinearconv", op: "QLinearConv", ins: []any{"uint8[N,3,8,8]", "float32[]", "uint8[]", "int8[8,3,3,3]", "float32[]", "int8[]", "float32[]", "uint8[]"},
			want: []string{"uint8[N,8,6,6]"}},
		{name: "convinteger", op: "ConvInteger", ins: []any{"uint8[N,3,8,8]", "int8[8,3,3,3]"}, attrs: a("pads", sints(1, 1, 1, 1)), want: []string{"int32[N,8,8,8]"}},
	} {
		t.Run(c.name, func(t *testing.T) { runNodeCase(t, c) })
	}
}

func TestInferShapesTensorOps(t *testing.T) {
	a := func(kv ...any) map[string]*graph.Attr {
		m := map[string]*graph.Attr{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(*graph.Attr)
		}
		return m
	}
	for _, c := range []nodeCase{
		{name: "reshape infer", op: "Reshape", ins: []any{"float32[N,3,4,5]", si64(0, -1)}, want: []string{"float32[N,60]"}},
		{name: "reshape cancel symbol", op: "Reshape", ins: []any{"float32[2,N,6]", si64(4, -1, 3)}, want: []string{"float32[4,N,3]"}},
		{name: "reshape unknown", op: "Reshape", ins: []any{"float32[N,M]", si64(-1)}, want: []string{"float32[?]"}},
		{name: "reshape bad", op: "Reshape", ins: []any{"float32[2,3]", si64(4, 2)}, err: "cannot reshape"},
		{name: "reshape shape unknown", op: "Reshape", ins: []any{"float32[2,3]", "int64[3]"}, want: []string{"float32[?,?,?]"}},
		{name: "reshape allowzero", op: "Reshape", opset: 14, ins: []any{"float32[0,3]", si64(0, 3)}, attrs: a("allowzero", graph.AInt(1)), want: []string{"float32[0,3]"}},
		{name: "reshape attr", op: "Reshape", opset: 1, ins: []any{"float32[2,3]"}, attrs: a("shape", sints(3, 2)), want: []string{"float32[3,2]"}},
		{name: "flatten", op: "Flatten", ins: []any{"float32[N,3,4,5]"}, want: []string{"float32[N,60]"}},
		{name: "flatten axis 0", op: "Flatten", ins: []any{"float32[N,3]"}, attrs: a("axis", graph.AInt(0)), want: []string{"float32[1,?]"}},
		{name: "flatten unknown rank", op: "Flatten", ins: []any{"float32[*]"}, want: []string{"float32[?,?]"}},
		{name: "squeeze attr", op: "Squeeze", opset: 11, ins: []any{"float32[N,1,5,1]"}, attrs: a("axes", sints(1, -1)), want: []string{"float32[N,5]"}},
		{name: "squeeze input", op: "Squeeze", opset: 13, ins: []any{"float32[N,1,5,1]", si64(3)}, want: []string{"float32[N,1,5]"}},
		{name: "squeeze all", op: "Squeeze", opset: 13, ins: []any{"float32[1,4,1]"}, want: []string{"float32[4]"}},
		{name: "squeeze all symbolic", op: "Squeeze", opset: 13, ins: []any{"float32[1,N,1]"}, want: []string{"float32[*]"}},
		{name: "squeeze not one", op: "Squeeze", opset: 13, ins: []any{"float32[2,4]", si64(0)}, err: "cannot squeeze"},
		{name: "unsqueeze", op: "Unsqueeze", opset: 13, ins: []any{"float32[N,5]", si64(0, -1)}, want: []string{"float32[1,N,5,1]"}},
		{name: "unsqueeze attr", op: "Unsqueeze", opset: 11, ins: []any{"float32[N,5]"}, attrs: a("axes", sints(1)), want: []string{"float32[N,1,5]"}},
		{name: "transpose", op: "Transpose", ins: []any{"float32[N,C,H,W]"}, attrs: a("perm", sints(0, 2, 3, 1)), want: []string{"float32[N,H,W,C]"}},
		{name: "transpose default", op: "Transpose", ins: []any{"float32[A,B,C]"}, want: []string{"float32[C,B,A]"}},
		{name: "concat", op: "Concat", ins: []any{"float32[N,3]", "float32[N,5]", "float32[?,0]"}, attrs: a("axis", graph.AInt(1)), want: []string{"float32[N,8]"}},
		{name: "concat symbolic axis", op: "Concat", ins: []any{"float32[N,3]", "float32[M,3]"}, attrs: a("axis", graph.AInt(0)), want: []string{"float32[?,3]"}},
		{name: "concat unify", op: "Concat", ins: []any{"float32[?,3]", "float32[4,2]"}, attrs: a("axis", graph.AInt(-1)), want: []string{"float32[4,5]"}},
		{name: "concat mismatch", op: "Concat", ins: []any{"float32[2,3]", "float32[4,3]"}, attrs: a("axis", graph.AInt(1)), err: "must be equal"},
		{name: "split input", op: "Split", opset: 13, ins: []any{"float32[N,10]", si64(3, 7)}, attrs: a("axis", graph.AInt(1)), want: []string{"float32[N,3]", "float32[N,7]"}},
		{name: "split equal", op: "Split", opset: 13, ins: []any{"float32[N,10]"}, attrs: a("axis", graph.AInt(-1)), want: []string{"float32[N,5]", "float32[N,5]"}},
		{name: "split uneven 18", op: "Split", opset: 18, ins: []any{"float32[7]"}, attrs: a("num_outputs", graph.AInt(3)), want: []string{"float32[3]", "float32[3]", "float32[1]"}},
		{name: "split attr", op: "Split", opset: 11, ins: []any{"float32[6,N]"}, attrs: a("split", sints(2, 4)), want: []string{"float32[2,N]", "float32[4,N]"}},
		{name: "slice", op: "Slice", ins: []any{"float32[N,10,20]", si64(2), si64(-1), si64(2)}, want: []string{"float32[N,10,17]"}},
		{name: "slice steps", op: "Slice", ins: []any{"float32[10,20]", si64(9, 0), si64(-100, 20), si64(0, 1), si64(-2, 3)}, want: []string{"float32[5,7]"}},
		{name: "slice to end symbolic", op: "Slice", ins: []any{"float32[N,T]", si64(0), si64(math.MaxInt64), si64(1)}, want: []string{"float32[N,T]"}},
		{name: "slice symbolic", op: "Slice", ins: []any{"float32[N,T]", si64(1), si64(math.MaxInt64), si64(1)}, want: []string{"float32[N,?]"}},
		{name: "slice attrs", op: "Slice", opset: 9, ins: []any{"float32[8,8]"}, attrs: a("starts", sints(1), "ends", sints(5), "axes", sints(1)), want: []string{"float32[8,4]"}},
		{name: "slice unknown params", op: "Slice", ins: []any{"float32[N,8]", "int64[1]", "int64[1]", si64(1)}, want: []string{"float32[N,?]"}},
		{name: "shape", op: "Shape", ins: []any{"float32[N,3,H]"}, want: []string{"int64[3]"}},
		{name: "shape start", op: "Shape", opset: 15, ins: []any{"float32[N,3,H]"}, attrs: a("start", graph.AInt(-2)), want: []string{"int64[2]"}},
		{name: "size", op: "Size", ins: []any{"float32[N,3]"}, want: []string{"int64[]"}},
		{name: "gather", op: "Gather", ins: []any{"float32[N,5,6]", "int64[2,3]"}, attrs: a("axis", graph.AInt(1)), want: []string{"float32[N,2,3,6]"}},
		{name: "gather scalar", op: "Gather", ins: []any{"float32[5,D]", "int64[]"}, want: []string{"float32[D]"}},
		{name: "gatherelements", op: "GatherElements", opset: 13, ins: []any{"float32[N,5]", "int64[N,2]"}, want: []string{"float32[N,2]"}},
		{name: "gathernd", op: "GatherND", opset: 13, ins: []any{"float32[B,5,6,7]", "int64[B,4,2]"}, attrs: a("batch_dims", graph.AInt(1)), want: []string{"float32[B,4,7]"}},
		{name: "scatternd", op: "ScatterND", opset: 13, ins: []any{"float32[N,5]", "int64[2,1]", "float32[2,5]"}, want: []string{"float32[N,5]"}},
		{name: "expand", op: "Expand", ins: []any{"float32[3,1]", si64(2, 1, 4)}, want: []string{"float32[2,3,4]"}},
		{name: "expand unknown shape", op: "Expand", ins: []any{"float32[3,1]", "int64[2]"}, want: []string{"float32[3,?]"}},
		{name: "expand symbolic", op: "Expand", ins: []any{"float32[N,1]", "int64[2]"}, want: []string{"float32[?,?]"}},
		{name: "tile", op: "Tile", ins: []any{"float32[N,2]", si64(1, 3)}, want: []string{"float32[N,6]"}},
		{name: "constantofshape", op: "ConstantOfShape", ins: []any{si64(2, 3)}, want: []string{"float32[2,3]"}},
		{name: "constantofshape int", op: "ConstantOfShape", ins: []any{"int64[2]"}, attrs: a("value", graph.ATensor(si64(1))), want: []string{"int64[?,?]"}},
		{name: "range", op: "Range", ins: []any{si64(2), si64(11).Reshape(), si64(3).Reshape()}, want: []string{"int64[3]"}},
		{name: "range unknown", op: "Range", ins: []any{"float32[]", "float32[]", "float32[]"}, want: []string{"float32[?]"}},
		{name: "nonzero", op: "NonZero", ins: []any{"float32[N,4]"}, want: []string{"int64[2,?]"}},
		{name: "onehot", op: "OneHot", ins: []any{"int64[N,3]", si64(10), sf32(0, 1)}, attrs: a("axis", graph.AInt(1)), want: []string{"float32[N,10,3]"}},
		{name: "trilu", op: "Trilu", opset: 14, ins: []any{"float32[N,4,4]"}, want: []string{"float32[N,4,4]"}},
		{name: "identity", op: "Identity", ins: []any{"uint8[N]"}, want: []string{"uint8[N]"}},
	} {
		t.Run(c.name, func(t *testing.T) { runNodeCase(t, c) })
	}
}
