package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/tensor"
)

// ConvAttrs are the attributes of Conv2d, as the arguments of
// torch.nn.functional.conv2d; pairs are [height, width]. A zero Stride or
// Dilation component means 1 and a zero Groups means 1, so the zero value
// is a stride-1, unpadded, undilated, ungrouped convolution. Padding is
// zero padding on both sides of each dimension.
type ConvAttrs struct {
	Stride, Padding, Dilation [2]int
	Groups                    int
}

// Conv1dAttrs are the attributes of Conv1d, as the arguments of
// torch.nn.functional.conv1d. Zero Stride, Dilation or Groups mean 1.
type Conv1dAttrs struct {
	Stride, Padding, Dilation int
	Groups                    int
}

// ConvTransposeAttrs are the attributes of ConvTranspose2d, as the
// arguments of torch.nn.functional.conv_transpose2d; pairs are [height,
// width]. Zero Stride, Dilation or Groups mean 1. OutputPadding adds rows
// and columns at the bottom and right of the output and must be smaller
// than the stride or the dilation in each dimension.
type ConvTransposeAttrs struct {
	Stride, Padding, OutputPadding, Dilation [2]int
	Groups                                   int
}

// Conv2d is torch.nn.functional.conv2d: x is [N, C, H, W] (or unbatched
// [C, H, W]), w is [O, C/Groups, KH, KW] and b is [O] or nil. The result
// is [N, O, OH, OW] (or [O, OH, OW]) with
// OH = (H + 2*Padding - Dilation*(KH-1) - 1)/Stride + 1, likewise OW.
// Conv2d panics when the shapes do not fit the attributes. The traced op is
// "Conv2d" with inputs (x, w, b), b possibly nil, and ConvAttrs; gradients
// flow to all three.
func Conv2d(x, w, b *tensor.Tensor, attrs ConvAttrs) *tensor.Tensor {
	const op = "Conv2d"
	xs, ws := x.Shape(), w.Shape()
	unbatched := len(xs) == 3
	if unbatched {
		xs = append([]int{1}, xs...)
	}
	if len(xs) != 4 || len(ws) != 4 {
		panic(fmt.Sprintf("ops: Conv2d: want input [N, C, H, W] and weight [O, C/groups, KH, KW], got %v and %v", x.Shape(), ws))
	}
	p := conv.Conv2DParams{
		N: xs[0], C: xs[1], H: xs[2], W: xs[3], OutC: ws[0], KH: ws[2], KW: ws[3],
		StrideH: attrs.Stride[0], StrideW: attrs.Stride[1], PadH: attrs.Padding[0], PadW: attrs.Padding[1],
		DilH: attrs.Dilation[0], DilW: attrs.Dilation[1], Groups: attrs.Groups,
	}
	nnopConvCheck(op, p, x, w, b, ws[1])
	yShape := []int{p.N, p.OutC, p.OutH(), p.OutW()}
	if unbatched {
		yShape = yShape[1:]
	}
	return nnopConv(op, attrs, p, x, w, b, yShape)
}

// Conv1d is torch.nn.functional.conv1d: x is [N, C, L] (or unbatched
// [C, L]), w is [O, C/Groups, K] and b is [O] or nil; the result is
// [N, O, OL] (or [O, OL]). The traced op is "Conv1d" with inputs (x, w, b)
// and Conv1dAttrs.
func Conv1d(x, w, b *tensor.Tensor, attrs Conv1dAttrs) *tensor.Tensor {
	const op = "Conv1d"
	xs, ws := x.Shape(), w.Shape()
	unbatched := len(xs) == 2
	if unbatched {
		xs = append([]int{1}, xs...)
	}
	if len(xs) != 3 || len(ws) != 3 {
		panic(fmt.Sprintf("ops: Conv1d: want input [N, C, L] and weight [O, C/groups, K], got %v and %v", x.Shape(), ws))
	}
	p := conv.Conv1DParams{N: xs[0], C: xs[1], L: xs[2], OutC: ws[0], K: ws[2],
		Stride: attrs.Stride, Pad: attrs.Padding, Dil: attrs.Dilation, Groups: attrs.Groups}.Conv2D()
	nnopConvCheck(op, p, x, w, b, ws[1])
	yShape := []int{p.N, p.OutC, p.OutW()}
	if unbatched {
		yShape = yShape[1:]
	}
	return nnopConv(op, attrs, p, x, w, b, yShape)
}

// nnopConvCheck validates a convolution's params and tensors.
func nnopConvCheck(op string, p conv.Conv2DParams, x, w, b *tensor.Tensor, wIn int) {
	nnopF32(op, "x", x)
	nnopF32(op, "w", w)
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("ops: %s: input %v, weight %v: %v", op, x.Shape(), w.Shape(), err))
	}
	if g := p.Norm().Groups; wIn*g != p.C {
		panic(fmt.Sprintf("ops: %s: weight %v does not fit input %v with %d groups", op, w.Shape(), x.Shape(), g))
	}
	nnopVec(op, "bias", b, p.OutC)
}

