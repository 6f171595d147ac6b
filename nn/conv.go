package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Conv2dOptions configure Conv2d and ConvTranspose2d. Pairs are [height,
// width]; zero Stride and Dilation components mean 1 and a zero Groups
// means 1, so the zero value is PyTorch's default (stride 1, no padding,
// no dilation, one group, with bias).
type Conv2dOptions struct {
	Stride, Padding, Dilation [2]int
	// OutputPadding is ConvTranspose2d's output_padding (ignored by Conv2d).
	OutputPadding [2]int
	Groups        int
	// NoBias drops the bias (bias=False).
	NoBias bool
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

func checkConv(op string, in, out, groups int, kernel, stride, padding, dilation []int) error {
	if in <= 0 || out <= 0 {
		return fmt.Errorf("nn: %s: channels in=%d out=%d must be positive", op, in, out)
	}
	if groups <= 0 || in%groups != 0 || out%groups != 0 {
		return fmt.Errorf("nn: %s: groups %d must divide in=%d and out=%d", op, groups, in, out)
	}
	for i := range kernel {
		if kernel[i] <= 0 || stride[i] <= 0 || dilation[i] <= 0 || padding[i] < 0 {
			return fmt.Errorf("nn: %s: invalid kernel %v, stride %v, padding %v or dilation %v", op, kernel, stride, padding, dilation)
		}
	}
	return nil
}

// Conv2d is a 2-D convolution over [N, C, H, W] inputs (torch.nn.Conv2d).
// Weight is [out, in/groups, kH, kW], Bias is [out] or nil; both are
// initialized as PyTorch does (kaiming_uniform(a=sqrt(5)), and
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in/groups*kH*kW).
type Conv2d struct {
	Base
	InChannels, OutChannels               int
	KernelSize, Stride, Padding, Dilation [2]int
	Groups                                int
	Weight                                *tensor.Tensor `nn:"weight"`
	Bias                                  *tensor.Tensor `nn:"bias"`
}

// NewConv2d returns a Conv2d from in to out channels with the given kernel
// size (see Pair for square kernels).
func NewConv2d(in, out int, kernel [2]int, o Conv2dOptions) (*Conv2d, error) {
	c := &Conv2d{InChannels: in, OutChannels: out, KernelSize: kernel, Stride: or1Pair(o.Stride),
		Padding: o.Padding, Dilation: or1Pair(o.Dilation), Groups: or1(o.Groups)}
	if err := checkConv("NewConv2d", in, out, c.Groups, c.KernelSize[:], c.Stride[:], c.Padding[:], c.Dilation[:]); err != nil {
		return nil, err
	}
	c.Weight = newParam(out, in/c.Groups, kernel[0], kernel[1])
	if !o.NoBias {
		c.Bias = newParam(out)
	}
	withRNG(o.RNG, func(g *tensor.RNG) { initLinearLike(g, c.Weight, c.Bias) })
	return c, nil
}

// Attrs returns the convolution's ops attributes.
func (c *Conv2d) Attrs() ops.ConvAttrs {
	return ops.ConvAttrs{Stride: c.Stride, Padding: c.Padding, Dilation: c.Dilation, Groups: c.Groups}
}

// Forward convolves x [N, C, H, W].
func (c *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(c, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Conv2d(x, c.Weight, c.Bias, c.Attrs()) })
}

