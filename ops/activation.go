package ops

import (
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// LeakyReLUAttrs is LeakyReLU's negative slope, for tracing.
type LeakyReLUAttrs struct{ Slope float32 }

// ELUAttrs is ELU's alpha, for tracing.
type ELUAttrs struct{ Alpha float32 }

// GELUAttrs records which GELU form was used, for tracing.
type GELUAttrs struct{ Approximate bool }

// SoftplusAttrs are Softplus's beta and threshold, for tracing.
type SoftplusAttrs struct{ Beta, Threshold float32 }

// ReLU returns max(x, 0) (torch.relu). Its gradient is g where the output
// is positive and 0 elsewhere, so relu'(0) = 0.
func ReLU(x *tensor.Tensor) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("ReLU", nil, x)
	}
	out := tensor.ReLU(x)
	return Apply("ReLU", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		gs, ys := g[0].F32(), out.F32()
		r := tensor.New(tensor.Float32, x.Shape()...)
		d := r.F32()
		gs, ys = gs[:len(d)], ys[:len(d)]
		for i := range d {
			if !(ys[i] <= 0) {
				d[i] = gs[i]
			}
		}
		return Ts(r)
	})
}

// hardtanh is Hardtanh under the given op name.
func hardtanh(name string, x *tensor.Tensor, lo, hi float32) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp(name, ClampAttrs{lo, hi}, x)
	}
	out := tensor.Clamp(x, lo, hi)
	return Apply(name, ClampAttrs{lo, hi}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			if x <= lo || x >= hi {
				return 0
			}
			return g
		}))
	})
}

// Hardtanh clamps x to [lo, hi] (torch.nn.functional.hardtanh). Unlike
// Clamp, the gradient is 0 at the bounds themselves: g only where
// lo < x < hi, as in PyTorch.
func Hardtanh(x *tensor.Tensor, lo, hi float32) *tensor.Tensor {
	return hardtanh("Hardtanh", x, lo, hi)
}

// ReLU6 returns min(max(x, 0), 6), Hardtanh(x, 0, 6): the gradient is 0 at
// 0 and at 6.
func ReLU6(x *tensor.Tensor) *tensor.Tensor { return hardtanh("ReLU6", x, 0, 6) }

// LeakyReLU returns x for x > 0 and slope*x otherwise
// (torch.nn.functional.leaky_relu; PyTorch's default slope is 0.01). The
// gradient at 0 is slope, as in PyTorch.
func LeakyReLU(x *tensor.Tensor, slope float32) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("LeakyReLU", LeakyReLUAttrs{slope}, x)
	}
	out := tensor.Map(x, func(v float32) float32 {
		if v > 0 {
			return v
		}
		return v * slope
	})
	return Apply("LeakyReLU", LeakyReLUAttrs{slope}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			if x > 0 {
				return g
			}
			return g * slope
		}))
	})
}

// ELU returns x for x > 0 and alpha*(exp(x)-1) otherwise
// (torch.nn.functional.elu). The gradient for x <= 0 is g*alpha*exp(x), so
// it is alpha at 0, as in PyTorch.
func ELU(x *tensor.Tensor, alpha float32) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("ELU", ELUAttrs{alpha}, x)
	}
	out := tensor.Map(x, func(v float32) float32 {
		if v > 0 {
			return v
		}
		return float32(float64(alpha) * math.Expm1(float64(v)))
	})
	return Apply("ELU", ELUAttrs{alpha}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			if x > 0 {
				return g
			}
			return float32(float64(g) * float64(alpha) * math.Exp(float64(x)))
		}))
	})
}

// Hardswish returns x*relu6(x+3)/6 (torch.nn.functional.hardswish),
// computed in float32 in PyTorch's order. Its gradient is PyTorch's: 0 for
// x < -3, g*(x/3 + 0.5) = g*(2x+3)/6 for -3 <= x <= 3, and g for x > 3.
func Hardswish(x *tensor.Tensor) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("Hardswish", nil, x)
	}
	out := tensor.Map(x, func(v float32) float32 {
		return v * min(max(v+3, 0), 6) / 6
	})
	return Apply("Hardswish", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			switch {
			case x < -3:
				return 0
			case x <= 3:
				return g * (x/3 + 0.5)
			}
			return g
		}))
	})
}

// Hardsigmoid returns relu6(x+3)/6 (torch.nn.functional.hardsigmoid). Its
// gradient is g/6 on the open interval -3 < x < 3 and 0 elsewhere.
func Hardsigmoid(x *tensor.Tensor) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("Hardsigmoid", nil, x)
	}
	out := tensor.Map(x, func(v float32) float32 { return min(max(v+3, 0), 6) / 6 })
	return Apply("Hardsigmoid", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			if x > -3 && x < 3 {
				return g * (1.0 / 6)
			}
			return 0
		}))
	})
}