// nnopConv runs a validated 2-D convolution (Conv2d, or Conv1d as H=1) and
// records it.
func nnopConv(op string, attrs any, p conv.Conv2DParams, x, w, b *tensor.Tensor, yShape []int) *tensor.Tensor {
	xv, wv := x.F32(), w.F32()
	var bv []float32
	if b != nil {
		bv = b.F32()
	}
	yv := make([]float32, p.OutputLen())
	conv.Conv2D(p, xv, wv, bv, yv)
	y := nnopTensor(yv, yShape)
	return Apply(op, attrs, Ts(x, w, b), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var gx, gw, gb *tensor.Tensor
		if needs(x) {
			d := make([]float32, len(xv))
			conv.Conv2DBackwardInput(p, wv, gv, d)
			gx = nnopTensor(d, x.Shape())
		}
		if needs(w) {
			d := make([]float32, len(wv))
			conv.Conv2DBackwardWeight(p, xv, gv, d)
			gw = nnopTensor(d, w.Shape())
		}
		if needs(b) {
			d := make([]float32, p.OutC)
			conv.Conv2DBackwardBias(p, gv, d)
			gb = nnopTensor(d, b.Shape())
		}
		return Ts(gx, gw, gb)
	})
}

// ConvTranspose2d is torch.nn.functional.conv_transpose2d: x is
// [N, C, H, W] (or unbatched [C, H, W]), w is [C, O/Groups, KH, KW] and b
// is [O] or nil. The result is [N, O, OH, OW] (or [O, OH, OW]) with
// OH = (H-1)*Stride - 2*Padding + Dilation*(KH-1) + OutputPadding + 1,
// likewise OW. The traced op is "ConvTranspose2d" with inputs (x, w, b), b
// possibly nil, and ConvTransposeAttrs; gradients flow to all three.
func ConvTranspose2d(x, w, b *tensor.Tensor, attrs ConvTransposeAttrs) *tensor.Tensor {
	const op = "ConvTranspose2d"
	xv, wv := nnopF32(op, "x", x), nnopF32(op, "w", w)
	xs, ws := x.Shape(), w.Shape()
	unbatched := len(xs) == 3
	if unbatched {
		xs = append([]int{1}, xs...)
	}
	if len(xs) != 4 || len(ws) != 4 {
		panic(fmt.Sprintf("ops: ConvTranspose2d: want input [N, C, H, W] and weight [C, O/groups, KH, KW], got %v and %v", x.Shape(), ws))
	}
	groups := max(attrs.Groups, 1)
	p := conv.ConvTranspose2DParams{
		N: xs[0], C: xs[1], H: xs[2], W: xs[3], OutC: ws[1] * groups, KH: ws[2], KW: ws[3],
		StrideH: attrs.Stride[0], StrideW: attrs.Stride[1], PadH: attrs.Padding[0], PadW: attrs.Padding[1],
		OutPadH: attrs.OutputPadding[0], OutPadW: attrs.OutputPadding[1],
		DilH: attrs.Dilation[0], DilW: attrs.Dilation[1], Groups: attrs.Groups,
	}
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("ops: ConvTranspose2d: input %v, weight %v: %v", x.Shape(), ws, err))
	}
	if ws[0] != p.C {
		panic(fmt.Sprintf("ops: ConvTranspose2d: weight %v does not fit input %v (want %d input channels)", ws, x.Shape(), p.C))
	}
	bv := nnopVec(op, "bias", b, p.OutC)
	yv := make([]float32, p.OutputLen())
	conv.ConvTranspose2D(p, xv, wv, bv, yv)
	yShape := []int{p.N, p.OutC, p.OutH(), p.OutW()}
	if unbatched {
		yShape = yShape[1:]
	}
	y := nnopTensor(yv, yShape)
	return Apply(op, attrs, Ts(x, w, b), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		var gx, gw, gb *tensor.Tensor
		if needs(x) {
			d := make([]float32, len(xv))
			conv.ConvTranspose2DBackwardInput(p, wv, gv, d)
			gx = nnopTensor(d, x.Shape())
		}
		if needs(w) {
			d := make([]float32, len(wv))
			conv.ConvTranspose2DBackwardWeight(p, xv, gv, d)
			gw = nnopTensor(d, w.Shape())
		}
		if needs(b) {
			d := make([]float32, p.OutC)
			conv.ConvTranspose2DBackwardBias(p, gv, d)
			gb = nnopTensor(d, b.Shape())
		}
		return Ts(gx, gw, gb)
	})
}
