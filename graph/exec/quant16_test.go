package exec_test

import (
	"context"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/onnx"
	"github.com/quanta-go/quanta/tensor"
)

// quant16Model is x -> QuantizeLinear -> DequantizeLinear with a 16-bit
// zero point of type elem (held as int32, its type declared), opset 21,
// returning both the codes and the dequantized values.
func quant16Model(elem graph.ElemType, scale float32, zp int32) *graph.Model {
	g := graph.New("q16")
	x := g.AddInput("x", graph.Type{Elem: graph.Float, Shape: []graph.Dim{{Size: 8}}, HasShape: true})
	s := g.AddInitializer("s", tensor.Scalar(scale))
	z := g.AddInitializer("z", tensor.FromInt32([]int32{zp}).Reshape())
	z.Type.Elem = elem
	q := g.AddNode("q", "QuantizeLinear", []*graph.Value{x, s, z}, []string{"codes"}, nil)
	q.Outputs[0].Type = graph.Type{Elem: elem, Shape: x.Type.Shape, HasShape: true}
	dq := g.AddNode("dq", "DequantizeLinear", []*graph.Value{q.Outputs[0], s, z}, []string{"y"}, nil)
	dq.Outputs[0].Type = x.Type
	g.Outputs = []*graph.Value{q.Outputs[0], dq.Outputs[0]}
	return &graph.Model{IRVersion: 10, Opsets: map[string]int64{"": 21}, Graph: g}
}

// TestQuantize16 runs uint16 and int16 QuantizeLinear/DequantizeLinear
// (opset 21) after an ONNX round trip, against hand-computed codes:
// RNE(x / scale) + zp saturated to the type's range, and (q - zp) * scale.
func TestQuantize16(t *testing.T) {
	x := tensor.FromFloat32([]float32{0, 1.25, 1.75, -2.5, 3.5, 1e6, -1e6, -0.25}, 8)
	for _, c := range []struct {
		elem  graph.ElemType
		scale float32
		zp    int32
		codes []int32
	}{
		// x/0.5 = 0, 2.5, 3.5, -5, 7, 2e6, -2e6, -0.5
		{graph.Uint16, 0.5, 30000, []int32{30000, 30002, 30004, 29995, 30007, 65535, 0, 30000}},
		{graph.Int16, 0.5, -100, []int32{-100, -98, -96, -105, -93, 32767, -32768, -100}},
	} {
		data, err := onnx.Encode(quant16Model(c.elem, c.scale, c.zp))
		if err != nil {
			t.Fatalf("%s: encode: %v", c.elem, err)
		}
		m, err := onnx.Decode(data, onnx.DecodeOptions{})
		if err != nil {
			t.Fatalf("%s: decode: %v", c.elem, err)
		}
		for _, v := range m.Graph.Initializers {
			if v.Name == "z" && (v.Type.Elem != c.elem || v.Const.I32()[0] != c.zp) {
				t.Errorf("%s: zero point read back as %s %v", c.elem, v.Type.Elem, v.Const.I32())
			}
		}
		p, err := exec.Compile(m, exec.Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.elem, err)
		}
		res, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": x})
		if err != nil {
			t.Fatalf("%s: %v", c.elem, err)
		}
		codes, y := res["codes"].I32(), res["y"].F32()
		for i, want := range c.codes {
			if codes[i] != want {
				t.Errorf("%s: code %d of %v = %d, want %d", c.elem, i, x.F32()[i], codes[i], want)
			}
			if w := float32(want-c.zp) * c.scale; y[i] != w {
				t.Errorf("%s: dequantized %d = %v, want %v", c.elem, i, y[i], w)
			}
		}
	}
}

// TestQuantize16Errors: a 16-bit zero point held as int32 needs its
// declared type, and output_dtype accepts only the 8- and 16-bit types.
func TestQuantize16Errors(t *testing.T) {
	m := quant16Model(graph.Int32, 1, 0)
	p, err := exec.Compile(m, exec.Options{})
	if err == nil {
		_, err = p.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.New(tensor.Float32, 8)})
	}
	if err == nil || !strings.Contains(err.Error(), "zero point type int32 is not supported") {
		t.Fatalf("an int32 zero point: error %v", err)
	}
	m = quant16Model(graph.Uint16, 1, 0)
	q := m.Graph.Nodes[0]
	q.Inputs = q.Inputs[:2]
	q.Attrs = map[string]*graph.Attr{"output_dtype": graph.AInt(int64(graph.Int32))}
	if _, err := exec.Compile(m, exec.Options{}); err == nil || !strings.Contains(err.Error(), "output_dtype int32 is not supported") {
		t.Fatalf("output_dtype int32: error %v", err)
	}
	q.Attrs["output_dtype"] = graph.AInt(int64(graph.Uint16))
	p, err = exec.Compile(m, exec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.FromFloat32([]float32{-1, 0, 7, 70000, 1, 2, 3, 4}, 8)})
	if err != nil {
		t.Fatal(err)
	}
	if got := res["codes"].I32()[:4]; got[0] != 0 || got[1] != 0 || got[2] != 7 || got[3] != 65535 {
		t.Errorf("output_dtype uint16: codes %v, want [0 0 7 65535]", got)
	}
}
