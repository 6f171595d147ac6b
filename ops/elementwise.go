package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// ClampAttrs are the bounds of a Clamp, Hardtanh or ReLU6 call, for tracing.
type ClampAttrs struct{ Min, Max float32 }

// ScalarAttrs carry the scalar operand of AddScalar, MulScalar and
// PowScalar, for tracing.
type ScalarAttrs struct{ Value float32 }

// ewGrad returns f(g[i], x[i]) for a gradient g and a same-shape float32
// tensor x (an op's input or output).
func ewGrad(g, x *tensor.Tensor, f func(g, x float32) float32) *tensor.Tensor {
	gs, xs := g.F32(), x.F32()
	if len(gs) != len(xs) {
		panic(fmt.Sprintf("ops: gradient of shape %v for tensor of shape %v", g.Shape(), x.Shape()))
	}
	out := tensor.New(tensor.Float32, x.Shape()...)
	d := out.F32()
	xs = xs[:len(d)]
	gs = gs[:len(d)]
	for i := range d {
		d[i] = f(gs[i], xs[i])
	}
	return out
}

// ewSumTo returns t summed down to the shape of in, or nil when in needs no
// gradient.
func ewSumTo(t, in *tensor.Tensor) *tensor.Tensor {
	if !needs(in) {
		return nil
	}
	return tensor.SumTo(t, in.Shape())
}

// Add returns a + b with NumPy broadcasting (torch.add). Gradients are
// summed back over broadcast dimensions.
func Add(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Add(a, b)
	return Apply("Add", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewSumTo(g[0], a), ewSumTo(g[0], b))
	})
}

// Sub returns a - b with broadcasting (torch.sub).
func Sub(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Sub(a, b)
	return Apply("Sub", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var gb *tensor.Tensor
		if needs(b) {
			gb = tensor.SumTo(tensor.Neg(g[0]), b.Shape())
		}
		return Ts(ewSumTo(g[0], a), gb)
	})
}

// Mul returns a * b elementwise with broadcasting (torch.mul).
func Mul(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Mul(a, b)
	return Apply("Mul", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		if needs(a) {
			ga = tensor.SumTo(tensor.Mul(g[0], b), a.Shape())
		}
		if needs(b) {
			gb = tensor.SumTo(tensor.Mul(g[0], a), b.Shape())
		}
		return Ts(ga, gb)
	})
}

// Div returns a / b elementwise with broadcasting (torch.div). The
// gradients are g/b and -g*(a/b)/b, as PyTorch computes them.
func Div(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Div(a, b)
	return Apply("Div", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		if needs(a) {
			ga = tensor.SumTo(tensor.Div(g[0], b), a.Shape())
		}
		if needs(b) {
			q := tensor.Div(tensor.Div(a, b), b)
			gb = tensor.SumTo(tensor.Neg(tensor.Mul(g[0], q)), b.Shape())
		}
		return Ts(ga, gb)
	})
}

// Pow returns a**b elementwise with broadcasting (torch.pow). As in
// PyTorch, the gradient for a is g*b*a**(b-1), taken as 0 where b == 0, and
// the gradient for b is g*a**b*log(a), taken as 0 where a == 0 and b >= 0.
func Pow(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Pow(a, b)
	return Apply("Pow", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		shape := out.Shape()
		if needs(a) {
			ae, be := tensor.Expand(a, shape...), tensor.Expand(b, shape...)
			r := tensor.Pow(ae, tensor.AddScalar(be, -1))
			d, gs, bs := r.F32(), g[0].F32(), be.F32()
			for i := range d {
				if bs[i] == 0 {
					d[i] = 0
				} else {
					d[i] = gs[i] * (bs[i] * d[i])
				}
			}
			ga = tensor.SumTo(r, a.Shape())
		}
		if needs(b) {
			ae, be := tensor.Expand(a, shape...), tensor.Expand(b, shape...)
			r := tensor.Log(ae)
			d, gs, as, bs, ys := r.F32(), g[0].F32(), ae.F32(), be.F32(), out.F32()
			for i := range d {
				if as[i] == 0 && bs[i] >= 0 {
					d[i] = 0
				} else {
					d[i] = gs[i] * (ys[i] * d[i])
				}
			}
			gb = tensor.SumTo(r, b.Shape())
		}
		return Ts(ga, gb)
	})
}

// PowScalar returns x**p elementwise (torch.pow with a number exponent).
// The gradient is g*p*x**(p-1), and 0 everywhere when p == 0.
func PowScalar(x *tensor.Tensor, p float32) *tensor.Tensor {
	out := tensor.PowScalar(x, p)
	return Apply("PowScalar", ScalarAttrs{p}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		if p == 0 {
			return Ts(tensor.Zeros(x.Shape()...))
		}
		r := tensor.PowScalar(x, p-1)
		return Ts(ewGrad(g[0], r, func(g, r float32) float32 { return g * (p * r) }))
	})
}

