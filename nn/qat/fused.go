package qat

import (
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// LinearReLU is torch.nn.intrinsic.qat.LinearReLU: relu(x fq(W)^T + b).
type LinearReLU struct{ Linear }

// LinearReLUFromFloat returns the QAT version of the fused m, sharing its
// parameters. A nil qc means the QConfig of m (or of its Linear).
func LinearReLUFromFloat(m *intrinsic.LinearReLU, qc *quant.QConfig) (*LinearReLU, error) {
	if m == nil {
		return nil, errNilModule
	}
	l, err := LinearFromFloat(m.Linear, orQConfig(m, qc))
	if err != nil {
		return nil, err
	}
	return &LinearReLU{*l}, nil
}

// orQConfig returns qc, else the qconfig attached to the fused module m
// (nil if none: the child's is used then).
func orQConfig(m nn.Module, qc *quant.QConfig) *quant.QConfig {
	if qc != nil {
		return qc
	}
	c, _ := m.ModuleBase().QConfig.(*quant.QConfig)
	return c
}

// TypeName returns "qat.LinearReLU".
func (m *LinearReLU) TypeName() string { return "qat.LinearReLU" }

// Forward applies the layer with the fake-quantized weight, then ReLU.
func (m *LinearReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.ReLU(ops.Linear(x, fakeQuantWeight("LinearReLU", m.WeightFakeQuant, m.Weight), m.Bias))
	})
}

// ToFloat returns an intrinsic.LinearReLU sharing the parameters' storage.
func (m *LinearReLU) ToFloat() (nn.Layer, error) {
	f, err := intrinsic.NewLinearReLU(m.toFloat(), nil)
	if err != nil {
		return nil, err
	}
	copyMode(f, m)
	return f, nil
}

// ConvReLU1d is torch.nn.intrinsic.qat.ConvReLU1d: relu(conv(x, fq(W)) + b).
type ConvReLU1d struct{ Conv1d }

// ConvReLU1dFromFloat returns the QAT version of the fused m, sharing its
// parameters. A nil qc means the QConfig of m (or of its Conv1d).
func ConvReLU1dFromFloat(m *intrinsic.ConvReLU1d, qc *quant.QConfig) (*ConvReLU1d, error) {
	if m == nil {
		return nil, errNilModule
	}
	c, err := Conv1dFromFloat(m.Conv, orQConfig(m, qc))
	if err != nil {
		return nil, err
	}
	return &ConvReLU1d{*c}, nil
}

// TypeName returns "qat.ConvReLU1d".
func (m *ConvReLU1d) TypeName() string { return "qat.ConvReLU1d" }

// Forward convolves x [N, C, L] with the fake-quantized weight, then ReLU.
func (m *ConvReLU1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.ReLU(ops.Conv1d(x, fakeQuantWeight("ConvReLU1d", m.WeightFakeQuant, m.Weight), m.Bias, m.Attrs()))
	})
}

// ToFloat returns an intrinsic.ConvReLU1d sharing the parameters' storage.
func (m *ConvReLU1d) ToFloat() (nn.Layer, error) {
	f, err := intrinsic.NewConvReLU1d(m.toFloat(), nil)
	if err != nil {
		return nil, err
	}
	copyMode(f, m)
	return f, nil
}

// ConvReLU2d is torch.nn.intrinsic.qat.ConvReLU2d: relu(conv(x, fq(W)) + b).
type ConvReLU2d struct{ Conv2d }

// ConvReLU2dFromFloat returns the QAT version of the fused m, sharing its
// parameters. A nil qc means the QConfig of m (or of its Conv2d).
func ConvReLU2dFromFloat(m *intrinsic.ConvReLU2d, qc *quant.QConfig) (*ConvReLU2d, error) {
	if m == nil {
		return nil, errNilModule
	}
	c, err := Conv2dFromFloat(m.Conv, orQConfig(m, qc))
	if err != nil {
		return nil, err
	}
	return &ConvReLU2d{*c}, nil
}

// TypeName returns "qat.ConvReLU2d".
func (m *ConvReLU2d) TypeName() string { return "qat.ConvReLU2d" }

// Forward convolves x [N, C, H, W] with the fake-quantized weight, then ReLU.
func (m *ConvReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.ReLU(ops.Conv2d(x, fakeQuantWeight("ConvReLU2d", m.WeightFakeQuant, m.Weight), m.Bias, m.Attrs()))
	})
}

// ToFloat returns an intrinsic.ConvReLU2d sharing the parameters' storage.
func (m *ConvReLU2d) ToFloat() (nn.Layer, error) {
	f, err := intrinsic.NewConvReLU2d(m.toFloat(), nil)
	if err != nil {
		return nil, err
	}
	copyMode(f, m)
	return f, nil
}
