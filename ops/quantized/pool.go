package quantized

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/internal/kernels/qelem"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// nchw returns x's [N, C, H, W] sizes, viewing [C, H, W] as N = 1.
func nchw(op string, x *tensor.Tensor) (n, c, h, w int, err error) {
	s := x.Shape()
	switch len(s) {
	case 3:
		return 1, s[0], s[1], s[2], nil
	case 4:
		return s[0], s[1], s[2], s[3], nil
	}
	return 0, 0, 0, 0, fmt.Errorf("quantized: %s: want input [N, C, H, W] or [C, H, W], got %v", op, s)
}

// spatialOut returns x's shape with the last two dimensions replaced.
func spatialOut(x *tensor.Tensor, h, w int) []int {
	s := append([]int(nil), x.Shape()...)
	s[len(s)-2], s[len(s)-1] = h, w
	return s
}

func poolParams(op string, x *tensor.Tensor, a ops.PoolAttrs, avg bool) (pool.Pool2DParams, error) {
	n, c, h, w, err := nchw(op, x)
	if err != nil {
		return pool.Pool2DParams{}, err
	}
	p := pool.Pool2DParams{N: n, C: c, H: h, W: w, KH: a.Kernel[0], KW: a.Kernel[1], StrideH: a.Stride[0], StrideW: a.Stride[1],
		PadH: a.Padding[0], PadW: a.Padding[1], DilH: a.Dilation[0], DilW: a.Dilation[1], CeilMode: a.CeilMode,
		CountIncludePad: a.CountIncludePad && avg}
	err = p.Validate()
	if avg && err == nil {
		err = p.ValidateAvg()
	}
	if err != nil {
		return p, fmt.Errorf("quantized: %s: input %v, %+v: %w", op, x.Shape(), a, err)
	}
	return p, nil
}

// sameRequant is the Requant of an op that keeps its input's qparams.
func sameRequant(in qinfo) *qelem.Requant {
	return &qelem.Requant{InScale: in.scale, InZero: in.zp, OutScale: in.scale, OutZero: in.zp, Min: in.lo, Max: in.hi}
}

// MaxPool2d is torch.nn.functional.max_pool2d on a quantized tensor
// [N, C, H, W] or [C, H, W]: each output is the largest code of its
// (dilated) window, padding excluded; qparams pass through. It equals
// quantizing the float max pooling of the dequantized input.
func MaxPool2d(x *tensor.Tensor, attrs ops.PoolAttrs) (*tensor.Tensor, error) {
	in, err := perTensor("MaxPool2d", "x", x)
	if err != nil {
		return nil, err
	}
	p, err := poolParams("MaxPool2d", x, attrs, false)
	if err != nil {
		return nil, err
	}
	y := tensor.New(in.dtype, spatialOut(x, p.OutH(), p.OutW())...)
	y.SetQParams(x.QParams().Clone())
	if in.dtype == tensor.QUInt8 {
		qelem.MaxPool2D(p, x.U8(), y.U8())
	} else {
		qelem.MaxPool2D(p, x.I8(), y.I8())
	}
	return y, nil
}

// AvgPool2d is torch.nn.functional.avg_pool2d on a quantized tensor
// (output qparams = input's): with s the integer sum of the window's
// in-image codes, n their count and d the divisor (the padded window size
// with CountIncludePad, else n),
//
//	y = saturate(roundHalfEven((s + (d - n)*zp) / d))
//
// computed exactly in integers: the rounded mean of the raw codes with
// padding counting as the zero point, PyTorch's native kernel (its qnnpack
// kernel rounds the centred mean instead; they differ on exact ties when
// zp is odd).
func AvgPool2d(x *tensor.Tensor, attrs ops.PoolAttrs) (*tensor.Tensor, error) {
	in, err := perTensor("AvgPool2d", "x", x)
	if err != nil {
		return nil, err
	}
	p, err := poolParams("AvgPool2d", x, attrs, true)
	if err != nil {
		return nil, err
	}
	y := newOut(in, spatialOut(x, p.OutH(), p.OutW()))
	if in.dtype == tensor.QUInt8 {
		qelem.AvgPool2D(p, sameRequant(in), x.U8(), y.U8())
	} else {
		qelem.AvgPool2D(p, sameRequant(in), x.I8(), y.I8())
	}
	return y, nil
}

