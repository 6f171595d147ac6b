package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/tensor"
)

// PoolAttrs are the attributes of MaxPool2d and AvgPool2d, as the
// arguments of torch.nn.functional.max_pool2d and avg_pool2d; pairs are
// [height, width]. Kernel is required. A zero Stride means the kernel size
// (torch's default) and a zero Dilation component means 1; AvgPool2d
// accepts only dilation 1. Padding (implicit -inf for max, zeros for
// average) is at most half the kernel. CeilMode rounds the output size up
// instead of down, as long as the last window starts inside the input or
// the left padding. CountIncludePad (AvgPool2d only) counts padding
// elements in the divisor; note that torch's avg_pool2d defaults it to
// true while the zero value here is false.
type PoolAttrs struct {
	Kernel, Stride, Padding, Dilation [2]int
	CeilMode, CountIncludePad         bool
}

// AdaptivePoolAttrs are the attributes AdaptiveAvgPool2d records when
// traced.
type AdaptivePoolAttrs struct {
	// Output is the output [height, width].
	Output [2]int
}

// nnopPoolParams converts x's shape and attrs to kernel params, viewing an
// unbatched [C, H, W] input as N = 1, and returns the output shape.
func nnopPoolParams(op string, x *tensor.Tensor, a PoolAttrs, avg bool) (pool.Pool2DParams, []int) {
	nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) != 3 && len(xs) != 4 {
		panic(fmt.Sprintf("ops: %s: want input [N, C, H, W] or [C, H, W], got %v", op, xs))
	}
	n := 1
	if len(xs) == 4 {
		n = xs[0]
	}
	p := pool.Pool2DParams{
		N: n, C: xs[len(xs)-3], H: xs[len(xs)-2], W: xs[len(xs)-1],
		KH: a.Kernel[0], KW: a.Kernel[1], StrideH: a.Stride[0], StrideW: a.Stride[1],
		PadH: a.Padding[0], PadW: a.Padding[1], DilH: a.Dilation[0], DilW: a.Dilation[1],
		CeilMode: a.CeilMode, CountIncludePad: a.CountIncludePad && avg,
	}
	err := p.Validate()
	if avg && err == nil {
		err = p.ValidateAvg()
	}
	if err != nil {
		panic(fmt.Sprintf("ops: %s: input %v, %+v: %v", op, xs, a, err))
	}
	yShape := append(append([]int(nil), xs[:len(xs)-2]...), p.OutH(), p.OutW())
	return p, yShape
}

// MaxPool2d is torch.nn.functional.max_pool2d on x [N, C, H, W] or
// [C, H, W]: each output is the maximum of its (dilated) window, padding
// excluded. A NaN in a window is the result. The gradient goes to the first
// maximum of each window (in row-major window order), accumulating where
// windows overlap. The traced op is "MaxPool2d" with input x and PoolAttrs.
func MaxPool2d(x *tensor.Tensor, attrs PoolAttrs) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("MaxPool2d", attrs, x)
	}
	p, yShape := nnopPoolParams("MaxPool2d", x, attrs, false)
	yv := make([]float32, p.OutputLen())
	idx := make([]int32, len(yv))
	pool.MaxPool2D(p, x.F32(), yv, idx)
	y := nnopTensor(yv, yShape)
	return Apply("MaxPool2d", attrs, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := make([]float32, x.Numel())
		pool.MaxPool2DBackward(p, g[0].F32(), idx, gx)
		return Ts(nnopTensor(gx, x.Shape()))
	})
}

// AvgPool2d is torch.nn.functional.avg_pool2d on x [N, C, H, W] or
// [C, H, W]: each output is the sum of its window's input elements divided
// by the window size clipped to the padded input (CountIncludePad) or to
// the input (otherwise). Dilation must be 1. The traced op is "AvgPool2d"
// with input x and PoolAttrs.
func AvgPool2d(x *tensor.Tensor, attrs PoolAttrs) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("AvgPool2d", attrs, x)
	}
	p, yShape := nnopPoolParams("AvgPool2d", x, attrs, true)
	yv := make([]float32, p.OutputLen())
	pool.AvgPool2D(p, x.F32(), yv)
	y := nnopTensor(yv, yShape)
	return Apply("AvgPool2d", attrs, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := make([]float32, x.Numel())
		pool.AvgPool2DBackward(p, g[0].F32(), gx)
		return Ts(nnopTensor(gx, x.Shape()))
	})
}

// AdaptiveAvgPool2d is torch.nn.functional.adaptive_avg_pool2d on x
// [N, C, H, W] or [C, H, W]: output (i, j) of [outH, outW] averages input
// rows floor(i*H/outH) to ceil((i+1)*H/outH) (exclusive), likewise
// columns. The traced op is "AdaptiveAvgPool2d" with input x and
// AdaptivePoolAttrs.
func AdaptiveAvgPool2d(x *tensor.Tensor, outH, outW int) *tensor.Tensor {
	if isQ(x) {
		return quantizedOp("AdaptiveAvgPool2d", AdaptivePoolAttrs{Output: [2]int{outH, outW}}, x)
	}
	const op = "AdaptiveAvgPool2d"
	nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) != 3 && len(xs) != 4 {
		panic(fmt.Sprintf("ops: AdaptiveAvgPool2d: want input [N, C, H, W] or [C, H, W], got %v", xs))
	}
	n := 1
	if len(xs) == 4 {
		n = xs[0]
	}
	p := pool.AdaptivePool2DParams{N: n, C: xs[len(xs)-3], H: xs[len(xs)-2], W: xs[len(xs)-1], OutH: outH, OutW: outW}
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("ops: AdaptiveAvgPool2d: input %v, output %dx%d: %v", xs, outH, outW, err))
	}
	yv := make([]float32, p.OutputLen())
	pool.AdaptiveAvgPool2D(p, x.F32(), yv)
	yShape := append(append([]int(nil), xs[:len(xs)-2]...), outH, outW)
	y := nnopTensor(yv, yShape)
	return Apply(op, AdaptivePoolAttrs{Output: [2]int{outH, outW}}, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := make([]float32, x.Numel())
		pool.AdaptiveAvgPool2DBackward(p, g[0].F32(), gx)
		return Ts(nnopTensor(gx, x.Shape()))
	})
}
