package qat

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/tensor"
)

// approximate is PyTorch's _ConvBnNd._forward_approximate (and
// LinearBn1d.forward) for a layer with weight w [out, ...] and bias b:
//
//	running_std  = sqrt(running_var + eps)
//	scale_factor = gamma / running_std
//	y = layer(x, fq(w * scale_factor[out, 1, ...]), zero bias)
//	y = y / scale_factor[1, out, 1, ...] + b[1, out, 1, ...]
//	y = bn(y)
//
// bn runs through bnForward (batch statistics and running-stat updates in
// training mode, running statistics in eval mode), or in evaluation form
// whatever its mode when frozen.
func approximate(op string, x, w, b *tensor.Tensor, bn *nn.BatchNorm, bnForward func(*tensor.Tensor) *tensor.Tensor,
	frozen bool, fq fakequant.FakeQuantizer, layer func(x, w *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	out := w.Dim(0)
	std := ops.Sqrt(ops.AddScalar(bn.RunningVar, bn.Eps))
	gamma := bn.Weight
	if gamma == nil {
		gamma = tensor.Ones(out)
	}
	scale := ops.Div(gamma, std)
	wShape := make([]int, w.NDim())
	bShape := make([]int, w.NDim())
	for i := range wShape {
		wShape[i], bShape[i] = 1, 1
	}
	wShape[0], bShape[1] = out, out
	y := layer(x, fakeQuantWeight(op, fq, ops.Mul(w, ops.Reshape(scale, wShape...))))
	y = ops.Div(y, ops.Reshape(scale, bShape...))
	if b != nil {
		y = ops.Add(y, ops.Reshape(b, bShape...))
	}
	if frozen {
		return ops.BatchNorm(y, bn.RunningMean, bn.RunningVar, bn.Weight, bn.Bias, false, bn.Momentum, bn.Eps)
	}
	return bnForward(y)
}

// checkFoldable reports an error when bn cannot take part in the simulated
// folding.
func checkFoldable(op string, out int, bn *nn.BatchNorm) error {
	if bn.RunningMean == nil || bn.RunningVar == nil {
		return fmt.Errorf("qat: %s: the batch norm keeps no running statistics", op)
	}
	if bn.NumFeatures != out {
		return fmt.Errorf("qat: %s: batch norm has %d features, the layer %d outputs", op, bn.NumFeatures, out)
	}
	return nil
}

// ConvBn2d is torch.nn.intrinsic.qat.ConvBn2d: a Conv2d (weight and bias
// at the top level, as in PyTorch's state dict) with its BatchNorm2d child
// "bn", trained with the folding simulated (see package doc). The batch norm
// updates its running statistics in training mode until FreezeBNStats.
type ConvBn2d struct {
	nn.Conv2d
	BN *nn.BatchNorm2d `nn:"bn"`
	// WeightFakeQuant fake-quantizes the BN-scaled weight on each forward
	// call.
	WeightFakeQuant fakequant.FakeQuantizer
	frozen          bool
}

// ConvBn2dFromFloat returns the QAT version of the fused m, sharing its
// parameters and batch norm. A nil qc means the QConfig of m (or of its
// Conv2d).
func ConvBn2dFromFloat(m *intrinsic.ConvBn2d, qc *quant.QConfig) (*ConvBn2d, error) {
	if m == nil {
		return nil, errNilModule
	}
	return newConvBn2d("ConvBn2d", m, m.Conv, m.BN, qc)
}

func newConvBn2d(op string, fused nn.Module, conv *nn.Conv2d, bn *nn.BatchNorm2d, qc *quant.QConfig) (*ConvBn2d, error) {
	if conv == nil || bn == nil {
		return nil, errNilModule
	}
	if err := checkFoldable(op, conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	qc = orQConfig(fused, qc)
	qc, fq, err := prepare(op, conv, qc)
	if err != nil {
		return nil, err
	}
	out := &ConvBn2d{Conv2d: conv2dLike(conv, conv.Weight, conv.Bias), BN: bn, WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

// TypeName returns "qat.ConvBn2d".
func (m *ConvBn2d) TypeName() string { return "qat.ConvBn2d" }

func (m *ConvBn2d) forward(op string, x *tensor.Tensor) *tensor.Tensor {
	return approximate(op, x, m.Weight, m.Bias, &m.BN.BatchNorm, m.BN.Forward, m.frozen, m.WeightFakeQuant,
		func(x, w *tensor.Tensor) *tensor.Tensor { return ops.Conv2d(x, w, nil, m.Attrs()) })
}

// Forward computes bn(conv(x)) for x [N, C, H, W] with the folding
// simulated.
func (m *ConvBn2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("ConvBn2d", x) })
}

// FreezeBNStats makes the batch norm use and keep its running statistics
// even in training mode (nniqat's freeze_bn_stats).
func (m *ConvBn2d) FreezeBNStats() { m.frozen = true }

// UpdateBNStats undoes FreezeBNStats (update_bn_stats).
func (m *ConvBn2d) UpdateBNStats() { m.frozen = false }

// BNStatsFrozen reports whether FreezeBNStats is in effect.
func (m *ConvBn2d) BNStatsFrozen() bool { return m.frozen }

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *ConvBn2d) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns new tensors holding the weight and bias with the
// batch norm's running statistics folded in.
func (m *ConvBn2d) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return intrinsic.FuseConvBNWeights(m.Weight, m.Bias, &m.BN.BatchNorm)
}

