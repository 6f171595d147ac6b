// Package intrinsic holds quanta's fused float modules, after
// torch.nn.intrinsic (nni): containers that keep a conv or linear layer
// together with the batch norm and ReLU that follow it, so that eager-mode
// quantization observes, trains (QAT) and quantizes them as one unit, and the
// eval-time folding of a batch norm into the layer before it
// (torch.nn.utils.fuse_conv_bn_eval and fuse_linear_bn_eval).
//
// As in PyTorch, where the fused modules are nn.Sequential subclasses, the
// children are named "0", "1" and "2", so state-dict keys ("0.weight",
// "1.running_mean") match PyTorch's.
package intrinsic

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// ConvReLU1d is Conv1d followed by ReLU (torch.nn.intrinsic.ConvReLU1d).
type ConvReLU1d struct {
	nn.Base
	Conv *nn.Conv1d `nn:"0"`
	ReLU *nn.ReLU   `nn:"1"`
}

// NewConvReLU1d returns the fused module of conv and relu (nil relu means a
// new ReLU).
func NewConvReLU1d(conv *nn.Conv1d, relu *nn.ReLU) (*ConvReLU1d, error) {
	if conv == nil {
		return nil, errors.New("intrinsic: ConvReLU1d: nil Conv1d")
	}
	return &ConvReLU1d{Conv: conv, ReLU: orReLU(relu)}, nil
}

// TypeName returns "ConvReLU1d".
func (m *ConvReLU1d) TypeName() string { return "ConvReLU1d" }

// Forward returns relu(conv(x)) for x [N, C, L].
func (m *ConvReLU1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.ReLU.Forward(m.Conv.Forward(x)) })
}

// ConvReLU2d is Conv2d followed by ReLU (torch.nn.intrinsic.ConvReLU2d).
type ConvReLU2d struct {
	nn.Base
	Conv *nn.Conv2d `nn:"0"`
	ReLU *nn.ReLU   `nn:"1"`
}

// NewConvReLU2d returns the fused module of conv and relu (nil relu means a
// new ReLU).
func NewConvReLU2d(conv *nn.Conv2d, relu *nn.ReLU) (*ConvReLU2d, error) {
	if conv == nil {
		return nil, errors.New("intrinsic: ConvReLU2d: nil Conv2d")
	}
	return &ConvReLU2d{Conv: conv, ReLU: orReLU(relu)}, nil
}

// TypeName returns "ConvReLU2d".
func (m *ConvReLU2d) TypeName() string { return "ConvReLU2d" }

// Forward returns relu(conv(x)) for x [N, C, H, W].
func (m *ConvReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.ReLU.Forward(m.Conv.Forward(x)) })
}

// LinearReLU is Linear followed by ReLU (torch.nn.intrinsic.LinearReLU).
type LinearReLU struct {
	nn.Base
	Linear *nn.Linear `nn:"0"`
	ReLU   *nn.ReLU   `nn:"1"`
}

// NewLinearReLU returns the fused module of linear and relu (nil relu means
// a new ReLU).
func NewLinearReLU(linear *nn.Linear, relu *nn.ReLU) (*LinearReLU, error) {
	if linear == nil {
		return nil, errors.New("intrinsic: LinearReLU: nil Linear")
	}
	return &LinearReLU{Linear: linear, ReLU: orReLU(relu)}, nil
}

// TypeName returns "LinearReLU".
func (m *LinearReLU) TypeName() string { return "LinearReLU" }

// Forward returns relu(linear(x)).
func (m *LinearReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.ReLU.Forward(m.Linear.Forward(x)) })
}

// BNReLU2d is BatchNorm2d followed by ReLU (torch.nn.intrinsic.BNReLU2d).
type BNReLU2d struct {
	nn.Base
	BN   *nn.BatchNorm2d `nn:"0"`
	ReLU *nn.ReLU        `nn:"1"`
}

// NewBNReLU2d returns the fused module of bn and relu (nil relu means a new
// ReLU).
func NewBNReLU2d(bn *nn.BatchNorm2d, relu *nn.ReLU) (*BNReLU2d, error) {
	if bn == nil {
		return nil, errors.New("intrinsic: BNReLU2d: nil BatchNorm2d")
	}
	return &BNReLU2d{BN: bn, ReLU: orReLU(relu)}, nil
}

// TypeName returns "BNReLU2d".
func (m *BNReLU2d) TypeName() string { return "BNReLU2d" }

// Forward returns relu(bn(x)) for x [N, C, H, W].
func (m *BNReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.ReLU.Forward(m.BN.Forward(x)) })
}

// ConvBn1d is Conv1d followed by BatchNorm1d (torch.nn.intrinsic.ConvBn1d),
// the float module that QAT preparation swaps for qat.ConvBn1d.
type ConvBn1d struct {
	nn.Base
	Conv *nn.Conv1d      `nn:"0"`
	BN   *nn.BatchNorm1d `nn:"1"`
}

// NewConvBn1d returns the fused module of conv and bn; bn must normalize
// conv's output channels.
func NewConvBn1d(conv *nn.Conv1d, bn *nn.BatchNorm1d) (*ConvBn1d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: ConvBn1d: nil Conv1d or BatchNorm1d")
	}
	if err := checkBN("ConvBn1d", conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	return &ConvBn1d{Conv: conv, BN: bn}, nil
}

// TypeName returns "ConvBn1d".
func (m *ConvBn1d) TypeName() string { return "ConvBn1d" }

