// Package qat holds quanta's quantization-aware-training modules, after
// torch.ao.nn.qat (Linear, Conv1d, Conv2d) and torch.nn.intrinsic.qat
// (LinearReLU, ConvReLU1d/2d, ConvBn1d/2d, ConvBnReLU1d/2d, LinearBn1d).
//
// A QAT module computes in float32 but passes its weight through a fake
// quantizer made by its QConfig's Weight factory (PyTorch's weight_fake_quant)
// on every forward call, so training sees the rounding and clamping that the
// int8 model will apply; gradients cross the rounding by the straight-through
// estimator of ops.FakeQuantizePerTensor/PerChannel. The output activation is
// observed by the module's ActivationPostProcess, which eager-mode preparation
// attaches as for any module.
//
// Each module is made from its float (or fused intrinsic) counterpart by a
// FromFloat function that shares the float module's parameters, as PyTorch's
// from_float does, and goes back with ToFloat. Convert reads the weight's
// fake quantizer and ConvertWeights through the Module interface.
//
// The Conv-BN modules simulate the batch norm folding of the converted model
// with PyTorch's _forward_approximate; FreezeBNStats, UpdateBNStats,
// EnableObserver and EnableFakeQuant switch the simulation's stages over a
// whole model.
package qat

import (
	"errors"
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/tensor"
)

// Module is implemented by every QAT module of this package.
type Module interface {
	nn.Layer
	// WeightFakeQuantizer returns the fake quantizer of the weight
	// (PyTorch's weight_fake_quant); convert reads the weight's qparams
	// from it.
	WeightFakeQuantizer() fakequant.FakeQuantizer
	// ConvertWeights returns the float weight and bias that convert
	// quantizes: the module's own, or for ConvBn* and LinearBn1d new tensors
	// with the batch norm folded in (as nnq.Conv2d.from_float folds a
	// nniqat.ConvBn2d).
	ConvertWeights() (weight, bias *tensor.Tensor, err error)
	// ToFloat returns the float module (with the batch norm folded in for
	// ConvBn* and LinearBn1d), as PyTorch's to_float.
	ToFloat() (nn.Layer, error)
}

// qconfigOf returns qc, or when qc is nil the QConfig attached to m.
func qconfigOf(op string, m nn.Module, qc *quant.QConfig) (*quant.QConfig, error) {
	if qc == nil {
		if c, ok := m.ModuleBase().QConfig.(*quant.QConfig); ok {
			qc = c
		}
	}
	if qc == nil {
		return nil, fmt.Errorf("qat: %s: no qconfig given and the float module carries none", op)
	}
	if qc.Weight == nil {
		return nil, fmt.Errorf("qat: %s: qconfig %q has no weight factory", op, qc.Name)
	}
	return qc, nil
}

// newWeightFakeQuant makes the weight fake quantizer of qc. A factory
// that returns a plain observer is wrapped in a FakeQuantize.
func newWeightFakeQuant(op string, qc *quant.QConfig) (fakequant.FakeQuantizer, error) {
	obs := qc.Weight()
	if obs == nil {
		return nil, fmt.Errorf("qat: %s: qconfig %q weight factory returned nil", op, qc.Name)
	}
	if fq, ok := obs.(fakequant.FakeQuantizer); ok {
		return fq, nil
	}
	return fakequant.New(obs), nil
}

// prepare returns the qconfig and weight fake quantizer for a module built
// from float module m.
func prepare(op string, m nn.Module, qc *quant.QConfig) (*quant.QConfig, fakequant.FakeQuantizer, error) {
	if m == nil {
		return nil, nil, fmt.Errorf("qat: %s: nil float module", op)
	}
	qc, err := qconfigOf(op, m, qc)
	if err != nil {
		return nil, nil, err
	}
	fq, err := newWeightFakeQuant(op, qc)
	if err != nil {
		return nil, nil, err
	}
	return qc, fq, nil
}

// fakeQuantWeight runs fq on w. A failure (a NaN or Inf weight, or fake
// quantization enabled with the observer off before any qparams exist) is a
// training bug the Layer interface cannot return, so it panics.
func fakeQuantWeight(op string, fq fakequant.FakeQuantizer, w *tensor.Tensor) *tensor.Tensor {
	y, err := fq.Forward(w)
	if err != nil {
		panic(fmt.Sprintf("qat: %s: weight fake quantization: %v", op, err))
	}
	return y
}

// share returns a leaf that shares t's storage and requires grad (a new
// nn.Parameter over the same data, as PyTorch's to_float makes).
func share(t *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		return nil
	}
	return t.Detach().SetRequiresGrad(true)
}

var errNilModule = errors.New("qat: nil module")

// Linear is torch.ao.nn.qat.Linear: y = x fq(W)^T + b.
type Linear struct {
	nn.Linear
	// WeightFakeQuant fake-quantizes the weight on each forward call.
	WeightFakeQuant fakequant.FakeQuantizer
}

