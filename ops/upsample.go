package ops

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/internal/kernels/pool"
	"github.com/quanta-go/quanta/tensor"
)

// UpsampleAttrs are the arguments of torch.nn.functional.interpolate for
// 2-D inputs. Size is the output [height, width]; when it is zero,
// ScaleFactor gives it as floor(input size * factor) and, as in PyTorch
// (recompute_scale_factor unset), the factor itself maps output to input
// coordinates. AlignCorners applies to bilinear mode only.
type UpsampleAttrs struct {
	Size         [2]int
	ScaleFactor  [2]float64
	AlignCorners bool
}

// OutputSize returns the output [height, width] of resizing an h×w input
// with a: Size when set, else floor(h*ScaleFactor[0]) and
// floor(w*ScaleFactor[1]) in float64, as torch.nn.functional.interpolate
// computes them. It returns an error when neither gives a positive size.
func (a UpsampleAttrs) OutputSize(h, w int) ([2]int, error) {
	if a.Size != [2]int{} {
		if a.Size[0] < 1 || a.Size[1] < 1 {
			return a.Size, fmt.Errorf("output size %v must be positive", a.Size)
		}
		return a.Size, nil
	}
	var out [2]int
	for i, f := range a.ScaleFactor {
		if !(f > 0) || math.IsInf(f, 0) {
			return out, fmt.Errorf("need a positive size or finite positive scale factors, got size %v and factor %v", a.Size, a.ScaleFactor)
		}
		in := []int{h, w}[i]
		out[i] = int(math.Floor(float64(in) * f))
		if out[i] < 1 {
			return out, fmt.Errorf("scale factor %v gives an empty output for input %dx%d", a.ScaleFactor, h, w)
		}
	}
	return out, nil
}

// nnopUpsampleParams converts x's shape and attrs to kernel params,
// viewing an unbatched [C, H, W] input as N = 1, and returns the output
// shape.
func nnopUpsampleParams(op string, x *tensor.Tensor, a UpsampleAttrs) (pool.Upsample2DParams, []int) {
	nnopF32(op, "x", x)
	xs := x.Shape()
	if len(xs) != 3 && len(xs) != 4 {
		panic(fmt.Sprintf("ops: %s: want input [N, C, H, W] or [C, H, W], got %v", op, xs))
	}
	n := 1
	if len(xs) == 4 {
		n = xs[0]
	}
	h, w := xs[len(xs)-2], xs[len(xs)-1]
	out, err := a.OutputSize(h, w)
	if err != nil {
		panic(fmt.Sprintf("ops: %s: input %v: %v", op, xs, err))
	}
	p := pool.Upsample2DParams{N: n, C: xs[len(xs)-3], H: h, W: w, OutH: out[0], OutW: out[1], AlignCorners: a.AlignCorners}
	if a.Size == [2]int{} {
		p.ScaleH, p.ScaleW = a.ScaleFactor[0], a.ScaleFactor[1]
	}
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("ops: %s: input %v, %+v: %v", op, xs, a, err))
	}
	yShape := append(append([]int(nil), xs[:len(xs)-2]...), out[0], out[1])
	return p, yShape
}

// UpsampleNearest2d is torch.nn.functional.interpolate(mode="nearest") on
// x [N, C, H, W] or [C, H, W]: output row i copies input row
// min(floor(float32(i)*s), H-1), s being float32(1/ScaleFactor[0]) when
// the size comes from the factor and float32(H)/float32(outH) otherwise
// (exact shortcuts for equal and doubled sizes, as PyTorch's nearest_idx),
// likewise columns; AlignCorners is ignored. The gradient sums the output
// gradients each input element was copied to. On a quantized x it runs the
// registered quantized kernel (codes copied, qparams kept). The traced op is
// "UpsampleNearest2d" with input x and UpsampleAttrs.
func UpsampleNearest2d(x *tensor.Tensor, attrs UpsampleAttrs) *tensor.Tensor {
	const op = "UpsampleNearest2d"
	if isQ(x) {
		return quantizedOp(op, attrs, x)
	}
	p, yShape := nnopUpsampleParams(op, x, attrs)
	yv := make([]float32, p.OutputLen())
	pool.UpsampleNearest2D(p, x.F32(), yv)
	y := nnopTensor(yv, yShape)
	return Apply(op, attrs, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := make([]float32, x.Numel())
		pool.UpsampleNearest2DBackward(p, g[0].F32(), gx)
		return Ts(nnopTensor(gx, x.Shape()))
	})
}

// UpsampleBilinear2d is torch.nn.functional.interpolate(mode="bilinear")
// on x [N, C, H, W] or [C, H, W], align_corners either way, with PyTorch
// 1.13's index and weight arithmetic in float32 (area_pixel_compute_scale,
// area_pixel_compute_source_index, the equal-size shortcut) and its order
// of operations; it equals PyTorch's scalar kernels bit for bit
// (pool.UpsampleBilinear2DReference explains the AVX2 build's last-bit
// differences). The gradient spreads each output gradient over its four
// taps with the same weights. On a quantized x it runs the registered
// quantized kernel (PyTorch's quantized upsample_bilinear2d). The traced op
// is "UpsampleBilinear2d" with input x and UpsampleAttrs.
func UpsampleBilinear2d(x *tensor.Tensor, attrs UpsampleAttrs) *tensor.Tensor {
	const op = "UpsampleBilinear2d"
	if isQ(x) {
		return quantizedOp(op, attrs, x)
	}
	p, yShape := nnopUpsampleParams(op, x, attrs)
	yv := make([]float32, p.OutputLen())
	pool.UpsampleBilinear2D(p, x.F32(), yv)
	y := nnopTensor(yv, yShape)
	return Apply(op, attrs, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := make([]float32, x.Numel())
		pool.UpsampleBilinear2DBackward(p, g[0].F32(), gx)
		return Ts(nnopTensor(gx, x.Shape()))
	})
}
