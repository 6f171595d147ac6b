package ops

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/tensor"
)

// FakeQuantAttrs describe a fake-quantize op for tracing.
type FakeQuantAttrs struct {
	Scale              []float32
	ZeroPoint          []int32
	Axis               int // -1 for per-tensor
	QuantMin, QuantMax int32
}

// fakeQuantValue is PyTorch's fake-quant kernel for one element:
// r = zp + nearbyint(x * invScale) (in float32), out = (clamp(r) - zp) * scale,
// and the straight-through mask qmin <= r <= qmax.
func fakeQuantValue(x, scale, invScale float32, zp, lo, hi int32) (out float32, inside bool) {
	r := float32(float32(zp) + float32(math.RoundToEven(float64(x*invScale))))
	inside = r >= float32(lo) && r <= float32(hi)
	var q int32
	switch {
	case r != r:
		q = zp
		if q < lo {
			q = lo
		} else if q > hi {
			q = hi
		}
	case r < float32(lo):
		q = lo
	case r > float32(hi):
		q = hi
	default:
		q = int32(r)
	}
	return float32(q-zp) * scale, inside
}

// FakeQuantizePerTensor simulates quantization in float
// (torch.fake_quantize_per_tensor_affine): the output is
// (clamp(nearbyint(x*(1/scale)) + zp, qmin, qmax) - zp) * scale, computed as
// PyTorch does (multiplying by the float32 inverse scale). Its gradient is
// the straight-through estimator: the upstream gradient where the unclamped
// value lies in [qmin, qmax], zero elsewhere.
func FakeQuantizePerTensor(x *tensor.Tensor, scale float32, zeroPoint, quantMin, quantMax int32) *tensor.Tensor {
	if quantMin > quantMax {
		panic(fmt.Sprintf("ops: FakeQuantizePerTensor: quant_min %d > quant_max %d", quantMin, quantMax))
	}
	src := x.F32()
	out := tensor.New(tensor.Float32, x.Shape()...)
	dst := out.F32()
	var mask []bool
	if needs(x) {
		mask = make([]bool, len(src))
	}
	inv := 1 / scale
	for i, v := range src {
		var in bool
		dst[i], in = fakeQuantValue(v, scale, inv, zeroPoint, quantMin, quantMax)
		if mask != nil {
			mask[i] = in
		}
	}
	attrs := FakeQuantAttrs{Scale: []float32{scale}, ZeroPoint: []int32{zeroPoint}, Axis: -1, QuantMin: quantMin, QuantMax: quantMax}
	return Apply("FakeQuantize", attrs, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(maskGrad(g[0], mask))
	})
}

// FakeQuantizePerChannel is FakeQuantizePerTensor with one scale and zero
// point per index of axis (torch.fake_quantize_per_channel_affine).
func FakeQuantizePerChannel(x *tensor.Tensor, scales []float32, zeroPoints []int32, axis int, quantMin, quantMax int32) *tensor.Tensor {
	axis = x.Axis(axis)
	nch := x.Dim(axis)
	if len(scales) != nch || len(zeroPoints) != nch {
		panic(fmt.Sprintf("ops: FakeQuantizePerChannel: %d scales, %d zero points for %d channels of %v", len(scales), len(zeroPoints), nch, x.Shape()))
	}
	inner := 1
	for _, d := range x.Shape()[axis+1:] {
		inner *= d
	}
	src := x.F32()
	out := tensor.New(tensor.Float32, x.Shape()...)
	dst := out.F32()
	var mask []bool
	if needs(x) {
		mask = make([]bool, len(src))
	}
	invs := make([]float32, nch)
	for c, s := range scales {
		invs[c] = 1 / s
	}
	for i, v := range src {
		c := (i / inner) % nch
		var in bool
		dst[i], in = fakeQuantValue(v, scales[c], invs[c], zeroPoints[c], quantMin, quantMax)
		if mask != nil {
			mask[i] = in
		}
	}
	attrs := FakeQuantAttrs{Scale: append([]float32(nil), scales...), ZeroPoint: append([]int32(nil), zeroPoints...), Axis: axis, QuantMin: quantMin, QuantMax: quantMax}
	return Apply("FakeQuantize", attrs, Ts(x), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		return Ts(maskGrad(g[0], mask))
	})
}

func maskGrad(g *tensor.Tensor, mask []bool) *tensor.Tensor {
	if mask == nil {
		return nil
	}
	out := tensor.New(tensor.Float32, g.Shape()...)
	dst, src := out.F32(), g.F32()
	for i, m := range mask {
		if m {
			dst[i] = src[i]
		}
	}
	return out
}

// FakeQuantizeLearnable is the learnable fake quantization of LSQ
// (torch._fake_quantize_learnable_per_tensor_affine): scale and zeroPoint
// are one-element float32 tensors that receive gradients. The forward pass
// rounds and clamps the zero point, then fake-quantizes as
// FakeQuantizePerTensor. Gradients follow PyTorch: x gets the
// straight-through mask; scale gets (xfq - x)/scale inside the range and
// qmin-zp or qmax-zp outside; the zero point gets -scale outside the range
// and 0 inside; both are multiplied by gradFactor and summed.
func FakeQuantizeLearnable(x, scale, zeroPoint *tensor.Tensor, quantMin, quantMax int32, gradFactor float32) *tensor.Tensor {
	if scale.Numel() != 1 || zeroPoint.Numel() != 1 {
		panic(fmt.Sprintf("ops: FakeQuantizeLearnable: scale %v and zero point %v must have one element", scale.Shape(), zeroPoint.Shape()))
	}
	s := scale.F32()[0]
	zpf := float32(math.RoundToEven(float64(zeroPoint.F32()[0])))
	if zpf < float32(quantMin) {
		zpf = float32(quantMin)
	}
	if zpf > float32(quantMax) {
		zpf = float32(quantMax)
	}
	zp := int32(zpf)
	src := x.F32()
	out := tensor.New(tensor.Float32, x.Shape()...)
	dst := out.F32()
	inv := 1 / s
	for i, v := range src {
		dst[i], _ = fakeQuantValue(v, s, inv, zp, quantMin, quantMax)
	}
	attrs := FakeQuantAttrs{Scale: []float32{s}, ZeroPoint: []int32{zp}, Axis: -1, QuantMin: quantMin, QuantMax: quantMax}
	return Apply("FakeQuantizeLearnable", attrs, Ts(x, scale, zeroPoint), Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		dy := g[0].F32()
		dx := tensor.New(tensor.Float32, x.Shape()...)
		dxs := dx.F32()
		var dScale, dZP float32
		small, big := float32(quantMin)-zpf, float32(quantMax)-zpf
		for i, v := range src {
			xq := float32(zpf + float32(math.RoundToEven(float64(v*inv))))
			if xq >= float32(quantMin) && xq <= float32(quantMax) {
				dxs[i] = dy[i]
				xfq := float32(xq-zpf) * s
				dScale += dy[i] * (xfq - v) * inv * gradFactor
			} else {
				dZP += dy[i] * -1 * s * gradFactor
				if xq < float32(quantMin) {
					dScale += dy[i] * small * gradFactor
				} else {
					dScale += dy[i] * big * gradFactor
				}
			}
		}
		return Ts(dx, tensor.FromFloat32([]float32{dScale}, scale.Shape()...), tensor.FromFloat32([]float32{dZP}, zeroPoint.Shape()...))
	})
}