// LinearFromFloat returns the QAT version of m sharing its parameters. A nil
// qc means m's own QConfig.
func LinearFromFloat(m *nn.Linear, qc *quant.QConfig) (*Linear, error) {
	if m == nil {
		return nil, errNilModule
	}
	qc, fq, err := prepare("Linear", m, qc)
	if err != nil {
		return nil, err
	}
	out := &Linear{Linear: nn.Linear{InFeatures: m.InFeatures, OutFeatures: m.OutFeatures, Weight: m.Weight, Bias: m.Bias}, WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

// TypeName returns "qat.Linear".
func (m *Linear) TypeName() string { return "qat.Linear" }

// Forward applies the layer with the fake-quantized weight.
func (m *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.Linear(x, fakeQuantWeight("Linear", m.WeightFakeQuant, m.Weight), m.Bias)
	})
}

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *Linear) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns the weight and bias.
func (m *Linear) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return m.Weight, m.Bias, nil
}

// ToFloat returns an nn.Linear sharing the parameters' storage.
func (m *Linear) ToFloat() (nn.Layer, error) { return m.toFloat(), nil }

func (m *Linear) toFloat() *nn.Linear {
	l := &nn.Linear{InFeatures: m.InFeatures, OutFeatures: m.OutFeatures, Weight: share(m.Weight), Bias: share(m.Bias)}
	copyMode(l, m)
	return l
}

// copyMode gives dst src's training mode (to_float's conv.train(self.training)).
func copyMode(dst, src nn.Module) {
	if src.ModuleBase().Training() {
		nn.Train(dst)
	} else {
		nn.Eval(dst)
	}
}

// Conv1d is torch.ao.nn.qat.Conv1d: a Conv1d with a fake-quantized weight.
type Conv1d struct {
	nn.Conv1d
	// WeightFakeQuant fake-quantizes the weight on each forward call.
	WeightFakeQuant fakequant.FakeQuantizer
}

// Conv1dFromFloat returns the QAT version of m sharing its parameters. A nil
// qc means m's own QConfig.
func Conv1dFromFloat(m *nn.Conv1d, qc *quant.QConfig) (*Conv1d, error) {
	if m == nil {
		return nil, errNilModule
	}
	qc, fq, err := prepare("Conv1d", m, qc)
	if err != nil {
		return nil, err
	}
	out := &Conv1d{Conv1d: conv1dLike(m, m.Weight, m.Bias), WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

func conv1dLike(m *nn.Conv1d, w, b *tensor.Tensor) nn.Conv1d {
	return nn.Conv1d{InChannels: m.InChannels, OutChannels: m.OutChannels, KernelSize: m.KernelSize,
		Stride: m.Stride, Padding: m.Padding, Dilation: m.Dilation, Groups: m.Groups, Weight: w, Bias: b}
}

// TypeName returns "qat.Conv1d".
func (m *Conv1d) TypeName() string { return "qat.Conv1d" }

// Forward convolves x [N, C, L] with the fake-quantized weight.
func (m *Conv1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.Conv1d(x, fakeQuantWeight("Conv1d", m.WeightFakeQuant, m.Weight), m.Bias, m.Attrs())
	})
}

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *Conv1d) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns the weight and bias.
func (m *Conv1d) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return m.Weight, m.Bias, nil
}

// ToFloat returns an nn.Conv1d sharing the parameters' storage.
func (m *Conv1d) ToFloat() (nn.Layer, error) { return m.toFloat(), nil }

func (m *Conv1d) toFloat() *nn.Conv1d {
	c := conv1dLike(&m.Conv1d, share(m.Weight), share(m.Bias))
	copyMode(&c, m)
	return &c
}

// Conv2d is torch.ao.nn.qat.Conv2d: a Conv2d with a fake-quantized weight.
type Conv2d struct {
	nn.Conv2d
	// WeightFakeQuant fake-quantizes the weight on each forward call.
	WeightFakeQuant fakequant.FakeQuantizer
}

// Conv2dFromFloat returns the QAT version of m sharing its parameters. A nil
// qc means m's own QConfig.
func Conv2dFromFloat(m *nn.Conv2d, qc *quant.QConfig) (*Conv2d, error) {
	if m == nil {
		return nil, errNilModule
	}
	qc, fq, err := prepare("Conv2d", m, qc)
	if err != nil {
		return nil, err
	}
	out := &Conv2d{Conv2d: conv2dLike(m, m.Weight, m.Bias), WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

func conv2dLike(m *nn.Conv2d, w, b *tensor.Tensor) nn.Conv2d {
	return nn.Conv2d{InChannels: m.InChannels, OutChannels: m.OutChannels, KernelSize: m.KernelSize,
		Stride: m.Stride, Padding: m.Padding, Dilation: m.Dilation, Groups: m.Groups, Weight: w, Bias: b}
}

// TypeName returns "qat.Conv2d".
func (m *Conv2d) TypeName() string { return "qat.Conv2d" }

// Forward convolves x [N, C, H, W] with the fake-quantized weight.
func (m *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return ops.Conv2d(x, fakeQuantWeight("Conv2d", m.WeightFakeQuant, m.Weight), m.Bias, m.Attrs())
	})
}

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *Conv2d) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns the weight and bias.
func (m *Conv2d) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return m.Weight, m.Bias, nil
}

// ToFloat returns an nn.Conv2d sharing the parameters' storage.
func (m *Conv2d) ToFloat() (nn.Layer, error) { return m.toFloat(), nil }

func (m *Conv2d) toFloat() *nn.Conv2d {
	c := conv2dLike(&m.Conv2d, share(m.Weight), share(m.Bias))
	copyMode(&c, m)
	return &c
}