// Conv1dOptions configure Conv1d; zero Stride, Dilation and Groups mean 1.
type Conv1dOptions struct {
	Stride, Padding, Dilation int
	Groups                    int
	// NoBias drops the bias (bias=False).
	NoBias bool
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

// Conv1d is a 1-D convolution over [N, C, L] inputs (torch.nn.Conv1d).
// Weight is [out, in/groups, k]; initialization as Conv2d.
type Conv1d struct {
	Base
	InChannels, OutChannels               int
	KernelSize, Stride, Padding, Dilation int
	Groups                                int
	Weight                                *tensor.Tensor `nn:"weight"`
	Bias                                  *tensor.Tensor `nn:"bias"`
}

// NewConv1d returns a Conv1d from in to out channels with kernel size k.
func NewConv1d(in, out, k int, o Conv1dOptions) (*Conv1d, error) {
	c := &Conv1d{InChannels: in, OutChannels: out, KernelSize: k, Stride: or1(o.Stride), Padding: o.Padding,
		Dilation: or1(o.Dilation), Groups: or1(o.Groups)}
	if err := checkConv("NewConv1d", in, out, c.Groups, []int{k}, []int{c.Stride}, []int{c.Padding}, []int{c.Dilation}); err != nil {
		return nil, err
	}
	c.Weight = newParam(out, in/c.Groups, k)
	if !o.NoBias {
		c.Bias = newParam(out)
	}
	withRNG(o.RNG, func(g *tensor.RNG) { initLinearLike(g, c.Weight, c.Bias) })
	return c, nil
}

// Attrs returns the convolution's ops attributes.
func (c *Conv1d) Attrs() ops.Conv1dAttrs {
	return ops.Conv1dAttrs{Stride: c.Stride, Padding: c.Padding, Dilation: c.Dilation, Groups: c.Groups}
}

// Forward convolves x [N, C, L].
func (c *Conv1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(c, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Conv1d(x, c.Weight, c.Bias, c.Attrs()) })
}

// ConvTranspose2d is the transposed 2-D convolution
// (torch.nn.ConvTranspose2d). Weight is [in, out/groups, kH, kW]; PyTorch
// initializes it like a convolution's, so fan_in is out/groups*kH*kW.
type ConvTranspose2d struct {
	Base
	InChannels, OutChannels                              int
	KernelSize, Stride, Padding, OutputPadding, Dilation [2]int
	Groups                                               int
	Weight                                               *tensor.Tensor `nn:"weight"`
	Bias                                                 *tensor.Tensor `nn:"bias"`
}

// NewConvTranspose2d returns a ConvTranspose2d from in to out channels.
func NewConvTranspose2d(in, out int, kernel [2]int, o Conv2dOptions) (*ConvTranspose2d, error) {
	c := &ConvTranspose2d{InChannels: in, OutChannels: out, KernelSize: kernel, Stride: or1Pair(o.Stride),
		Padding: o.Padding, OutputPadding: o.OutputPadding, Dilation: or1Pair(o.Dilation), Groups: or1(o.Groups)}
	if err := checkConv("NewConvTranspose2d", in, out, c.Groups, c.KernelSize[:], c.Stride[:], c.Padding[:], c.Dilation[:]); err != nil {
		return nil, err
	}
	for i := range 2 {
		op := c.OutputPadding[i]
		if op < 0 || (op >= c.Stride[i] && op >= c.Dilation[i]) {
			return nil, fmt.Errorf("nn: NewConvTranspose2d: output padding %v must be smaller than stride %v or dilation %v",
				c.OutputPadding, c.Stride, c.Dilation)
		}
	}
	c.Weight = newParam(in, out/c.Groups, kernel[0], kernel[1])
	if !o.NoBias {
		c.Bias = newParam(out)
	}
	withRNG(o.RNG, func(g *tensor.RNG) { initLinearLike(g, c.Weight, c.Bias) })
	return c, nil
}

// Attrs returns the transposed convolution's ops attributes.
func (c *ConvTranspose2d) Attrs() ops.ConvTransposeAttrs {
	return ops.ConvTransposeAttrs{Stride: c.Stride, Padding: c.Padding, OutputPadding: c.OutputPadding,
		Dilation: c.Dilation, Groups: c.Groups}
}

// Forward applies the transposed convolution to x [N, C, H, W].
func (c *ConvTranspose2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(c, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.ConvTranspose2d(x, c.Weight, c.Bias, c.Attrs())
	})
}
