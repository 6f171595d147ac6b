package exec

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func init() {
	for name, f := range map[string]func(a, b *tensor.Tensor) (*tensor.Tensor, error){
		"Add": arith(tensor.Add), "Sub": arith(tensor.Sub), "Mul": arith(tensor.Mul), "Div": divide,
		"Pow":   pow,
		"Equal": compare(tensor.Equal), "Greater": compare(tensor.Greater), "Less": compare(tensor.Less),
		"GreaterOrEqual": compare(tensor.GreaterEqual), "LessOrEqual": compare(tensor.LessEqual),
		"And": logical(tensor.LogicalAnd), "Or": logical(tensor.LogicalOr),
		"Xor": logical(func(a, b *tensor.Tensor) *tensor.Tensor {
			return tensor.LogicalAnd(tensor.LogicalOr(a, b), tensor.LogicalNot(tensor.LogicalAnd(a, b)))
		}),
	} {
		f := f
		register(name, 7, func(c *CompileContext, n *graph.Node) (Kernel, error) {
			if err := nIn(n, 2, 2); err != nil {
				return nil, err
			}
			return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) { return f(in[0], in[1]) }), nil
		})
	}
	for name, f := range map[string]func(a, b *tensor.Tensor) *tensor.Tensor{"Max": tensor.Maximum, "Min": tensor.Minimum, "Sum": tensor.Add} {
		f := f
		register(name, 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
			if err := nIn(n, 1, -1); err != nil {
				return nil, err
			}
			return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) { return variadic(f, in) }), nil
		})
	}
	register("Mean", 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 1, -1); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			s, err := variadic(tensor.Add, in)
			if err != nil {
				return nil, err
			}
			if err := wantFloat("Mean's inputs", s); err != nil {
				return nil, err
			}
			return tensor.MulScalar(s, 1/float32(len(in))), nil
		}), nil
	})
	register("Where", 9, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 3, 3); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			if in[0].DType() != tensor.Bool {
				return nil, fmt.Errorf("condition must be bool, got %s", in[0].DType())
			}
			if in[1].DType() != in[2].DType() {
				return nil, fmt.Errorf("X is %s and Y is %s", in[1].DType(), in[2].DType())
			}
			return tensor.Where(in[0], in[1], in[2]), nil
		}), nil
	})
	register("Not", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			if in[0].DType() != tensor.Bool {
				return nil, fmt.Errorf("input must be bool, got %s", in[0].DType())
			}
			return tensor.LogicalNot(in[0]), nil
		}), nil
	})
}

// arith checks that the operands have one dtype (float32, int32 or int64).
func arith(f func(a, b *tensor.Tensor) *tensor.Tensor) func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	return func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
		if err := sameNumeric(a, b); err != nil {
			return nil, err
		}
		if _, err := tensor.BroadcastShapes(a.Shape(), b.Shape()); err != nil {
			return nil, err
		}
		return f(a, b), nil
	}
}

func sameNumeric(a, b *tensor.Tensor) error {
	if a.DType() != b.DType() {
		return fmt.Errorf("operands are %s and %s", a.DType(), b.DType())
	}
	switch a.DType() {
	case tensor.Float32, tensor.Int32, tensor.Int64:
		return nil
	}
	return fmt.Errorf("operands of type %s are not supported", a.DType())
}

// divide is ONNX Div: true division for floats, division truncated toward
// zero for integers (C semantics, as ONNX Runtime); an integer division by
// zero is an error.
func divide(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if err := sameNumeric(a, b); err != nil {
		return nil, err
	}
	if _, err := tensor.BroadcastShapes(a.Shape(), b.Shape()); err != nil {
		return nil, err
	}
	if a.DType() == tensor.Float32 {
		return tensor.Div(a, b), nil
	}
	return intBinary(a, b, func(x, y int64) (int64, error) {
		if y == 0 {
			return 0, fmt.Errorf("integer division by zero")
		}
		return x / y, nil
	})
}

