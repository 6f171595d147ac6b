// Package fakequant simulates quantization during training (QAT), with the
// names and behaviour of torch.ao.quantization.fake_quantize: FakeQuantize
// (an observer plus fake quantization, each of which can be switched off),
// FixedQParamsFakeQuantize for ops with fixed output ranges, and
// LearnableFakeQuantize (LSQ). Gradients flow through the straight-through
// estimator of package ops, recorded by the one autograd dispatcher.
//
// A FakeQuantize is also an observer.Observer, so a QConfig's activation
// and weight factories can return either kind.
package fakequant

import (
	"errors"
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// FakeQuantizer is what QAT modules call on weights and activations.
type FakeQuantizer interface {
	observer.Observer
	// Forward observes x (when the observer is enabled) and returns its
	// fake-quantized value (when fake quantization is enabled), else x.
	Forward(x *tensor.Tensor) (*tensor.Tensor, error)
	// EnableObserver and EnableFakeQuant switch the two stages, as
	// torch's enable_observer/disable_observer and
	// enable_fake_quant/disable_fake_quant.
	EnableObserver(on bool)
	EnableFakeQuant(on bool)
}

// FakeQuantize is torch.ao.quantization.FakeQuantize: it runs its observer
// on each input, copies the observer's qparams, and fake-quantizes the input
// with them. Both stages are on by default.
type FakeQuantize struct {
	obs         observer.Observer
	observerOn  bool
	fakeQuantOn bool
	qparams     *tensor.QParams
}

// New returns a FakeQuantize around obs (which it owns). The integer range
// is the observer's (e.g. 0..127 for a reduce_range quint8 observer).
func New(obs observer.Observer) *FakeQuantize {
	return &FakeQuantize{obs: obs, observerOn: true, fakeQuantOn: true}
}

// Observer returns the wrapped observer.
func (f *FakeQuantize) Observer() observer.Observer { return f.obs }

// EnableObserver switches observation on or off.
func (f *FakeQuantize) EnableObserver(on bool) { f.observerOn = on }

// EnableFakeQuant switches fake quantization on or off.
func (f *FakeQuantize) EnableFakeQuant(on bool) { f.fakeQuantOn = on }

// ObserverEnabled reports whether observation is on.
func (f *FakeQuantize) ObserverEnabled() bool { return f.observerOn }

// FakeQuantEnabled reports whether fake quantization is on.
func (f *FakeQuantize) FakeQuantEnabled() bool { return f.fakeQuantOn }

// Forward observes x and fake-quantizes it, as FakeQuantize.forward.
func (f *FakeQuantize) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if f.observerOn {
		if err := f.obs.Observe(x.Detach()); err != nil {
			return nil, err
		}
		q, err := f.obs.CalculateQParams()
		if err != nil {
			return nil, err
		}
		f.qparams = q
	}
	if !f.fakeQuantOn {
		return x, nil
	}
	if f.qparams == nil {
		return nil, errors.New("fakequant: fake quantization is enabled but no qparams were ever computed (the observer is disabled and saw nothing)")
	}
	return Apply(x, f.qparams), nil
}

// Apply fake-quantizes x with q (per tensor, per channel, or per channel
// with float zero points) over q's integer range.
func Apply(x *tensor.Tensor, q *tensor.QParams) *tensor.Tensor {
	lo, hi := q.QuantMin, q.QuantMax
	switch {
	case q.Scheme == tensor.PerChannelAffineFloatQParams:
		return floatZeroPoint(x, q)
	case q.Scheme.PerChannel():
		return ops.FakeQuantizePerChannel(x, q.Scale, q.ZeroPoint, q.Axis, lo, hi)
	}
	return ops.FakeQuantizePerTensor(x, q.Scale[0], q.ZeroPoint[0], lo, hi)
}

// floatZeroPoint is fake quantization with float zero points (PyTorch's
// float_qparams scheme for embeddings): y = (clamp(RNE(x*(1/s) + zp), qmin,
// qmax) - zp) * s, with the straight-through gradient inside the range.
func floatZeroPoint(x *tensor.Tensor, q *tensor.QParams) *tensor.Tensor {
	axis := x.Axis(q.Axis)
	nch := x.Dim(axis)
	inner := 1
	for _, d := range x.Shape()[axis+1:] {
		inner *= d
	}
	src := x.F32()
	out := tensor.New(tensor.Float32, x.Shape()...)
	dst := out.F32()
	mask := make([]bool, len(src))
	lo, hi := float32(q.QuantMin), float32(q.QuantMax)
	for i, v := range src {
		c := (i / inner) % nch
		s, zp := q.Scale[c], q.ZeroPointF[c]
		r := float32(math.RoundToEven(float64(float32(v*(1/s)) + zp)))
		mask[i] = r >= lo && r <= hi
		r = min(max(r, lo), hi)
		dst[i] = float32(r-zp) * s
	}
	return ops.Apply("FakeQuantizeFloatQParams", nil, ops.Ts(x), ops.Ts(out), func(g []*tensor.Tensor) []*tensor.Tensor {
		gx := tensor.New(tensor.Float32, x.Shape()...)
		gs, gd := g[0].F32(), gx.F32()
		for i, m := range mask {
			if m {
				gd[i] = gs[i]
			}
		}
		return ops.Ts(gx)
	})
}