// AddScalar returns x + s.
func AddScalar(x *tensor.Tensor, s float32) *tensor.Tensor {
	out := tensor.AddScalar(x, s)
	return Apply("AddScalar", ScalarAttrs{s}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(g[0])
	})
}

// MulScalar returns x * s.
func MulScalar(x *tensor.Tensor, s float32) *tensor.Tensor {
	out := tensor.MulScalar(x, s)
	return Apply("MulScalar", ScalarAttrs{s}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.MulScalar(g[0], s))
	})
}

// Neg returns -x.
func Neg(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Neg(x)
	return Apply("Neg", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Neg(g[0]))
	})
}

// Abs returns |x|; its gradient is g*sign(x), 0 at x == 0 as in PyTorch.
func Abs(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Abs(x)
	return Apply("Abs", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			switch {
			case x > 0:
				return g
			case x < 0:
				return -g
			}
			return 0
		}))
	})
}

// Exp returns e**x; its gradient is g*exp(x).
func Exp(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Exp(x)
	return Apply("Exp", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Mul(g[0], out))
	})
}

// Log returns the natural logarithm; its gradient is g/x.
func Log(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Log(x)
	return Apply("Log", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(tensor.Div(g[0], x))
	})
}

// Sqrt returns the square root; its gradient is g/(2*sqrt(x)).
func Sqrt(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Sqrt(x)
	return Apply("Sqrt", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], out, func(g, y float32) float32 { return g / (2 * y) }))
	})
}

// Rsqrt returns 1/sqrt(x); its gradient is -0.5*g*rsqrt(x)**3.
func Rsqrt(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Rsqrt(x)
	return Apply("Rsqrt", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], out, func(g, y float32) float32 { return -0.5 * g * (y * y * y) }))
	})
}

// Reciprocal returns 1/x; its gradient is -g/x**2 (as -g*y*y).
func Reciprocal(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Reciprocal(x)
	return Apply("Reciprocal", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], out, func(g, y float32) float32 { return -g * (y * y) }))
	})
}

// ewMaxMinGrad routes g to a where keep(a, b), halves it on ties, as
// PyTorch's maximum/minimum backward does.
func ewMaxMinGrad(g, a, b *tensor.Tensor, shape []int, forA bool, greater bool) *tensor.Tensor {
	ae, be := tensor.Expand(a, shape...), tensor.Expand(b, shape...)
	as, bs := ae.F32(), be.F32()
	out := tensor.New(tensor.Float32, shape...)
	d, gs := out.F32(), g.F32()
	for i := range d {
		x, y := as[i], bs[i]
		if !forA {
			x, y = y, x
		}
		switch {
		case x == y:
			d[i] = gs[i] / 2
		case (greater && x > y) || (!greater && x < y):
			d[i] = gs[i]
		}
	}
	return out
}

// Maximum returns the elementwise maximum with broadcasting
// (torch.maximum). The gradient goes to the larger operand, split in
// halves on ties.
func Maximum(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Maximum(a, b)
	return Apply("Maximum", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		if needs(a) {
			ga = tensor.SumTo(ewMaxMinGrad(g[0], a, b, out.Shape(), true, true), a.Shape())
		}
		if needs(b) {
			gb = tensor.SumTo(ewMaxMinGrad(g[0], a, b, out.Shape(), false, true), b.Shape())
		}
		return Ts(ga, gb)
	})
}

// Minimum returns the elementwise minimum with broadcasting
// (torch.minimum); gradients as for Maximum.
func Minimum(a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Minimum(a, b)
	return Apply("Minimum", nil, Ts(a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		if needs(a) {
			ga = tensor.SumTo(ewMaxMinGrad(g[0], a, b, out.Shape(), true, false), a.Shape())
		}
		if needs(b) {
			gb = tensor.SumTo(ewMaxMinGrad(g[0], a, b, out.Shape(), false, false), b.Shape())
		}
		return Ts(ga, gb)
	})
}

// Where returns cond ? a : b elementwise with broadcasting (torch.where).
// cond is a Bool tensor and receives no gradient; a gets g where cond
// holds, b where it does not.
func Where(cond, a, b *tensor.Tensor) *tensor.Tensor {
	out := tensor.Where(cond, a, b)
	return Apply("Where", nil, Ts(cond, a, b), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		var ga, gb *tensor.Tensor
		zero := tensor.Scalar(0)
		if needs(a) {
			ga = tensor.SumTo(tensor.Where(cond, g[0], zero), a.Shape())
		}
		if needs(b) {
			gb = tensor.SumTo(tensor.Where(cond, zero, g[0]), b.Shape())
		}
		return Ts(nil, ga, gb)
	})
}

// Clamp limits x to [lo, hi] (torch.clamp). As in PyTorch the gradient
// passes where lo <= x <= hi, bounds included, and is 0 elsewhere.
func Clamp(x *tensor.Tensor, lo, hi float32) *tensor.Tensor {
	out := tensor.Clamp(x, lo, hi)
	return Apply("Clamp", ClampAttrs{lo, hi}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			if x >= lo && x <= hi {
				return g
			}
			return 0
		}))
	})
}