// pow is ONNX Pow: float base and float or integer exponent; integer base
// with integer exponent.
func pow(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	if _, err := tensor.BroadcastShapes(a.Shape(), b.Shape()); err != nil {
		return nil, err
	}
	switch {
	case a.DType() == tensor.Float32:
		if b.DType() != tensor.Float32 {
			b = tensor.Cast(b, tensor.Float32)
		}
		return tensor.Pow(a, b), nil
	case a.DType() == tensor.Int64 || a.DType() == tensor.Int32:
		bb := b
		if b.DType() == tensor.Float32 {
			r := tensor.Pow(tensor.Cast(a, tensor.Float32), b)
			return tensor.Cast(r, a.DType()), nil
		}
		if bb.DType() != a.DType() {
			bb = tensor.Cast(bb, a.DType())
		}
		return intBinary(a, bb, func(x, y int64) (int64, error) {
			return int64(math.Pow(float64(x), float64(y))), nil
		})
	}
	return nil, fmt.Errorf("Pow of %s is not supported", a.DType())
}

// intBinary applies f elementwise with broadcasting to int32 or int64
// tensors of one dtype.
func intBinary(a, b *tensor.Tensor, f func(x, y int64) (int64, error)) (*tensor.Tensor, error) {
	shape, err := tensor.BroadcastShapes(a.Shape(), b.Shape())
	if err != nil {
		return nil, err
	}
	a64, b64 := tensor.Cast(tensor.Expand(a, shape...), tensor.Int64), tensor.Cast(tensor.Expand(b, shape...), tensor.Int64)
	out := make([]int64, a64.Numel())
	av, bv := a64.I64(), b64.I64()
	for i := range out {
		if out[i], err = f(av[i], bv[i]); err != nil {
			return nil, err
		}
	}
	r := tensor.FromInt64(out, len(out)).Reshape(shape...) // keeps a 0-d result 0-d
	if a.DType() != tensor.Int64 {
		r = tensor.Cast(r, a.DType())
	}
	return r, nil
}

func compare(f func(a, b *tensor.Tensor) *tensor.Tensor) func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	return func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
		if a.DType() != b.DType() {
			return nil, fmt.Errorf("operands are %s and %s", a.DType(), b.DType())
		}
		if _, err := tensor.BroadcastShapes(a.Shape(), b.Shape()); err != nil {
			return nil, err
		}
		return f(a, b), nil
	}
}

func logical(f func(a, b *tensor.Tensor) *tensor.Tensor) func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
	return func(a, b *tensor.Tensor) (*tensor.Tensor, error) {
		if a.DType() != tensor.Bool || b.DType() != tensor.Bool {
			return nil, fmt.Errorf("operands must be bool, got %s and %s", a.DType(), b.DType())
		}
		if _, err := tensor.BroadcastShapes(a.Shape(), b.Shape()); err != nil {
			return nil, err
		}
		return f(a, b), nil
	}
}

func variadic(f func(a, b *tensor.Tensor) *tensor.Tensor, in []*tensor.Tensor) (*tensor.Tensor, error) {
	acc := in[0]
	for _, t := range in[1:] {
		if err := sameNumeric(acc, t); err != nil {
			return nil, err
		}
		if _, err := tensor.BroadcastShapes(acc.Shape(), t.Shape()); err != nil {
			return nil, err
		}
		acc = f(acc, t)
	}
	if len(in) == 1 {
		acc = acc.Clone()
	}
	return acc, nil
}

// unaryFloat registers a float32 unary op computed by f.
func unaryFloat(name string, since int64, f func(x *tensor.Tensor) *tensor.Tensor) {
	register(name, since, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
			if err := wantFloat("the input", in[0]); err != nil {
				return nil, err
			}
			return f(in[0]), nil
		}), nil
	})
}

// sigmoidF32 is the executor's Sigmoid: conv.EwSigmoid's float32
// exponential (within 4 ulps of the float64 sigmoid, see its
// documentation), the same bits as in fused elementwise runs. ops.Sigmoid,
// which autograd and training use, keeps the float64 exponential.
func sigmoidF32(x *tensor.Tensor) *tensor.Tensor {
	xv := x.F32()
	y := make([]float32, len(xv))
	parallel.For(len(y), 16384, func(s, e int) { conv.EwSigmoid(y[s:e], xv[s:e]) })
	return nnTensor(y, x.Shape())
}

