package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/tensor"
)

// Add returns a + b quantized to (scale, zeroPoint)
// (torch.ops.quantized.add): elementwise, with NumPy broadcasting,
//
//	y = qmath.Quantize(float32(float32(qmath.Dequantize(a, za, sa)) + float32(qmath.Dequantize(b, zb, sb))), scale, zeroPoint, qmin, qmax)
//
// which is the reference quantized model (dequantize, float32 add,
// quantize) exactly. a and b must have the same dtype (quint8 or qint8),
// which is the output's.
func Add(a, b *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return binary("Add", false, false, a, b, scale, zeroPoint)
}

// AddReLU is Add followed by ReLU (torch.ops.quantized.add_relu): the
// result is clamped below at zeroPoint, which equals quantizing
// relu(a + b) since quantization is monotonic.
func AddReLU(a, b *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return binary("AddReLU", false, true, a, b, scale, zeroPoint)
}

// Mul returns a * b quantized to (scale, zeroPoint) (torch.ops.quantized.mul):
//
//	y = qmath.Quantize(float32(float32(qmath.Dequantize(a, za, sa)) * float32(qmath.Dequantize(b, zb, sb))), scale, zeroPoint, qmin, qmax)
//
// the reference quantized model exactly. (PyTorch's kernel instead
// multiplies the centred integers and requantizes with
// float(sa*sb)*float(1/scale); the two differ by at most one step.)
func Mul(a, b *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return binary("Mul", true, false, a, b, scale, zeroPoint)
}

// MulReLU is Mul followed by ReLU (torch.ops.quantized.mul_relu).
func MulReLU(a, b *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return binary("MulReLU", true, true, a, b, scale, zeroPoint)
}

func binary(op string, mul, relu bool, a, b *tensor.Tensor, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	qa, err := perTensor(op, "a", a)
	if err != nil {
		return nil, err
	}
	qb, err := perTensor(op, "b", b)
	if err != nil {
		return nil, err
	}
	if qa.dtype != qb.dtype {
		return nil, fmt.Errorf("quantized: %s: a is %v and b is %v", op, qa.dtype, qb.dtype)
	}
	o, err := outInfo(op, qa.dtype, scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	shape, err := tensor.BroadcastShapes(a.Shape(), b.Shape())
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", op, err)
	}
	if !tensor.SameShape(a.Shape(), shape) {
		a = tensor.Expand(a, shape...)
	}
	if !tensor.SameShape(b.Shape(), shape) {
		b = tensor.Expand(b, shape...)
	}
	p := &qelem.BinaryParams{ScaleA: qa.scale, ScaleB: qb.scale, ScaleY: o.scale, ZeroA: qa.zp, ZeroB: qb.zp, ZeroY: o.zp, Min: o.lo, Max: o.hi}
	if relu {
		p.Min = o.zp
	}
	y := newOut(o, shape)
	switch {
	case o.dtype == tensor.QUInt8 && mul:
		qelem.Mul(y.U8(), a.U8(), b.U8(), p)
	case o.dtype == tensor.QUInt8:
		qelem.Add(y.U8(), a.U8(), b.U8(), p)
	case mul:
		qelem.Mul(y.I8(), a.I8(), b.I8(), p)
	default:
		qelem.Add(y.I8(), a.I8(), b.I8(), p)
	}
	return y, nil
}
