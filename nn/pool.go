package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// PoolOptions configure MaxPool2d and AvgPool2d. A zero Stride means the
// kernel size and zero Dilation components mean 1 (PyTorch's defaults).
type PoolOptions struct {
	Stride, Padding, Dilation [2]int
	CeilMode                  bool
	// ExcludePadding leaves padding out of AvgPool2d's divisor
	// (count_include_pad=False; PyTorch's default counts it).
	ExcludePadding bool
}

func poolAttrs(op string, kernel [2]int, o PoolOptions) (ops.PoolAttrs, error) {
	a := ops.PoolAttrs{Kernel: kernel, Stride: o.Stride, Padding: o.Padding, Dilation: or1Pair(o.Dilation),
		CeilMode: o.CeilMode, CountIncludePad: !o.ExcludePadding}
	if a.Stride == [2]int{} {
		a.Stride = kernel
	}
	for i := range 2 {
		if kernel[i] <= 0 || a.Stride[i] <= 0 || a.Dilation[i] <= 0 || a.Padding[i] < 0 || 2*a.Padding[i] > kernel[i] {
			return a, fmt.Errorf("nn: %s: invalid kernel %v, stride %v, padding %v (at most half the kernel) or dilation %v",
				op, kernel, a.Stride, a.Padding, a.Dilation)
		}
	}
	return a, nil
}

// MaxPool2d takes the maximum over windows (torch.nn.MaxPool2d).
type MaxPool2d struct {
	Base
	Attrs ops.PoolAttrs
}

// NewMaxPool2d returns a MaxPool2d with the given kernel size.
func NewMaxPool2d(kernel [2]int, o PoolOptions) (*MaxPool2d, error) {
	a, err := poolAttrs("NewMaxPool2d", kernel, o)
	if err != nil {
		return nil, err
	}
	a.CountIncludePad = false
	return &MaxPool2d{Attrs: a}, nil
}

// Forward pools x [N, C, H, W].
func (m *MaxPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.MaxPool2d(x, m.Attrs) })
}

// AvgPool2d averages over windows (torch.nn.AvgPool2d).
type AvgPool2d struct {
	Base
	Attrs ops.PoolAttrs
}

// NewAvgPool2d returns an AvgPool2d with the given kernel size. Dilation
// must be 1.
func NewAvgPool2d(kernel [2]int, o PoolOptions) (*AvgPool2d, error) {
	a, err := poolAttrs("NewAvgPool2d", kernel, o)
	if err != nil {
		return nil, err
	}
	if a.Dilation != [2]int{1, 1} {
		return nil, fmt.Errorf("nn: NewAvgPool2d: dilation %v is not supported", a.Dilation)
	}
	return &AvgPool2d{Attrs: a}, nil
}

// Forward pools x [N, C, H, W].
func (m *AvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.AvgPool2d(x, m.Attrs) })
}

// AdaptiveAvgPool2d averages over windows chosen so the output is
// OutputSize [H, W] (torch.nn.AdaptiveAvgPool2d).
type AdaptiveAvgPool2d struct {
	Base
	OutputSize [2]int
}

// NewAdaptiveAvgPool2d returns an AdaptiveAvgPool2d with the given output
// size.
func NewAdaptiveAvgPool2d(outputSize [2]int) (*AdaptiveAvgPool2d, error) {
	if outputSize[0] <= 0 || outputSize[1] <= 0 {
		return nil, fmt.Errorf("nn: NewAdaptiveAvgPool2d: output size %v must be positive", outputSize)
	}
	return &AdaptiveAvgPool2d{OutputSize: outputSize}, nil
}

// Forward pools x [N, C, H, W].
func (m *AdaptiveAvgPool2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.AdaptiveAvgPool2d(x, m.OutputSize[0], m.OutputSize[1])
	})
}