// Sigmoid returns 1/(1+exp(-x)); its gradient is g*(1-y)*y.
func Sigmoid(x *tensor.Tensor) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("Sigmoid", nil, x)
	}
	out := tensor.Sigmoid(x)
	return Apply("Sigmoid", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], out, func(g, y float32) float32 { return g * (1 - y) * y }))
	})
}

// Tanh returns tanh(x); its gradient is g*(1-y*y).
func Tanh(x *tensor.Tensor) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("Tanh", nil, x)
	}
	out := tensor.Tanh(x)
	return Apply("Tanh", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], out, func(g, y float32) float32 { return g * (1 - y*y) }))
	})
}

// Erf returns the error function; its gradient is g*2/sqrt(pi)*exp(-x*x).
func Erf(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Erf(x)
	return Apply("Erf", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, x float32) float32 {
			v := float64(x)
			return float32(float64(g) * 2 / math.SqrtPi * math.Exp(-v*v))
		}))
	})
}

// GELU constants, as PyTorch defines them.
const (
	geluKappa = 0.044715
	geluBeta  = math.Sqrt2 * (2 / math.SqrtPi) * 0.5 // sqrt(2/pi)
)

// GELU returns the Gaussian error linear unit (torch.nn.functional.gelu).
// By default it is the exact form 0.5*x*(1+erf(x/sqrt(2))); with
// approximate it is PyTorch's "tanh" form
// 0.5*x*(1+tanh(sqrt(2/pi)*(x+0.044715*x**3))). Values and gradients are
// computed in float64 and rounded once.
func GELU(x *tensor.Tensor, approximate bool) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("GELU", GELUAttrs{approximate}, x)
	}
	var out *tensor.Tensor
	if approximate {
		out = tensor.Map(x, func(v float32) float32 {
			x := float64(v)
			return float32(0.5 * x * (1 + math.Tanh(geluBeta*(x+geluKappa*x*x*x))))
		})
	} else {
		out = tensor.Map(x, func(v float32) float32 {
			x := float64(v)
			return float32(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
		})
	}
	return Apply("GELU", GELUAttrs{approximate}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		if approximate {
			return Ts(ewGrad(g[0], x, func(g, v float32) float32 {
				x := float64(v)
				t := math.Tanh(geluBeta * (x + geluKappa*x*x*x))
				left := 0.5 * (1 + t)
				right := 0.5 * x * (1 - t*t) * geluBeta * (1 + 3*geluKappa*x*x)
				return float32(float64(g) * (left + right))
			}))
		}
		return Ts(ewGrad(g[0], x, func(g, v float32) float32 {
			x := float64(v)
			cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
			pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
			return float32(float64(g) * (cdf + x*pdf))
		}))
	})
}

// SiLU returns x*sigmoid(x) (torch.nn.functional.silu, also called swish).
// Its gradient is g*s*(1+x*(1-s)) with s = sigmoid(x).
func SiLU(x *tensor.Tensor) *tensor.Tensor {
	out := tensor.Map(x, func(v float32) float32 {
		return float32(float64(v) / (1 + math.Exp(-float64(v))))
	})
	return Apply("SiLU", nil, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, v float32) float32 {
			x := float64(v)
			s := 1 / (1 + math.Exp(-x))
			return float32(float64(g) * s * (1 + x*(1-s)))
		}))
	})
}

// Softplus returns log(1+exp(x)) with PyTorch's defaults beta = 1 and
// threshold = 20 (above the threshold it returns x). See SoftplusWith.
func Softplus(x *tensor.Tensor) *tensor.Tensor { return SoftplusWith(x, 1, 20) }

// SoftplusWith returns log(1+exp(beta*x))/beta, and x itself where
// beta*x > threshold (torch.nn.functional.softplus). Its gradient is
// g*z/(z+1) with z = exp(beta*x), and g above the threshold.
func SoftplusWith(x *tensor.Tensor, beta, threshold float32) *tensor.Tensor {
	out := tensor.Map(x, func(v float32) float32 {
		if v*beta > threshold {
			return v
		}
		return float32(math.Log1p(math.Exp(float64(v)*float64(beta))) / float64(beta))
	})
	return Apply("Softplus", SoftplusAttrs{beta, threshold}, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(ewGrad(g[0], x, func(g, v float32) float32 {
			if v*beta > threshold {
				return g
			}
			z := math.Exp(float64(v) * float64(beta))
			return float32(float64(g) * z / (z + 1))
		}))
	})
}
