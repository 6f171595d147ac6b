package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// ConvTranspose1dOptions configure ConvTranspose1d. Zero Stride, Dilation
// and Groups mean 1, so the zero value is PyTorch's default (stride 1, no
// padding, no output padding, no dilation, one group, with bias).
type ConvTranspose1dOptions struct {
	Stride, Padding, Dilation int
	// OutputPadding adds positions at the end of the output
	// (output_padding); it must be smaller than the stride or the dilation.
	OutputPadding int
	Groups        int
	// NoBias drops the bias (bias=False).
	NoBias bool
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

// ConvTranspose1d is the transposed 1-D convolution over [N, C, L] (or
// unbatched [C, L]) inputs (torch.nn.ConvTranspose1d). Weight is
// [in, out/groups, k] and Bias [out] or nil, initialized as PyTorch does
// (kaiming_uniform(a=sqrt(5)) with fan_in = out/groups*k). The output
// length is (L-1)*Stride - 2*Padding + Dilation*(k-1) + OutputPadding + 1.
//
// It runs as ops.ConvTranspose2d on the input viewed as [N, C, 1, L] with
// the weight viewed as [in, out/groups, 1, k] (ops has no 1-D transposed
// convolution), so gradients flow to the input, weight and bias, and a
// tracer records Unsqueeze, ConvTranspose2d and Squeeze.
type ConvTranspose1d struct {
	Base
	InChannels, OutChannels                              int
	KernelSize, Stride, Padding, OutputPadding, Dilation int
	Groups                                               int
	Weight                                               *tensor.Tensor `nn:"weight"`
	Bias                                                 *tensor.Tensor `nn:"bias"`
}

// NewConvTranspose1d returns a ConvTranspose1d from in to out channels
// with kernel size k.
func NewConvTranspose1d(in, out, k int, o ConvTranspose1dOptions) (*ConvTranspose1d, error) {
	c := &ConvTranspose1d{InChannels: in, OutChannels: out, KernelSize: k, Stride: or1(o.Stride), Padding: o.Padding,
		OutputPadding: o.OutputPadding, Dilation: or1(o.Dilation), Groups: or1(o.Groups)}
	if err := checkConv("NewConvTranspose1d", in, out, c.Groups, []int{k}, []int{c.Stride}, []int{c.Padding}, []int{c.Dilation}); err != nil {
		return nil, err
	}
	if op := c.OutputPadding; op < 0 || (op >= c.Stride && op >= c.Dilation) {
		return nil, fmt.Errorf("nn: NewConvTranspose1d: output padding %d must be smaller than stride %d or dilation %d",
			c.OutputPadding, c.Stride, c.Dilation)
	}
	c.Weight = newParam(in, out/c.Groups, k)
	if !o.NoBias {
		c.Bias = newParam(out)
	}
	withRNG(o.RNG, func(g *tensor.RNG) { initLinearLike(g, c.Weight, c.Bias) })
	return c, nil
}

// Attrs returns the attributes of the equivalent 2-D transposed
// convolution over [N, C, 1, L] (height 1: stride 1, no padding).
func (c *ConvTranspose1d) Attrs() ops.ConvTransposeAttrs {
	return ops.ConvTransposeAttrs{Stride: [2]int{1, c.Stride}, Padding: [2]int{0, c.Padding},
		OutputPadding: [2]int{0, c.OutputPadding}, Dilation: [2]int{1, c.Dilation}, Groups: c.Groups}
}

// Forward applies the transposed convolution to x [N, C, L] or [C, L];
// other ranks panic.
func (c *ConvTranspose1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(c, x, func(x *tensor.Tensor) *tensor.Tensor {
		if x.NDim() != 2 && x.NDim() != 3 {
			panic(fmt.Sprintf("nn: ConvTranspose1d: expected [N, C, L] or [C, L] input, got shape %v", x.Shape()))
		}
		h := x.NDim() - 1 // the inserted height dimension
		y := ops.ConvTranspose2d(ops.Unsqueeze(x, h), ops.Unsqueeze(c.Weight, 2), c.Bias, c.Attrs())
		return ops.Squeeze(y, h)
	})
}
