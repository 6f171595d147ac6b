package quantized

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// dequantized returns x's values as float32 (qmath.Dequantize each).
func dequantized(x *tensor.Tensor, in qinfo) []float32 {
	f := make([]float32, x.Numel())
	if in.dtype == tensor.QUInt8 {
		qelem.Dequantize(f, x.U8(), in.scale, in.zp)
	} else {
		qelem.Dequantize(f, x.I8(), in.scale, in.zp)
	}
	return f
}

// quantizedFrom returns f quantized to o with shape.
func quantizedFrom(f []float32, o qinfo, shape []int) *tensor.Tensor {
	y := newOut(o, shape)
	if o.dtype == tensor.QUInt8 {
		qelem.Quantize(y.U8(), f, o.scale, o.zp, o.lo, o.hi)
	} else {
		qelem.Quantize(y.I8(), f, o.scale, o.zp, o.lo, o.hi)
	}
	return y
}

func floatParam(op, name string, t *tensor.Tensor, shape []int) ([]float32, error) {
	if t == nil {
		return nil, nil
	}
	if t.DType() != tensor.Float32 || !tensor.SameShape(t.Shape(), shape) {
		return nil, fmt.Errorf("quantized: %s: %s is %v%v, want float32%v", op, name, t.DType(), t.Shape(), shape)
	}
	return t.F32(), nil
}

// LayerNorm is torch.ops.quantized.layer_norm: x is dequantized, each
// slice over the trailing normalizedShape dimensions is normalized with
// float64 moments (mean, biased variance + eps) and float32 arithmetic,
// as ops.LayerNorm does,
//
//	mean, invstd = float64 moments;  h = float32(float32(v - float32(mean)) * float32(invstd))
//	h = float32(h * weight[j]);  h = float32(h + bias[j])   (when given)
//
// and quantized to (scale, zeroPoint). weight and bias are float32 of
// shape normalizedShape, or nil.
func LayerNorm(x *tensor.Tensor, normalizedShape []int, weight, bias *tensor.Tensor, eps, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	const op = "LayerNorm"
	in, err := perTensor(op, "x", x)
	if err != nil {
		return nil, err
	}
	o, err := outInfo(op, in.dtype, scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	k := len(normalizedShape)
	if k == 0 || k > len(xs) || !tensor.SameShape(xs[len(xs)-k:], normalizedShape) {
		return nil, fmt.Errorf("quantized: %s: normalized shape %v is not a trailing shape of input %v", op, normalizedShape, xs)
	}
	wv, err := floatParam(op, "weight", weight, normalizedShape)
	if err != nil {
		return nil, err
	}
	bv, err := floatParam(op, "bias", bias, normalizedShape)
	if err != nil {
		return nil, err
	}
	d := 1
	for _, v := range normalizedShape {
		d *= v
	}
	f := dequantized(x, in)
	if d > 0 {
		parallel.For(len(f)/d, max(1, 4096/d), func(r0, r1 int) {
			for r := r0; r < r1; r++ {
				layerNormRow(f[r*d:(r+1)*d], wv, bv, eps)
			}
		})
	}
	return quantizedFrom(f, o, xs), nil
}

// layerNormRow normalizes one slice in place.
func layerNormRow(row, w, b []float32, eps float32) {
	var s float64
	for _, v := range row {
		s += float64(v)
	}
	mean := s / float64(len(row))
	var q float64
	for _, v := range row {
		dv := float64(v) - mean
		q += dv * dv
	}
	invstd := 1 / math.Sqrt(q/float64(len(row))+float64(eps))
	m32, is32 := float32(mean), float32(invstd)
	for j, v := range row {
		h := float32(float32(v-m32) * is32)
		if w != nil {
			h = float32(h * w[j])
		}
		if b != nil {
			h = float32(h + b[j])
		}
		row[j] = h
	}
}

// Softmax is torch.ops.quantized.softmax: x is dequantized, softmax is
// taken along dim (negative counts from the end) as tensor.Softmax does
// (max subtracted, exp and sums in float64), and the result quantized to
// (scale, zeroPoint); PyTorch's fixed-qparams configuration uses
// SigmoidQParams.
func Softmax(x *tensor.Tensor, dim int, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	in, err := perTensor("Softmax", "x", x)
	if err != nil {
		return nil, err
	}
	o, err := outInfo("Softmax", in.dtype, scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	n := x.NDim()
	if n == 0 || dim < -n || dim >= n {
		return nil, fmt.Errorf("quantized: Softmax: dimension %d out of range for shape %v", dim, x.Shape())
	}
	f := tensor.Softmax(tensor.FromFloat32(dequantized(x, in), x.Shape()...), dim)
	return quantizedFrom(f.F32(), o, x.Shape()), nil
}
