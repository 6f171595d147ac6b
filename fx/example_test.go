package fx_test

import (
	"context"
	"fmt"

	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Trace a small model and look at the graph: every node knows the module
// it came from, and the weights are initializers named by their
// state-dict keys.
func ExampleTrace() {
	rng := tensor.NewRNG(1)
	fc1, _ := nn.NewLinear(4, 8, nn.LinearOptions{RNG: rng})
	fc2, _ := nn.NewLinear(8, 2, nn.LinearOptions{RNG: rng})
	model := nn.NewSequential(fc1, nn.NewGELU(false), fc2, nn.NewSoftmax(-1))
	nn.Eval(model)

	m, err := fx.Trace(model, tensor.Randn(rng, 1, 4))
	if err != nil {
		fmt.Println(err)
		return
	}
	g := m.Graph
	fmt.Println("opset", m.Opset(""), "inputs", g.Inputs, "outputs", g.Outputs)
	for _, v := range g.Initializers {
		fmt.Println("init", v.Name, v.Type)
	}
	for _, n := range g.Nodes {
		fmt.Printf("%-10s %-8s module %s (%s)\n", n.Name, n.OpType, n.ModulePath, n.ModuleType)
	}
	// Output:
	// opset 17 inputs [input] outputs [output]
	// init 0.weight float32[8,4]
	// init 0.bias float32[8]
	// init 1/Gelu_sqrt2 float32[]
	// init 1/Gelu_one float32[]
	// init 1/Gelu_half float32[]
	// init 2.weight float32[2,8]
	// init 2.bias float32[2]
	// 0/Gemm     Gemm     module 0 (Linear)
	// 1/Div      Div      module 1 (GELU)
	// 1/Erf      Erf      module 1 (GELU)
	// 1/Add      Add      module 1 (GELU)
	// 1/Mul      Mul      module 1 (GELU)
	// 1/Mul_1    Mul      module 1 (GELU)
	// 2/Gemm     Gemm     module 2 (Linear)
	// 3/Softmax  Softmax  module 3 (Softmax)
}

// TraceFunc traces functions of several inputs and outputs; the traced
// model runs on graph/exec.
func ExampleTraceFunc() {
	fn := func(in []*tensor.Tensor) []*tensor.Tensor {
		s := ops.Add(in[0], in[1])
		return []*tensor.Tensor{ops.ReLU(s), ops.MulScalar(s, 10)}
	}
	a := tensor.FromFloat32([]float32{1, -2, 3}, 3)
	b := tensor.FromFloat32([]float32{0.5, 0.5, -4}, 3)
	m, err := fx.TraceFunc(fn, nil, []*tensor.Tensor{a, b})
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := exec.Compile(m, exec.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{
		"input_0": tensor.FromFloat32([]float32{1, 2, 3}, 3),
		"input_1": tensor.FromFloat32([]float32{-3, 0, 1}, 3),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, n := range m.Graph.Nodes {
		fmt.Println(n.Name, n.Inputs, "->", n.Outputs)
	}
	fmt.Println(out["output_0"].F32(), out["output_1"].F32())
	// Output:
	// Add [input_0 input_1] -> [Add_output_0]
	// Relu [Add_output_0] -> [output_0]
	// Mul [Add_output_0 Mul_scalar] -> [output_1]
	// [0 2 4] [-20 20 40]
}
