package quantized

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qconv"
	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// ConvTranspose2dWeight is a quantized ConvTranspose2d's weight and bias,
// prepared once (torch.ops.quantized.conv_transpose2d_prepack).
type ConvTranspose2dWeight struct {
	attrs   ops.ConvTransposeAttrs
	c, outC int
	kh, kw  int
	// wScale and wZero hold one value per output channel.
	wScale []float32
	wZero  []int32
	bias   []float32
	weight *tensor.Tensor
	packed *qconv.TransposePacked
}

// Weight returns the quantized weight the struct was built from.
func (w *ConvTranspose2dWeight) Weight() *tensor.Tensor { return w.weight }

// PackConvTranspose2d prepares a quantized ConvTranspose2d: w is qint8 in
// PyTorch's layout [C_in, C_out/groups, KH, KW], per-tensor or per-channel
// along axis 1 (the output channel within a group: with groups > 1 the
// scale and zero point of entry j serve output channels g*C_out/groups + j
// of every group g), which PyTorch's engines do not support for
// transposed convolutions; bias is float32 [C_out] or nil.
func PackConvTranspose2d(w, bias *tensor.Tensor, attrs ops.ConvTransposeAttrs) (*ConvTranspose2dWeight, error) {
	const op = "PackConvTranspose2d"
	if w == nil || w.DType() != tensor.QInt8 || w.QParams() == nil {
		return nil, fmt.Errorf("quantized: %s: weight must be qint8", op)
	}
	ws := w.Shape()
	if len(ws) != 4 {
		return nil, fmt.Errorf("quantized: %s: weight %v is not [C_in, C_out/groups, KH, KW]", op, ws)
	}
	groups := max(attrs.Groups, 1)
	outC := ws[1] * groups
	q := w.QParams()
	wScale, wZero := make([]float32, outC), make([]int32, outC)
	switch {
	case !q.Scheme.PerChannel() && len(q.Scale) == 1 && len(q.ZeroPoint) == 1:
		for oc := range wScale {
			wScale[oc], wZero[oc] = q.Scale[0], q.ZeroPoint[0]
		}
	case q.Scheme == tensor.PerChannelAffine || q.Scheme == tensor.PerChannelSymmetric:
		if q.Axis != 1 || len(q.Scale) != ws[1] || len(q.ZeroPoint) != ws[1] {
			return nil, fmt.Errorf("quantized: %s: per-channel weight qparams must lie along axis 1 (%d channels), got axis %d with %d", op, ws[1], q.Axis, len(q.Scale))
		}
		for oc := range wScale {
			wScale[oc], wZero[oc] = q.Scale[oc%ws[1]], q.ZeroPoint[oc%ws[1]]
		}
	default:
		return nil, fmt.Errorf("quantized: %s: unsupported weight scheme %v", op, q.Scheme)
	}
	for oc, s := range wScale {
		if !(s > 0) || math.IsInf(float64(s), 0) {
			return nil, fmt.Errorf("quantized: %s: weight scale %g of channel %d must be positive and finite", op, s, oc)
		}
	}
	var bv []float32
	if bias != nil {
		if bias.DType() != tensor.Float32 || !tensor.SameShape(bias.Shape(), []int{outC}) {
			return nil, fmt.Errorf("quantized: %s: bias is %v%v, want float32[%d]", op, bias.DType(), bias.Shape(), outC)
		}
		bv = append([]float32(nil), bias.F32()...)
	}
	g := conv.ConvTranspose2DParams{N: 1, C: ws[0], H: 1, W: 1, OutC: outC, KH: ws[2], KW: ws[3],
		StrideH: attrs.Stride[0], StrideW: attrs.Stride[1], PadH: attrs.Padding[0], PadW: attrs.Padding[1],
		OutPadH: attrs.OutputPadding[0], OutPadW: attrs.OutputPadding[1], DilH: attrs.Dilation[0], DilW: attrs.Dilation[1], Groups: attrs.Groups}
	// Validate the attributes on a 1x1 input (padding may then leave no
	// output; the real input size is checked per call).
	check := g
	check.H, check.W = 1+2*(g.PadH+g.KH), 1+2*(g.PadW+g.KW)
	if err := check.Validate(); err != nil {
		return nil, fmt.Errorf("quantized: %s: weight %v, %+v: %w", op, ws, attrs, err)
	}
	pk, err := qconv.PackTranspose(qconv.TransposeParams{ConvTranspose2DParams: check, WeightZeroPoints: wZero}, w.I8())
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", op, err)
	}
	return &ConvTranspose2dWeight{attrs: attrs, c: ws[0], outC: outC, kh: ws[2], kw: ws[3], wScale: wScale, wZero: wZero,
		bias: bv, weight: w, packed: pk}, nil
}