// AdaptiveAvgPool2d is torch.nn.functional.adaptive_avg_pool2d on a
// quantized tensor (output qparams = input's): output (i, j) averages
// input rows [floor(i*H/outH), ceil((i+1)*H/outH)) and the matching
// columns, rounded as in AvgPool2d (no padding).
func AdaptiveAvgPool2d(x *tensor.Tensor, outH, outW int) (*tensor.Tensor, error) {
	in, err := perTensor("AdaptiveAvgPool2d", "x", x)
	if err != nil {
		return nil, err
	}
	n, c, h, w, err := nchw("AdaptiveAvgPool2d", x)
	if err != nil {
		return nil, err
	}
	p := pool.AdaptivePool2DParams{N: n, C: c, H: h, W: w, OutH: outH, OutW: outW}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("quantized: AdaptiveAvgPool2d: input %v, output %dx%d: %w", x.Shape(), outH, outW, err)
	}
	y := newOut(in, spatialOut(x, outH, outW))
	if in.dtype == tensor.QUInt8 {
		qelem.AdaptiveAvgPool2D(p, sameRequant(in), x.U8(), y.U8())
	} else {
		qelem.AdaptiveAvgPool2D(p, sameRequant(in), x.I8(), y.I8())
	}
	return y, nil
}

// GlobalAvgPool2d averages each channel plane of x [N, C, H, W] (or
// [C, H, W]) into [N, C, 1, 1] (ONNX GlobalAveragePool; the same as
// AdaptiveAvgPool2d(x, 1, 1)), rounded as in AvgPool2d.
func GlobalAvgPool2d(x *tensor.Tensor) (*tensor.Tensor, error) {
	return AdaptiveAvgPool2d(x, 1, 1)
}

// UpsampleAttrs are the arguments of torch.nn.functional.interpolate for
// 2-D inputs, shared with the float ops (see ops.UpsampleAttrs), so that
// ops.UpsampleNearest2d and ops.UpsampleBilinear2d hand them to this
// package's kernels unchanged on quantized inputs.
type UpsampleAttrs = ops.UpsampleAttrs

func resizeParams(op string, x *tensor.Tensor, a UpsampleAttrs) (qelem.ResizeParams, error) {
	n, c, h, w, err := nchw(op, x)
	if err != nil {
		return qelem.ResizeParams{}, err
	}
	p := qelem.ResizeParams{N: n, C: c, H: h, W: w, OutH: a.Size[0], OutW: a.Size[1], AlignCorners: a.AlignCorners}
	if a.Size == [2]int{} {
		for i, f := range a.ScaleFactor {
			if !(f > 0) || math.IsInf(f, 0) {
				return p, fmt.Errorf("quantized: %s: need a positive size or scale factor, got size %v and factor %v", op, a.Size, a.ScaleFactor)
			}
			in := []int{h, w}[i]
			size := int(math.Floor(float64(in) * f))
			if i == 0 {
				p.OutH, p.ScaleH = size, f
			} else {
				p.OutW, p.ScaleW = size, f
			}
		}
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("quantized: %s: input %v, %+v: %w", op, x.Shape(), a, err)
	}
	return p, nil
}

// UpsampleNearest2d is interpolate(mode="nearest") on a quantized tensor:
// codes are copied from input row min(floor(float32(i)*s), H-1) (s the
// float32 inverse scale; exact shortcuts for equal and doubled sizes, as
// PyTorch's nearest_idx), likewise columns; qparams pass through.
func UpsampleNearest2d(x *tensor.Tensor, attrs UpsampleAttrs) (*tensor.Tensor, error) {
	in, err := perTensor("UpsampleNearest2d", "x", x)
	if err != nil {
		return nil, err
	}
	p, err := resizeParams("UpsampleNearest2d", x, attrs)
	if err != nil {
		return nil, err
	}
	y := tensor.New(in.dtype, spatialOut(x, p.OutH, p.OutW)...)
	y.SetQParams(x.QParams().Clone())
	if in.dtype == tensor.QUInt8 {
		qelem.UpsampleNearest2D(p, x.U8(), y.U8())
	} else {
		qelem.UpsampleNearest2D(p, x.I8(), y.I8())
	}
	return y, nil
}

// UpsampleBilinear2d is interpolate(mode="bilinear") on a quantized
// tensor, align_corners either way (output qparams = input's). As in
// PyTorch's quantized kernel, the four raw codes are interpolated in
// float32 (weights from area_pixel_compute_source_index, every step
// rounded), the zero point is subtracted and the result rounded half to
// even: y = saturate(zp + roundHalfEven(v)); this matches PyTorch 1.13
// bit for bit.
func UpsampleBilinear2d(x *tensor.Tensor, attrs UpsampleAttrs) (*tensor.Tensor, error) {
	in, err := perTensor("UpsampleBilinear2d", "x", x)
	if err != nil {
		return nil, err
	}
	p, err := resizeParams("UpsampleBilinear2d", x, attrs)
	if err != nil {
		return nil, err
	}
	y := newOut(in, spatialOut(x, p.OutH, p.OutW))
	if in.dtype == tensor.QUInt8 {
		qelem.UpsampleBilinear2D(p, sameRequant(in), x.U8(), y.U8())
	} else {
		qelem.UpsampleBilinear2D(p, sameRequant(in), x.I8(), y.I8())
	}
	return y, nil
}