// ToFloat returns an nn.Conv2d with the batch norm folded in.
func (m *ConvBn2d) ToFloat() (nn.Layer, error) { return m.toFloat() }

func (m *ConvBn2d) toFloat() (*nn.Conv2d, error) {
	w, b, err := m.ConvertWeights()
	if err != nil {
		return nil, err
	}
	c := conv2dLike(&m.Conv2d, w, b)
	copyMode(&c, m)
	return &c, nil
}

// ConvBnReLU2d is torch.nn.intrinsic.qat.ConvBnReLU2d: ConvBn2d followed by
// ReLU.
type ConvBnReLU2d struct{ ConvBn2d }

// ConvBnReLU2dFromFloat returns the QAT version of the fused m, sharing its
// parameters and batch norm. A nil qc means the QConfig of m (or of its
// Conv2d).
func ConvBnReLU2dFromFloat(m *intrinsic.ConvBnReLU2d, qc *quant.QConfig) (*ConvBnReLU2d, error) {
	if m == nil {
		return nil, errNilModule
	}
	c, err := newConvBn2d("ConvBnReLU2d", m, m.Conv, m.BN, qc)
	if err != nil {
		return nil, err
	}
	return &ConvBnReLU2d{ConvBn2d: *c}, nil
}

// TypeName returns "qat.ConvBnReLU2d".
func (m *ConvBnReLU2d) TypeName() string { return "qat.ConvBnReLU2d" }

// Forward computes relu(bn(conv(x))) for x [N, C, H, W] with the folding
// simulated.
func (m *ConvBnReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.ReLU(m.forward("ConvBnReLU2d", x)) })
}

// ToFloat returns an intrinsic.ConvReLU2d whose conv has the batch norm
// folded in.
func (m *ConvBnReLU2d) ToFloat() (nn.Layer, error) {
	c, err := m.toFloat()
	if err != nil {
		return nil, err
	}
	f, err := intrinsic.NewConvReLU2d(c, nil)
	if err != nil {
		return nil, err
	}
	copyMode(f, m)
	return f, nil
}

// ConvBn1d is torch.nn.intrinsic.qat.ConvBn1d: ConvBn2d for Conv1d and
// BatchNorm1d over [N, C, L] inputs.
type ConvBn1d struct {
	nn.Conv1d
	BN *nn.BatchNorm1d `nn:"bn"`
	// WeightFakeQuant fake-quantizes the BN-scaled weight on each forward
	// call.
	WeightFakeQuant fakequant.FakeQuantizer
	frozen          bool
}