// Observe records x without fake-quantizing it.
func (f *FakeQuantize) Observe(x *tensor.Tensor) error { return f.obs.Observe(x) }

// CalculateQParams returns the current qparams: those copied at the last
// observed Forward, or the observer's when none were copied yet.
func (f *FakeQuantize) CalculateQParams() (*tensor.QParams, error) {
	if f.qparams != nil && !f.observerOn {
		return f.qparams.Clone(), nil
	}
	return f.obs.CalculateQParams()
}

// Config returns the observer's configuration.
func (f *FakeQuantize) Config() observer.Config { return f.obs.Config() }

// Reset forgets observed statistics and qparams.
func (f *FakeQuantize) Reset() { f.obs.Reset(); f.qparams = nil }

// Merge merges another FakeQuantize's observer state.
func (f *FakeQuantize) Merge(other observer.Observer) error {
	o, ok := other.(*FakeQuantize)
	if !ok {
		return fmt.Errorf("fakequant: cannot merge %T into FakeQuantize", other)
	}
	return f.obs.Merge(o.obs)
}

// MarshalBinary serializes the observer state.
func (f *FakeQuantize) MarshalBinary() ([]byte, error) { return f.obs.MarshalBinary() }

// UnmarshalBinary restores the observer state.
func (f *FakeQuantize) UnmarshalBinary(b []byte) error {
	f.qparams = nil
	return f.obs.UnmarshalBinary(b)
}

// FixedQParams is torch's FixedQParamsFakeQuantize: fake quantization with
// constant qparams, for ops whose output range is known (sigmoid, tanh,
// hardsigmoid, softmax).
type FixedQParams struct {
	*FakeQuantize
}

// NewFixedQParams returns fixed-qparams fake quantization with scale,
// zero point and range [quantMin, quantMax] of dtype.
func NewFixedQParams(scale float32, zeroPoint int32, dtype tensor.DType, quantMin, quantMax int32) *FixedQParams {
	obs := observer.NewFixedQParams(observer.FixedQParamsConfig{
		Config: observer.Config{Dtype: dtype, QuantMin: quantMin, QuantMax: quantMax, HasRange: true},
		Scale:  scale, ZeroPoint: zeroPoint,
	})
	return &FixedQParams{New(obs)}
}

// Preset fixed qparams (quint8) that PyTorch uses for ops with known ranges.
var (
	// SigmoidQParams covers [0, 1): sigmoid, hardsigmoid, softmax.
	SigmoidQParams = struct {
		Scale     float32
		ZeroPoint int32
	}{1.0 / 256, 0}
	// TanhQParams covers [-1, 1).
	TanhQParams = struct {
		Scale     float32
		ZeroPoint int32
	}{2.0 / 256, 128}
)

// NewFixedSigmoid returns FixedQParams for sigmoid/hardsigmoid/softmax
// outputs: scale 1/256, zero point 0, quint8 0..255.
func NewFixedSigmoid() *FixedQParams {
	return NewFixedQParams(SigmoidQParams.Scale, SigmoidQParams.ZeroPoint, tensor.QUInt8, 0, 255)
}

// NewFixedTanh returns FixedQParams for tanh outputs: scale 2/256, zero
// point 128, quint8 0..255.
func NewFixedTanh() *FixedQParams {
	return NewFixedQParams(TanhQParams.Scale, TanhQParams.ZeroPoint, tensor.QUInt8, 0, 255)
}

// NewFusedMovingAvgObs is quanta's FusedMovingAvgObsFakeQuantize: a moving
// average min/max observer plus fake quantization. PyTorch's fused kernel
// computes symmetric qparams differently from the observer used at convert
// time (max(|min|/128, max/127)); quanta uses the observer's formula in both
// places, so training simulates exactly the qparams that convert uses.
func NewFusedMovingAvgObs(cfg observer.MovingAverageConfig) *FakeQuantize {
	if cfg.QScheme.PerChannel() {
		return New(observer.NewMovingAveragePerChannelMinMax(cfg))
	}
	return New(observer.NewMovingAverageMinMax(cfg))
}
