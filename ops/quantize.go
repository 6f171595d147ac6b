package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/internal/parallel"
	"github.com/quanta-go/quanta/tensor"
)

// QuantRange returns the full integer range of a quantized dtype.
func QuantRange(dtype tensor.DType) (lo, hi int32) {
	switch dtype {
	case tensor.QUInt8:
		return qmath.Range(false, 8)
	case tensor.QInt8:
		return qmath.Range(true, 8)
	case tensor.QInt32:
		return qmath.Range(true, 32)
	}
	panic(fmt.Sprintf("ops: %v is not a quantized dtype", dtype))
}

// QuantizePerTensor quantizes a float32 tensor (torch.quantize_per_tensor):
// q = saturate(roundHalfEven(x/scale) + zeroPoint) over dtype's full range.
// The division is float32 x/scale (ONNX QuantizeLinear); PyTorch multiplies
// by float32(1/scale), which differs by one step only when x/scale is within
// an ulp of a half.
func QuantizePerTensor(x *tensor.Tensor, scale float32, zeroPoint int32, dtype tensor.DType) *tensor.Tensor {
	lo, hi := QuantRange(dtype)
	if zeroPoint < lo || zeroPoint > hi {
		panic(fmt.Sprintf("ops: QuantizePerTensor: zero point %d outside %v range %d..%d", zeroPoint, dtype, lo, hi))
	}
	q := &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{scale}, ZeroPoint: []int32{zeroPoint}, QuantMin: lo, QuantMax: hi}
	return quantize(x, q, dtype, 0, 1)
}

// QuantizePerChannel quantizes along axis with one scale and zero point per
// channel (torch.quantize_per_channel).
func QuantizePerChannel(x *tensor.Tensor, scales []float32, zeroPoints []int32, axis int, dtype tensor.DType) *tensor.Tensor {
	axis = x.Axis(axis)
	c := x.Dim(axis)
	if len(scales) != c || len(zeroPoints) != c {
		panic(fmt.Sprintf("ops: QuantizePerChannel: %d scales and %d zero points for %d channels (axis %d of %v)", len(scales), len(zeroPoints), c, axis, x.Shape()))
	}
	lo, hi := QuantRange(dtype)
	q := &tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: append([]float32(nil), scales...), ZeroPoint: append([]int32(nil), zeroPoints...), Axis: axis, QuantMin: lo, QuantMax: hi}
	inner := 1
	for _, d := range x.Shape()[axis+1:] {
		inner *= d
	}
	return quantize(x, q, dtype, inner, c)
}

// QuantizeWithQParams quantizes x with q (per-tensor or per-channel),
// saturating to q's QuantMin..QuantMax when set, else dtype's full range.
func QuantizeWithQParams(x *tensor.Tensor, q *tensor.QParams, dtype tensor.DType) *tensor.Tensor {
	q = q.Clone()
	if q.QuantMin == 0 && q.QuantMax == 0 {
		q.QuantMin, q.QuantMax = QuantRange(dtype)
	}
	if !q.Scheme.PerChannel() {
		return quantize(x, q, dtype, 0, 1)
	}
	inner := 1
	for _, d := range x.Shape()[q.Axis+1:] {
		inner *= d
	}
	return quantize(x, q, dtype, inner, x.Dim(q.Axis))
}

// quantize with per-element channel index (i/inner)%nch; inner 0 means
// per-tensor.
func quantize(x *tensor.Tensor, q *tensor.QParams, dtype tensor.DType, inner, nch int) *tensor.Tensor {
	src := x.F32()
	n := len(src)
	out := tensor.New(dtype, x.Shape()...)
	out.SetQParams(q)
	lo, hi := q.QuantMin, q.QuantMax
	if inner == 0 && fitsByte(dtype, lo, hi, q.ZeroPoint[0]) {
		// Per tensor into 8 bits: the vectorized kernel (bit-identical).
		if dtype == tensor.QUInt8 {
			qelem.Quantize(out.U8(), src, q.Scale[0], q.ZeroPoint[0], lo, hi)
		} else {
			qelem.Quantize(out.I8(), src, q.Scale[0], q.ZeroPoint[0], lo, hi)
		}
		return out
	}
	ch := func(i int) int {
		if inner == 0 {
			return 0
		}
		return (i / inner) % nch
	}
	switch dtype {
	case tensor.QUInt8:
		dst := out.U8()
		parallel.For(n, 1<<14, func(s, e int) {
			for i := s; i < e; i++ {
				c := ch(i)
				dst[i] = uint8(qmath.Quantize(src[i], q.Scale[c], q.ZeroPoint[c], lo, hi))
			}
		})
	case tensor.QInt8:
		dst := out.I8()
		parallel.For(n, 1<<14, func(s, e int) {
			for i := s; i < e; i++ {
				c := ch(i)
				dst[i] = int8(qmath.Quantize(src[i], q.Scale[c], q.ZeroPoint[c], lo, hi))
			}
		})
	case tensor.QInt32:
		dst := out.I32()
		parallel.For(n, 1<<14, func(s, e int) {
			for i := s; i < e; i++ {
				c := ch(i)
				dst[i] = qmath.Quantize(src[i], q.Scale[c], q.ZeroPoint[c], lo, hi)
			}
		})
	default:
		panic(fmt.Sprintf("ops: quantize: %v is not a quantized dtype", dtype))
	}
	return out
}