// ConvBn1dFromFloat returns the QAT version of the fused m, sharing its
// parameters and batch norm. A nil qc means the QConfig of m (or of its
// Conv1d).
func ConvBn1dFromFloat(m *intrinsic.ConvBn1d, qc *quant.QConfig) (*ConvBn1d, error) {
	if m == nil {
		return nil, errNilModule
	}
	return newConvBn1d("ConvBn1d", m, m.Conv, m.BN, qc)
}

func newConvBn1d(op string, fused nn.Module, conv *nn.Conv1d, bn *nn.BatchNorm1d, qc *quant.QConfig) (*ConvBn1d, error) {
	if conv == nil || bn == nil {
		return nil, errNilModule
	}
	if err := checkFoldable(op, conv.OutChannels, &bn.BatchNorm); err != nil {
		return nil, err
	}
	qc = orQConfig(fused, qc)
	qc, fq, err := prepare(op, conv, qc)
	if err != nil {
		return nil, err
	}
	out := &ConvBn1d{Conv1d: conv1dLike(conv, conv.Weight, conv.Bias), BN: bn, WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

// TypeName returns "qat.ConvBn1d".
func (m *ConvBn1d) TypeName() string { return "qat.ConvBn1d" }

func (m *ConvBn1d) forward(op string, x *tensor.Tensor) *tensor.Tensor {
	return approximate(op, x, m.Weight, m.Bias, &m.BN.BatchNorm, m.BN.Forward, m.frozen, m.WeightFakeQuant,
		func(x, w *tensor.Tensor) *tensor.Tensor { return ops.Conv1d(x, w, nil, m.Attrs()) })
}

// Forward computes bn(conv(x)) for x [N, C, L] with the folding simulated.
func (m *ConvBn1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("ConvBn1d", x) })
}

// FreezeBNStats makes the batch norm use and keep its running statistics
// even in training mode.
func (m *ConvBn1d) FreezeBNStats() { m.frozen = true }

// UpdateBNStats undoes FreezeBNStats.
func (m *ConvBn1d) UpdateBNStats() { m.frozen = false }

// BNStatsFrozen reports whether FreezeBNStats is in effect.
func (m *ConvBn1d) BNStatsFrozen() bool { return m.frozen }

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *ConvBn1d) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns new tensors holding the weight and bias with the
// batch norm's running statistics folded in.
func (m *ConvBn1d) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return intrinsic.FuseConvBNWeights(m.Weight, m.Bias, &m.BN.BatchNorm)
}

// ToFloat returns an nn.Conv1d with the batch norm folded in.
func (m *ConvBn1d) ToFloat() (nn.Layer, error) { return m.toFloat() }

func (m *ConvBn1d) toFloat() (*nn.Conv1d, error) {
	w, b, err := m.ConvertWeights()
	if err != nil {
		return nil, err
	}
	c := conv1dLike(&m.Conv1d, w, b)
	copyMode(&c, m)
	return &c, nil
}

// ConvBnReLU1d is torch.nn.intrinsic.qat.ConvBnReLU1d: ConvBn1d followed by
// ReLU.
type ConvBnReLU1d struct{ ConvBn1d }

// ConvBnReLU1dFromFloat returns the QAT version of the fused m, sharing its
// parameters and batch norm.
func ConvBnReLU1dFromFloat(m *intrinsic.ConvBnReLU1d, qc *quant.QConfig) (*ConvBnReLU1d, error) {
	if m == nil {
		return nil, errNilModule
	}
	c, err := newConvBn1d("ConvBnReLU1d", m, m.Conv, m.BN, qc)
	if err != nil {
		return nil, err
	}
	return &ConvBnReLU1d{ConvBn1d: *c}, nil
}

// TypeName returns "qat.ConvBnReLU1d".
func (m *ConvBnReLU1d) TypeName() string { return "qat.ConvBnReLU1d" }

