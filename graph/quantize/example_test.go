package quantize_test

import (
	"context"
	"fmt"
	"math/rand"
	"regexp"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/tensor"
)

// exampleNet returns a small Conv-Relu-Flatten-Gemm model with a
// 1x3x8x8 input "x", and a source of random tensors.
func exampleNet() (*graph.Model, func(shape ...int) *tensor.Tensor) {
	r := rand.New(rand.NewSource(1))
	rnd := func(shape ...int) *tensor.Tensor {
		t := tensor.Zeros(shape...)
		for i := range t.F32() {
			t.F32()[i] = float32(r.NormFloat64()) * 0.3
		}
		return t
	}
	g := graph.New("net")
	x := g.AddInput("x", graph.TensorType(graph.Float, 1, 3, 8, 8))
	conv := g.AddNode("conv", "Conv", []*graph.Value{x, g.AddInitializer("w", rnd(4, 3, 3, 3)), g.AddInitializer("b", rnd(4))}, []string{"c"}, nil)
	relu := g.AddNode("relu", "Relu", conv.Outputs, []string{"r"}, nil)
	flat := g.AddNode("flat", "Flatten", relu.Outputs, []string{"f"}, nil)
	fc := g.AddNode("fc", "Gemm", []*graph.Value{flat.Outputs[0], g.AddInitializer("fw", rnd(2, 144))}, []string{"y"}, map[string]*graph.Attr{"transB": graph.AInt(1)})
	g.Outputs = fc.Outputs
	model := &graph.Model{Graph: g, Opsets: map[string]int64{"": 17}, IRVersion: 8}
	return model, rnd
}

// Example quantizes a small Conv-Relu-Gemm model statically: Prepare,
// Observe calibration feeds one at a time, Convert to QDQ, and run the
// result on quanta's int8 kernels.
func Example() {
	model, rnd := exampleNet()

	p, err := quantize.Prepare(model, quantize.Options{Engine: "x86"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < 8; i++ {
		if err := p.Observe(context.Background(), map[string]*tensor.Tensor{"x": rnd(1, 3, 8, 8)}); err != nil {
			fmt.Println(err)
			return
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range p.Units {
		fmt.Println(u.Key, u.Quantized)
	}
	c := q.Graph.OpCounts()
	fmt.Println("QuantizeLinear:", c["QuantizeLinear"], "DequantizeLinear:", c["DequantizeLinear"])
	prog, err := exec.Compile(q, exec.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := prog.Run(context.Background(), map[string]*tensor.Tensor{"x": rnd(1, 3, 8, 8)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("output shape", out["y"].Shape())
	// Output:
	// Conv2d+ReLU true
	// Flatten true
	// Linear true
	// QuantizeLinear: 4 DequantizeLinear: 7
	// output shape [1 2]
}

// ExampleOptions_int16 is mixed precision: the convolution (and the ReLU
// fused with it) at 16 bits, the rest at 8. The convolution reads uint16
// codes and int16 weights, keeps a float bias, and the model is written
// in opset 21, which ONNX Runtime runs as it is; the value the 8-bit Gemm
// reads is quantized to 8 bits.
func ExampleOptions_int16() {
	model, rnd := exampleNet()

	p, err := quantize.Prepare(model, quantize.Options{Int16: []*regexp.Regexp{regexp.MustCompile(`^conv$`)}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 0; i < 8; i++ {
		if err := p.Observe(context.Background(), map[string]*tensor.Tensor{"x": rnd(1, 3, 8, 8)}); err != nil {
			fmt.Println(err)
			return
		}
	}
	q, err := quantize.Convert(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("opset", q.Opset(""))
	for _, n := range q.Graph.Nodes {
		switch n.OpType {
		case "Conv", "Gemm":
			fmt.Printf("%s reads %s codes, %s weights\n", n.Name, n.Inputs[0].Producer.Inputs[0].Type.Elem, n.Inputs[1].Producer.Inputs[0].Type.Elem)
		}
	}
	// Output:
	// opset 21
	// conv reads uint16 codes, int16 weights
	// fc reads uint8 codes, int8 weights
}
