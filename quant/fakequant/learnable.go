package fakequant

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Learnable is PyTorch's _LearnableFakeQuantize (LSQ / TQT), per tensor:
// Scale and ZeroPoint are one-element float32 parameters that training
// updates through the gradients of ops.FakeQuantizeLearnable. While
// StaticEstimate is on, the observer sets them from the data (PyTorch's
// enable_static_estimate); EnableParamLearning turns that off and lets the
// optimizer move them.
type Learnable struct {
	obs observer.Observer
	// Scale and ZeroPoint are the learned parameters (RequiresGrad).
	Scale, ZeroPoint *tensor.Tensor
	// UseGradScaling multiplies both gradients by 1/sqrt(numel*quant_max),
	// LSQ's gradient scale.
	UseGradScaling bool
	// StaticEstimate copies the observer's qparams into the parameters on
	// each Forward.
	StaticEstimate bool
	fakeQuantOn    bool
	qmin, qmax     int32
	symmetric      bool
	eps            float32
}

// NewLearnable returns a learnable fake quantizer around a per-tensor
// observer, starting in static-estimate mode with scale 1 and zero point 0.
func NewLearnable(obs observer.Observer) (*Learnable, error) {
	cfg := obs.Config()
	q, err := probeRange(obs)
	if err != nil {
		return nil, err
	}
	if q.Scheme.PerChannel() || len(q.Scale) != 1 {
		return nil, fmt.Errorf("fakequant: Learnable supports per-tensor observers; got %v", q.Scheme)
	}
	eps := cfg.Eps
	if eps == 0 {
		eps = 1.1920928955078125e-07
	}
	return &Learnable{
		obs:            obs,
		Scale:          tensor.FromFloat32([]float32{1}).SetRequiresGrad(true),
		ZeroPoint:      tensor.FromFloat32([]float32{0}).SetRequiresGrad(true),
		StaticEstimate: true,
		fakeQuantOn:    true,
		qmin:           q.QuantMin, qmax: q.QuantMax,
		symmetric: cfg.QScheme == tensor.PerTensorSymmetric,
		eps:       eps,
	}, nil
}

// probeRange finds the observer's integer range by observing a tiny
// tensor on a copy of its state.
func probeRange(obs observer.Observer) (*tensor.QParams, error) {
	state, err := obs.MarshalBinary()
	if err != nil {
		return nil, err
	}
	probe, err := observer.DecodeObserver(state)
	if err != nil {
		return nil, err
	}
	probe.Reset()
	if err := probe.Observe(tensor.FromFloat32([]float32{-1, 1})); err != nil {
		return nil, err
	}
	return probe.CalculateQParams()
}

// EnableParamLearning stops static estimation: the parameters are learned.
func (l *Learnable) EnableParamLearning() { l.StaticEstimate = false; l.fakeQuantOn = true }

// EnableFakeQuant switches fake quantization on or off.
func (l *Learnable) EnableFakeQuant(on bool) { l.fakeQuantOn = on }

// Forward observes x in static-estimate mode and fake-quantizes it with the
// current (learnable) scale and zero point.
func (l *Learnable) Forward(x *tensor.Tensor) (*tensor.Tensor, error) {
	if l.StaticEstimate {
		if err := l.obs.Observe(x.Detach()); err != nil {
			return nil, err
		}
		q, err := l.obs.CalculateQParams()
		if err != nil {
			return nil, err
		}
		l.Scale.F32()[0] = q.Scale[0]
		l.ZeroPoint.F32()[0] = float32(q.ZeroPoint[0])
	} else if s := l.Scale.F32(); s[0] < l.eps {
		s[0] = l.eps
	}
	if !l.fakeQuantOn {
		return x, nil
	}
	if l.symmetric {
		l.ZeroPoint.F32()[0] = 0
	}
	gf := float32(1)
	if l.UseGradScaling {
		gf = float32(1 / math.Sqrt(float64(x.Numel())*float64(l.qmax)))
	}
	return ops.FakeQuantizeLearnable(x, l.Scale, l.ZeroPoint, l.qmin, l.qmax, gf), nil
}

// CalculateQParams returns the current scale and the rounded, clamped zero
// point, as PyTorch's calculate_qparams.
func (l *Learnable) CalculateQParams() (*tensor.QParams, error) {
	s := max(l.Scale.F32()[0], l.eps)
	zp := float32(math.RoundToEven(float64(l.ZeroPoint.F32()[0])))
	zp = min(max(zp, float32(l.qmin)), float32(l.qmax))
	return &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{s}, ZeroPoint: []int32{int32(zp)}, QuantMin: l.qmin, QuantMax: l.qmax}, nil
}