// ConvTranspose2d is torch.ops.quantized.conv_transpose2d: x is a
// per-tensor quint8 or qint8 [N, C_in, H, W] (or [C_in, H, W]); the result
// has x's dtype and qparams (scale, zeroPoint). With integer accumulation
// over the taps that reach each output,
//
//	acc = qb[oc] + sum (x - zx) * (w - zw[oc])
//	qb[oc] = qmath.Quantize(bias[oc], float32(sx*sw[oc]), 0, int32 range)
//	y = saturate(roundHalfEven(float32(acc) * M[oc]) + zeroPoint),  M[oc] = qmath.Multiplier(sx, sw[oc], scale)
//
// DESIGN's requantization (PyTorch's qnnpack numerics for linear and
// conv), with per-channel weights allowed.
func ConvTranspose2d(x *tensor.Tensor, w *ConvTranspose2dWeight, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return convTranspose("ConvTranspose2d", x, w, scale, zeroPoint, false)
}

// ConvTranspose2dReLU is ConvTranspose2d with a fused ReLU: outputs are
// clamped below at zeroPoint.
func ConvTranspose2dReLU(x *tensor.Tensor, w *ConvTranspose2dWeight, scale float32, zeroPoint int32) (*tensor.Tensor, error) {
	return convTranspose("ConvTranspose2dReLU", x, w, scale, zeroPoint, true)
}

func convTranspose(op string, x *tensor.Tensor, w *ConvTranspose2dWeight, scale float32, zeroPoint int32, relu bool) (*tensor.Tensor, error) {
	in, err := perTensor(op, "x", x)
	if err != nil {
		return nil, err
	}
	if w == nil {
		return nil, fmt.Errorf("quantized: %s: weight is nil", op)
	}
	o, err := outInfo(op, in.dtype, scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	n, c, h, wd, err := nchw(op, x)
	if err != nil {
		return nil, err
	}
	if c != w.c {
		return nil, fmt.Errorf("quantized: %s: input %v has %d channels, weight wants %d", op, x.Shape(), c, w.c)
	}
	xb := bytesOf(x)
	za := in.zp
	if in.dtype == tensor.QInt8 {
		// (x - zx) is unchanged by shifting both by 128.
		u := make([]uint8, len(xb))
		for i, v := range xb {
			u[i] = v ^ 0x80
		}
		xb, za = u, za+128
	}
	if za < 0 || za > 255 {
		return nil, fmt.Errorf("quantized: %s: input zero point %d outside the %v range", op, in.zp, in.dtype)
	}
	pk, err := w.packed.ForInput(n, h, wd, za)
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: input %v: %w", op, x.Shape(), err)
	}
	p := pk.Params()
	r := &qgemm.Requant{Multiplier: make([]float32, w.outC), ZeroPoint: o.zp, Min: o.lo, Max: o.hi}
	if relu {
		r.Min = o.zp
	}
	if w.bias != nil {
		r.Bias = make([]int32, w.outC)
	}
	for oc := range r.Multiplier {
		r.Multiplier[oc] = qmath.Multiplier(in.scale, w.wScale[oc], o.scale)
		if w.bias != nil {
			r.Bias[oc] = qmath.Quantize(w.bias[oc], float32(in.scale*w.wScale[oc]), 0, math.MinInt32, math.MaxInt32)
		}
	}
	shape := []int{n, w.outC, p.OutH(), p.OutW()}
	if x.NDim() == 3 {
		shape = shape[1:]
	}
	y := newOut(o, shape)
	qconv.ConvTranspose2D(pk, xb, r, bytesOf(y))
	return y, nil
}