// fitsByte reports whether an 8-bit dtype's quantization range lo..hi and
// zero point suit the vectorized kernels.
func fitsByte(dtype tensor.DType, lo, hi, zp int32) bool {
	const limit = 1 << 24
	switch dtype {
	case tensor.QUInt8:
		return 0 <= lo && lo <= hi && hi <= 255 && -limit <= zp && zp <= limit
	case tensor.QInt8:
		return -128 <= lo && lo <= hi && hi <= 127 && -limit <= zp && zp <= limit
	}
	return false
}

// Dequantize maps a quantized tensor back to float32:
// x = float32(q - zeroPoint) * scale, per tensor or per channel; for
// float zero points (per_channel_affine_float_qparams) x = (q - zp) * scale
// in float32.
func Dequantize(q *tensor.Tensor) *tensor.Tensor {
	qp := q.QParams()
	if qp == nil || !q.DType().IsQuantized() {
		panic(fmt.Sprintf("ops: Dequantize: %v tensor %v is not quantized", q.DType(), q.Shape()))
	}
	out := tensor.New(tensor.Float32, q.Shape()...)
	dst := out.F32()
	inner, nch := 0, 1
	if qp.Scheme.PerChannel() {
		nch = q.Dim(qp.Axis)
		inner = 1
		for _, d := range q.Shape()[qp.Axis+1:] {
			inner *= d
		}
	}
	if !qp.Scheme.PerChannel() {
		// Per tensor from 8 bits: the vectorized kernel (bit-identical).
		switch q.DType() {
		case tensor.QUInt8:
			qelem.Dequantize(dst, q.U8(), qp.Scale[0], qp.ZeroPoint[0])
			return out
		case tensor.QInt8:
			qelem.Dequantize(dst, q.I8(), qp.Scale[0], qp.ZeroPoint[0])
			return out
		}
	}
	val := intReader(q)
	floatZP := qp.Scheme == tensor.PerChannelAffineFloatQParams
	parallel.For(len(dst), 1<<14, func(s, e int) {
		for i := s; i < e; i++ {
			c := 0
			if inner > 0 {
				c = (i / inner) % nch
			}
			if floatZP {
				dst[i] = float32(float32(val(i))-qp.ZeroPointF[c]) * qp.Scale[c]
			} else {
				dst[i] = qmath.Dequantize(val(i), qp.ZeroPoint[c], qp.Scale[c])
			}
		}
	})
	return out
}

func intReader(q *tensor.Tensor) func(i int) int32 {
	switch q.DType().Storage() {
	case tensor.Uint8:
		d := q.U8()
		return func(i int) int32 { return int32(d[i]) }
	case tensor.Int8:
		d := q.I8()
		return func(i int) int32 { return int32(d[i]) }
	case tensor.Int32:
		d := q.I32()
		return func(i int) int32 { return d[i] }
	}
	panic(fmt.Sprintf("ops: %v has no integer storage", q.DType()))
}

// IntRepr returns the integer values of a quantized tensor as a plain
// uint8, int8 or int32 tensor (Tensor.int_repr), sharing no storage.
func IntRepr(q *tensor.Tensor) *tensor.Tensor {
	switch q.DType() {
	case tensor.QUInt8:
		return tensor.FromUint8(append([]uint8(nil), q.U8()...), q.Shape()...)
	case tensor.QInt8:
		return tensor.FromInt8(append([]int8(nil), q.I8()...), q.Shape()...)
	case tensor.QInt32:
		return tensor.FromInt32(append([]int32(nil), q.I32()...), q.Shape()...)
	}
	panic(fmt.Sprintf("ops: IntRepr: %v tensor is not quantized", q.DType()))
}