// Forward returns bn(conv(x)) for x [N, C, L].
func (m *ConvBn1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.BN.Forward(m.Conv.Forward(x)) })
}

// ConvBn2d is Conv2d followed by BatchNorm2d (torch.nn.intrinsic.ConvBn2d),
// the float module that QAT preparation swaps for qat.ConvBn2d.
type ConvBn2d struct {
	nn.Base
	Conv *nn.Conv2d      `nn:"0"`
	BN   *nn.BatchNorm2d `nn:"1"`
}

// NewConvBn2d returns the fused module of conv and bn; bn must normalize
// conv's output channels.
func NewConvBn2d(conv *nn.Conv2d, bn *nn.BatchNorm2d) (*ConvBn2d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: ConvBn2d: nil Conv2d or BatchNorm2d")
	}
	if err := checkBN("ConvBn2d", conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	return &ConvBn2d{Conv: conv, BN: bn}, nil
}

// TypeName returns "ConvBn2d".
func (m *ConvBn2d) TypeName() string { return "ConvBn2d" }

// Forward returns bn(conv(x)) for x [N, C, H, W].
func (m *ConvBn2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.BN.Forward(m.Conv.Forward(x)) })
}

// ConvBnReLU1d is Conv1d, BatchNorm1d and ReLU
// (torch.nn.intrinsic.ConvBnReLU1d).
type ConvBnReLU1d struct {
	nn.Base
	Conv *nn.Conv1d      `nn:"0"`
	BN   *nn.BatchNorm1d `nn:"1"`
	ReLU *nn.ReLU        `nn:"2"`
}

// NewConvBnReLU1d returns the fused module of conv, bn and relu (nil relu
// means a new ReLU).
func NewConvBnReLU1d(conv *nn.Conv1d, bn *nn.BatchNorm1d, relu *nn.ReLU) (*ConvBnReLU1d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: ConvBnReLU1d: nil Conv1d or BatchNorm1d")
	}
	if err := checkBN("ConvBnReLU1d", conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	return &ConvBnReLU1d{Conv: conv, BN: bn, ReLU: orReLU(relu)}, nil
}

// TypeName returns "ConvBnReLU1d".
func (m *ConvBnReLU1d) TypeName() string { return "ConvBnReLU1d" }

// Forward returns relu(bn(conv(x))) for x [N, C, L].
func (m *ConvBnReLU1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return m.ReLU.Forward(m.BN.Forward(m.Conv.Forward(x)))
	})
}

// ConvBnReLU2d is Conv2d, BatchNorm2d and ReLU
// (torch.nn.intrinsic.ConvBnReLU2d).
type ConvBnReLU2d struct {
	nn.Base
	Conv *nn.Conv2d      `nn:"0"`
	BN   *nn.BatchNorm2d `nn:"1"`
	ReLU *nn.ReLU        `nn:"2"`
}

// NewConvBnReLU2d returns the fused module of conv, bn and relu (nil relu
// means a new ReLU).
func NewConvBnReLU2d(conv *nn.Conv2d, bn *nn.BatchNorm2d, relu *nn.ReLU) (*ConvBnReLU2d, error) {
	if conv == nil || bn == nil {
		return nil, errors.New("intrinsic: ConvBnReLU2d: nil Conv2d or BatchNorm2d")
	}
	if err := checkBN("ConvBnReLU2d", conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	return &ConvBnReLU2d{Conv: conv, BN: bn, ReLU: orReLU(relu)}, nil
}

// TypeName returns "ConvBnReLU2d".
func (m *ConvBnReLU2d) TypeName() string { return "ConvBnReLU2d" }

// Forward returns relu(bn(conv(x))) for x [N, C, H, W].
func (m *ConvBnReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return m.ReLU.Forward(m.BN.Forward(m.Conv.Forward(x)))
	})
}

// LinearBn1d is Linear followed by BatchNorm1d
// (torch.nn.intrinsic.LinearBn1d).
type LinearBn1d struct {
	nn.Base
	Linear *nn.Linear      `nn:"0"`
	BN     *nn.BatchNorm1d `nn:"1"`
}

// NewLinearBn1d returns the fused module of linear and bn; bn must normalize
// linear's output features.
func NewLinearBn1d(linear *nn.Linear, bn *nn.BatchNorm1d) (*LinearBn1d, error) {
	if linear == nil || bn == nil {
		return nil, errors.New("intrinsic: LinearBn1d: nil Linear or BatchNorm1d")
	}
	if err := checkBN("LinearBn1d", linear.OutFeatures, &bn.BatchNorm); err != nil {
		return nil, err
	}
	return &LinearBn1d{Linear: linear, BN: bn}, nil
}

// TypeName returns "LinearBn1d".
func (m *LinearBn1d) TypeName() string { return "LinearBn1d" }

// Forward returns bn(linear(x)) for x [N, in].
func (m *LinearBn1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.BN.Forward(m.Linear.Forward(x)) })
}

func orReLU(r *nn.ReLU) *nn.ReLU {
	if r == nil {
		return nn.NewReLU()
	}
	return r
}

// checkBN reports whether bn normalizes n channels.
func checkBN(op string, n int, bn *nn.BatchNorm) error {
	if bn.NumFeatures != n {
		return fmt.Errorf("intrinsic: %s: batch norm has %d features, the layer before it %d outputs", op, bn.NumFeatures, n)
	}
	return nil
}
