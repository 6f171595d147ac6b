package quantized

import (
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// unary applies the 256-entry table of f, a float32 function on
// tensors, from x's qparams to out's:
//
//	table[q] = qmath.Quantize(f(qmath.Dequantize(q, zx, sx)), s, zp, qmin, qmax)
//
// so the op is the reference quantized model (dequantize, f, quantize)
// exactly, for every input.
func unary(op string, x *tensor.Tensor, out func(in qinfo) (float32, int32), f func(*tensor.Tensor) *tensor.Tensor) (*tensor.Tensor, error) {
	in, err := perTensor(op, "x", x)
	if err != nil {
		return nil, err
	}
	s, z := out(in)
	o, err := outInfo(op, in.dtype, s, z)
	if err != nil {
		return nil, err
	}
	ys := f(tensor.FromFloat32(dequantizeAll(in))).F32()
	var t qelem.Table
	for b, v := range ys {
		t[b] = byte(qmath.Quantize(v, o.scale, o.zp, o.lo, o.hi))
	}
	return lookup(x, o, &t), nil
}

// lookup maps x through t into a new tensor with o's qparams.
func lookup(x *tensor.Tensor, o qinfo, t *qelem.Table) *tensor.Tensor {
	y := newOut(o, x.Shape())
	if o.dtype == tensor.QUInt8 {
		qelem.Lookup(y.U8(), x.U8(), t)
	} else {
		qelem.Lookup(y.I8(), x.I8(), t)
	}
	return y
}

func sameAsInput(in qinfo) (float32, int32) { return in.scale, in.zp }

func given(scale float32, zp int32) func(qinfo) (float32, int32) {
	return func(qinfo) (float32, int32) { return scale, zp }
}

// ReLU returns max(q, zp) with x's qparams (torch.relu on a quantized
// tensor). It equals the reference model quantize(relu(dequantize(x)))
// whenever quantize(dequantize(q)) = q, that is for every scale that is
// not subnormal or near overflow.
func ReLU(x *tensor.Tensor) (*tensor.Tensor, error) {
	in, err := perTensor("ReLU", "x", x)
	if err != nil {
		return nil, err
	}
	zp := qmath.Saturate(int64(in.zp), in.lo, in.hi)
	var t *qelem.Table
	if in.dtype == tensor.QUInt8 {
		t = qelem.NewTable[uint8](func(q int32) int32 { return max(q, zp) })
	} else {
		t = qelem.NewTable[int8](func(q int32) int32 { return max(q, zp) })
	}
	return lookup(x, in, t), nil
}

// ReLU6 returns quantize(min(max(dequantize(x), 0), 6)) with x's qparams
// (torch.nn.functional.relu6 on a quantized tensor), by table.
func ReLU6(x *tensor.Tensor) (*tensor.Tensor, error) {
	return Hardtanh(x, 0, 6)
}

// Hardtanh returns quantize(min(max(dequantize(x), lo), hi)) with x's
// qparams (torch.nn.functional.hardtanh on a quantized tensor), by table.
func Hardtanh(x *tensor.Tensor, lo, hi float32) (*tensor.Tensor, error) {
	return unary("Hardtanh", x, sameAsInput, func(t *tensor.Tensor) *tensor.Tensor { return tensor.Clamp(t, lo, hi) })
}

// LeakyReLU returns quantize(leaky_relu(dequantize(x), slope)) with output
// qparams (scale, zeroPoint) (torch.ao.nn.quantized.LeakyReLU), by table;
// leaky_relu(v) = v for v > 0, else float32(v * slope).
func LeakyReLU(x *tensor.Tensor, slope, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return unary("LeakyReLU", x, given(scale, zeroPoint), func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.Map(t, func(v float32) float32 {
			if v > 0 {
				return v
			}
			return v * slope
		})
	})
}

// ELU returns quantize(elu(dequantize(x), alpha)) with output qparams
// (scale, zeroPoint) (torch.ao.nn.quantized.ELU), by table;
// elu(v) = v for v > 0, else float32(alpha * expm1(v)) in float64.
func ELU(x *tensor.Tensor, alpha, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return unary("ELU", x, given(scale, zeroPoint), func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.Map(t, func(v float32) float32 {
			if v > 0 {
				return v
			}
			return float32(float64(alpha) * math.Expm1(float64(v)))
		})
	})
}

// GELU constants, as PyTorch (and package ops) define them.
const (
	geluKappa = 0.044715
	geluBeta  = math.Sqrt2 * (2 / math.SqrtPi) * 0.5 // sqrt(2/pi)
)

// GELU returns quantize(gelu(dequantize(x))) with output qparams (scale,
// zeroPoint), by table; gelu is ops.GELU's: 0.5*v*(1+erf(v/sqrt(2))), or
// with approximate PyTorch's tanh form, in float64 rounded once.
// (PyTorch's F.gelu on a quantized tensor keeps x's qparams; pass them.)
func GELU(x *tensor.Tensor, approximate bool, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return unary("GELU", x, given(scale, zeroPoint), func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.Map(t, func(v float32) float32 {
			x := float64(v)
			if approximate {
				return float32(0.5 * x * (1 + math.Tanh(geluBeta*(x+geluKappa*x*x*x))))
			}
			return float32(0.5 * x * (1 + math.Erf(x/math.Sqrt2)))
		})
	})
}

// Hardswish returns quantize(hardswish(dequantize(x))) with output qparams
// (scale, zeroPoint) (torch.ao.nn.quantized.Hardswish), by table;
// hardswish(v) = v*min(max(v+3, 0), 6)/6 in float32, PyTorch's order.
func Hardswish(x *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return unary("Hardswish", x, given(scale, zeroPoint), func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.Map(t, func(v float32) float32 { return v * min(max(v+3, 0), 6) / 6 })
	})
}

// Hardsigmoid returns quantize(min(max(v+3, 0), 6)/6) of the dequantized
// input with PyTorch's fixed output qparams (SigmoidQParams), by table.
func Hardsigmoid(x *tensor.Tensor) (*tensor.Tensor, error) {
	return unary("Hardsigmoid", x, fixedSigmoid, func(t *tensor.Tensor) *tensor.Tensor {
		return tensor.Map(t, func(v float32) float32 { return min(max(v+3, 0), 6) / 6 })
	})
}

func fixedSigmoid(in qinfo) (float32, int32) { return SigmoidQParams(in.dtype) }

// Sigmoid returns quantize(1/(1+exp(-v))) of the dequantized input
// (tensor.Sigmoid, float64 inside) with PyTorch's fixed output qparams
// (SigmoidQParams), by table.
func Sigmoid(x *tensor.Tensor) (*tensor.Tensor, error) {
	return unary("Sigmoid", x, fixedSigmoid, tensor.Sigmoid)
}

// Tanh returns quantize(tanh(v)) of the dequantized input (tensor.Tanh)
// with PyTorch's fixed output qparams (TanhQParams), by table.
func Tanh(x *tensor.Tensor) (*tensor.Tensor, error) {
	return unary("Tanh", x, func(in qinfo) (float32, int32) { return TanhQParams(in.dtype) }, tensor.Tanh)
}