func init() {
	unaryFloat("Relu", 6, ops.ReLU)
	unaryFloat("Sigmoid", 6, sigmoidF32)
	unaryFloat("Tanh", 6, ops.Tanh)
	unaryFloat("Exp", 6, ops.Exp)
	unaryFloat("Log", 6, ops.Log)
	unaryFloat("Sqrt", 6, ops.Sqrt)
	unaryFloat("Reciprocal", 6, ops.Reciprocal)
	unaryFloat("Erf", 9, ops.Erf)
	unaryFloat("Floor", 6, tensor.Floor)
	unaryFloat("Ceil", 6, tensor.Ceil)
	unaryFloat("Round", 11, tensor.Round)
	unaryFloat("Sin", 7, tensor.Sin)
	unaryFloat("Cos", 7, tensor.Cos)
	unaryFloat("HardSwish", 14, ops.Hardswish)
	unaryFloat("Softplus", 1, ops.Softplus)
	// Neg, Abs and Sign also take integers.
	for name, f := range map[string]func(*tensor.Tensor) *tensor.Tensor{"Neg": tensor.Neg, "Abs": tensor.Abs, "Sign": tensor.Sign} {
		f := f
		register(name, 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
			if err := nIn(n, 1, 1); err != nil {
				return nil, err
			}
			return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
				switch in[0].DType() {
				case tensor.Float32, tensor.Int32, tensor.Int64:
					return f(in[0]), nil
				}
				return nil, fmt.Errorf("input of type %s is not supported", in[0].DType())
			}), nil
		})
	}
	register("LeakyRelu", 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		alpha, err := n.Float("alpha", 0.01)
		if err != nil {
			return nil, err
		}
		return floatKernel(n, func(x *tensor.Tensor) *tensor.Tensor { return ops.LeakyReLU(x, alpha) })
	})
	register("Elu", 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		alpha, err := n.Float("alpha", 1)
		if err != nil {
			return nil, err
		}
		return floatKernel(n, func(x *tensor.Tensor) *tensor.Tensor { return ops.ELU(x, alpha) })
	})
	register("HardSigmoid", 6, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		alpha, err := n.Float("alpha", 0.2)
		if err != nil {
			return nil, err
		}
		beta, err := n.Float("beta", 0.5)
		if err != nil {
			return nil, err
		}
		return floatKernel(n, func(x *tensor.Tensor) *tensor.Tensor {
			return tensor.Map(x, func(v float32) float32 { return max(0, min(1, float32(alpha*v)+beta)) })
		})
	})
	register("Gelu", 20, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		approx, err := n.StringAttr("approximate", "none")
		if err != nil {
			return nil, err
		}
		if approx != "none" && approx != "tanh" {
			return nil, fmt.Errorf("approximate %q, want none or tanh", approx)
		}
		return floatKernel(n, func(x *tensor.Tensor) *tensor.Tensor { return ops.GELU(x, approx == "tanh") })
	})
	register("Identity", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		if err := nIn(n, 1, 1); err != nil {
			return nil, err
		}
		return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) { return in[0], nil }), nil
	})
	register("Constant", 1, func(c *CompileContext, n *graph.Node) (Kernel, error) {
		t, err := ConstantValue(n)
		if err != nil {
			return nil, err
		}
		return one(func([]*tensor.Tensor) (*tensor.Tensor, error) { return t, nil }), nil
	})
}

// floatKernel is a one-input float32 kernel.
func floatKernel(n *graph.Node, f func(x *tensor.Tensor) *tensor.Tensor) (Kernel, error) {
	if err := nIn(n, 1, 1); err != nil {
		return nil, err
	}
	return one(func(in []*tensor.Tensor) (*tensor.Tensor, error) {
		if err := wantFloat("the input", in[0]); err != nil {
			return nil, err
		}
		return f(in[0]), nil
	}), nil
}
