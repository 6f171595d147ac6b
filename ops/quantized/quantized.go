// Package quantized holds quanta's quantized operations on quantized
// tensors, in the manner of torch.ops.quantized and
// torch.ao.nn.quantized.functional: elementwise add and mul with their own
// output qparams (optionally with a fused ReLU), cat, activations through
// exact 256-entry lookup tables, max/average/adaptive pooling, nearest and
// bilinear upsampling, shape ops that pass qparams through, layer norm and
// softmax with float internals, and quantized ConvTranspose2d.
//
// Activations are NCHW quint8 or qint8 tensors with per-tensor qparams.
// Every op's integer result is defined by a scalar formula over
// package qmath (quantize: saturate(roundHalfEven(x/scale)+zp); dequantize:
// float32(q-zp)*scale), stated in its doc comment; most are the reference
// quantized model (dequantize, float32 op, quantize) exactly, and the
// tests prove it. Fast kernels (package qelem, qconv) equal their
// references bit for bit on every CPU and for every thread count.
//
// Ops return an error for inputs they cannot take (a float tensor,
// per-channel activations, mismatched shapes or dtypes, a non-positive
// output scale); they never panic on bad input. Quantized ops are
// inference ops: they record no autograd and no trace.
package quantized

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/tensor"
)

// qinfo is a per-tensor 8-bit tensor's quantization.
type qinfo struct {
	dtype  tensor.DType
	scale  float32
	zp     int32
	lo, hi int32 // the dtype's full range
}

func dtypeRange(dt tensor.DType) (lo, hi int32) {
	if dt == tensor.QInt8 {
		return -128, 127
	}
	return 0, 255
}

// perTensor checks that x is a per-tensor quint8 or qint8 tensor.
func perTensor(op, name string, x *tensor.Tensor) (qinfo, error) {
	if x == nil {
		return qinfo{}, fmt.Errorf("quantized: %s: %s is nil", op, name)
	}
	dt := x.DType()
	if dt != tensor.QUInt8 && dt != tensor.QInt8 {
		return qinfo{}, fmt.Errorf("quantized: %s: %s is %v, want quint8 or qint8", op, name, dt)
	}
	q := x.QParams()
	if q == nil || q.Scheme.PerChannel() || len(q.Scale) != 1 || len(q.ZeroPoint) != 1 {
		return qinfo{}, fmt.Errorf("quantized: %s: %s must have per-tensor qparams", op, name)
	}
	lo, hi := dtypeRange(dt)
	return qinfo{dtype: dt, scale: q.Scale[0], zp: q.ZeroPoint[0], lo: lo, hi: hi}, nil
}

// outInfo checks output qparams for dtype.
func outInfo(op string, dt tensor.DType, scale float32, zp int32) (qinfo, error) {
	lo, hi := dtypeRange(dt)
	if !(scale > 0) || math.IsInf(float64(scale), 0) {
		return qinfo{}, fmt.Errorf("quantized: %s: output scale %g must be positive and finite", op, scale)
	}
	if zp < lo || zp > hi {
		return qinfo{}, fmt.Errorf("quantized: %s: output zero point %d outside %v range %d..%d", op, zp, dt, lo, hi)
	}
	return qinfo{dtype: dt, scale: scale, zp: zp, lo: lo, hi: hi}, nil
}

// newOut returns a zeroed per-tensor quantized tensor with o's qparams.
func newOut(o qinfo, shape []int) *tensor.Tensor {
	t := tensor.New(o.dtype, shape...)
	t.SetQParams(&tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{o.scale}, ZeroPoint: []int32{o.zp},
		QuantMin: o.lo, QuantMax: o.hi})
	return t
}

// bytesOf returns an 8-bit quantized tensor's storage as bytes (int8
// values in two's complement).
func bytesOf(t *tensor.Tensor) []byte {
	if t.DType() == tensor.QUInt8 {
		return t.U8()
	}
	s := t.I8()
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s))
}

// SigmoidQParams returns the output qparams PyTorch fixes for sigmoid,
// hardsigmoid and (through its fixed-qparams observer) softmax, whose
// outputs lie in [0, 1]: scale 1/256 with zero point 0 for quint8 and
// -128 for qint8.
func SigmoidQParams(dtype tensor.DType) (scale float32, zeroPoint int32) {
	if dtype == tensor.QInt8 {
		return 1.0 / 256, -128
	}
	return 1.0 / 256, 0
}

// TanhQParams returns the output qparams PyTorch fixes for tanh, whose
// outputs lie in [-1, 1]: scale 2/256 with zero point 128 for quint8 and 0
// for qint8.
func TanhQParams(dtype tensor.DType) (scale float32, zeroPoint int32) {
	if dtype == tensor.QInt8 {
		return 2.0 / 256, 0
	}
	return 2.0 / 256, 128
}

// dequantizeAll returns the 256 dequantized values of a table's inputs:
// entry b is the value of the input stored as byte b.
func dequantizeAll(in qinfo) []float32 {
	xs := make([]float32, 256)
	for b := range xs {
		q := int32(b)
		if in.dtype == tensor.QInt8 {
			q = int32(int8(b))
		}
		xs[b] = qmath.Dequantize(q, in.zp, in.scale)
	}
	return xs
}
