package exec

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/tensor"
)

func model(g *graph.Graph, opset int64) *graph.Model {
	return &graph.Model{Graph: g, Opsets: map[string]int64{"": opset}}
}

// addRelu is y = Relu(x + c) with c = [-1, 0, 1, 2] broadcast over rows.
func addRelu() *graph.Model {
	g := graph.New("addrelu")
	x := g.AddInput("x", graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Param: "N"}, {Size: 4}}})
	c := g.AddInitializer("c", tensor.FromFloat32([]float32{-1, 0, 1, 2}, 4))
	add := g.AddNode("add", "Add", []*graph.Value{x, c}, []string{"s"}, nil)
	relu := g.AddNode("relu", "Relu", []*graph.Value{add.Outputs[0]}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{relu.Outputs[0]}
	return model(g, 17)
}

func TestRunAndConcurrency(t *testing.T) {
	p, err := Compile(addRelu(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.FromFloat32([]float32{0, 0, -2, -2, 0.5, 0.5, 0.5, 0.5}, 2, 4)
	want := []float32{0, 0, 0, 0, 0, 0.5, 1.5, 2.5}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": x})
			if err != nil {
				errs <- err
				return
			}
			y := out["y"]
			for i, v := range y.F32() {
				if v != want[i] {
					errs <- &mismatch{i, v, want[i]}
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := strings.Join(p.InputNames(), ","); got != "x" {
		t.Errorf("inputs %s", got)
	}
}

type mismatch struct {
	i    int
	got  float32
	want float32
}

func (m *mismatch) Error() string { return "mismatch" }

func TestRunErrors(t *testing.T) {
	p, err := Compile(addRelu(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		in   map[string]*tensor.Tensor
		want string
	}{
		{map[string]*tensor.Tensor{}, `input "x" (float32[N,4]) is missing`},
		{map[string]*tensor.Tensor{"x": tensor.Zeros(2, 5)}, `input "x" has shape [2 5], the model declares float32[N,4]`},
		{map[string]*tensor.Tensor{"x": tensor.FromInt64([]int64{1, 2, 3, 4}, 1, 4)}, `input "x" is int64`},
		{map[string]*tensor.Tensor{"x": tensor.Zeros(1, 4), "z": tensor.Zeros(1)}, `no input "z"`},
	}
	for _, c := range cases {
		if _, err := p.Run(context.Background(), c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.in, err, c.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Run(ctx, map[string]*tensor.Tensor{"x": tensor.Zeros(1, 4)}); err != context.Canceled {
		t.Errorf("cancelled run: %v", err)
	}

	// Unsupported operator, and a kernel error naming the node.
	g := graph.New("bad")
	x := g.AddInput("x", graph.TensorType(graph.Float, 3))
	n := g.AddNode("weird0", "Frobnicate", []*graph.Value{x}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{n.Outputs[0]}
	if _, err := Compile(model(g, 17), Options{}); err == nil || !strings.Contains(err.Error(), "node weird0 (Frobnicate): operator Frobnicate is not supported (domain \"\", opset 17)") {
		t.Errorf("unknown op: %v", err)
	}
	g = graph.New("shapes")
	a := g.AddInput("a", graph.TensorType(graph.Float, 3))
	b := g.AddInput("b", graph.TensorType(graph.Float, 4))
	n = g.AddNode("add0", "Add", []*graph.Value{a, b}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{n.Outputs[0]}
	p, err = Compile(model(g, 17), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), map[string]*tensor.Tensor{"a": tensor.Zeros(3), "b": tensor.Zeros(4)})
	if err == nil || !strings.Contains(err.Error(), "exec: node add0 (Add):") {
		t.Errorf("broadcast error: %v", err)
	}
}

// TestConstantFolding checks that nodes computing from constants run once
// at compile time: y = x + (c1 * c2) has one step left.
func TestConstantFolding(t *testing.T) {
	g := graph.New("fold")
	x := g.AddInput("x", graph.TensorType(graph.Float, 2))
	c1 := g.AddInitializer("c1", tensor.FromFloat32([]float32{1, 2}, 2))
	k := g.AddNode("k", "Constant", nil, []string{"c2"}, map[string]*graph.Attr{"value": graph.ATensor(tensor.FromFloat32([]float32{3, 4}, 2))})
	m := g.AddNode("mul", "Mul", []*graph.Value{c1, k.Outputs[0]}, []string{"p"}, nil)
	a := g.AddNode("add", "Add", []*graph.Value{x, m.Outputs[0]}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{a.Outputs[0]}
	p, err := Compile(model(g, 17), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(p.main.steps); n != 1 || p.main.steps[0].node.Name != "add" {
		t.Fatalf("%d steps after folding, want only add", n)
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"x": tensor.FromFloat32([]float32{10, 20}, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"].F32(); y[0] != 13 || y[1] != 28 {
		t.Errorf("y = %v, want [13 28]", y)
	}
}

// TestIntegerScalarDiv checks that integer Div of two scalars stays a
// scalar (PyTorch's shape arithmetic divides scalars gathered from Shape).
func TestIntegerScalarDiv(t *testing.T) {
	g := graph.New("div")
	a := g.AddInput("a", graph.TensorType(graph.Int64))
	b := g.AddInitializer("b", tensor.FromInt64([]int64{8}).Reshape())
	n := g.AddNode("div", "Div", []*graph.Value{a, b}, []string{"y"}, nil)
	g.Outputs = []*graph.Value{n.Outputs[0]}
	p, err := Compile(model(g, 17), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.Run(context.Background(), map[string]*tensor.Tensor{"a": tensor.FromInt64([]int64{-17}).Reshape()})
	if err != nil {
		t.Fatal(err)
	}
	if y := out["y"]; y.NDim() != 0 || y.I64()[0] != -2 {
		t.Errorf("Div(-17, 8) = %v with shape %v, want scalar -2", y.I64(), y.Shape())
	}
}