// Forward computes relu(bn(conv(x))) for x [N, C, L] with the folding
// simulated.
func (m *ConvBnReLU1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.ReLU(m.forward("ConvBnReLU1d", x)) })
}

// ToFloat returns an intrinsic.ConvReLU1d whose conv has the batch norm
// folded in.
func (m *ConvBnReLU1d) ToFloat() (nn.Layer, error) {
	c, err := m.toFloat()
	if err != nil {
		return nil, err
	}
	f, err := intrinsic.NewConvReLU1d(c, nil)
	if err != nil {
		return nil, err
	}
	copyMode(f, m)
	return f, nil
}

// LinearBn1d is torch.nn.intrinsic.qat.LinearBn1d: a Linear with its
// BatchNorm1d child "bn", trained with the folding simulated as ConvBn2d.
type LinearBn1d struct {
	nn.Linear
	BN *nn.BatchNorm1d `nn:"bn"`
	// WeightFakeQuant fake-quantizes the BN-scaled weight on each forward
	// call.
	WeightFakeQuant fakequant.FakeQuantizer
	frozen          bool
}

// LinearBn1dFromFloat returns the QAT version of the fused m, sharing its
// parameters and batch norm. A nil qc means the QConfig of m (or of its
// Linear).
func LinearBn1dFromFloat(m *intrinsic.LinearBn1d, qc *quant.QConfig) (*LinearBn1d, error) {
	if m == nil || m.Linear == nil || m.BN == nil {
		return nil, errNilModule
	}
	if err := checkFoldable("LinearBn1d", m.Linear.OutFeatures, &m.BN.BatchNorm); err != nil {
		return nil, err
	}
	qc, fq, err := prepare("LinearBn1d", m.Linear, orQConfig(m, qc))
	if err != nil {
		return nil, err
	}
	l := m.Linear
	out := &LinearBn1d{Linear: nn.Linear{InFeatures: l.InFeatures, OutFeatures: l.OutFeatures, Weight: l.Weight, Bias: l.Bias}, BN: m.BN, WeightFakeQuant: fq}
	out.QConfig = qc
	return out, nil
}

// TypeName returns "qat.LinearBn1d".
func (m *LinearBn1d) TypeName() string { return "qat.LinearBn1d" }

// Forward computes bn(linear(x)) for x [N, in] with the folding simulated.
func (m *LinearBn1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return approximate("LinearBn1d", x, m.Weight, m.Bias, &m.BN.BatchNorm, m.BN.Forward, m.frozen, m.WeightFakeQuant,
			func(x, w *tensor.Tensor) *tensor.Tensor { return ops.Linear(x, w, nil) })
	})
}

// FreezeBNStats makes the batch norm use and keep its running statistics
// even in training mode.
func (m *LinearBn1d) FreezeBNStats() { m.frozen = true }

// UpdateBNStats undoes FreezeBNStats.
func (m *LinearBn1d) UpdateBNStats() { m.frozen = false }

// BNStatsFrozen reports whether FreezeBNStats is in effect.
func (m *LinearBn1d) BNStatsFrozen() bool { return m.frozen }

// WeightFakeQuantizer returns the weight's fake quantizer.
func (m *LinearBn1d) WeightFakeQuantizer() fakequant.FakeQuantizer { return m.WeightFakeQuant }

// ConvertWeights returns new tensors holding the weight and bias with the
// batch norm's running statistics folded in (fuse_linear_bn_weights).
func (m *LinearBn1d) ConvertWeights() (weight, bias *tensor.Tensor, err error) {
	return intrinsic.FuseLinearBNWeights(m.Weight, m.Bias, &m.BN.BatchNorm)
}

// ToFloat returns an nn.Linear with the batch norm folded in.
func (m *LinearBn1d) ToFloat() (nn.Layer, error) {
	w, b, err := m.ConvertWeights()
	if err != nil {
		return nil, err
	}
	l := &nn.Linear{InFeatures: m.InFeatures, OutFeatures: m.OutFeatures, Weight: w, Bias: b}
	copyMode(l, m)
	return l, nil
}
