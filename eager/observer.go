package eager

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// ObserverModule is the module Prepare attaches as a module's
// activation_post_process: it wraps an observer (post-training
// quantization) or a fake quantizer (quantization-aware training) made by
// the module's QConfig.Activation factory. Forward observes its input and
// returns it, fake-quantized when the wrapped value is a fake quantizer with
// fake quantization enabled. Observation errors (NaN or Inf in calibration
// data) cannot be returned by Forward; the first one is kept and Convert
// reports it with the module's path.
type ObserverModule struct {
	nn.Base
	// Observer is the wrapped observer or fakequant.FakeQuantizer.
	Observer observer.Observer

	err   error
	calls int
}

// NewObserverModule wraps obs.
func NewObserverModule(obs observer.Observer) *ObserverModule {
	return &ObserverModule{Observer: obs}
}

// TypeName reports the wrapped kind: "FakeQuantize" for fake quantizers,
// else "Observer".
func (o *ObserverModule) TypeName() string {
	if _, ok := o.Observer.(fakequant.FakeQuantizer); ok {
		return "FakeQuantize"
	}
	return "Observer"
}

// Forward observes x and returns it (fake-quantized in QAT).
func (o *ObserverModule) Forward(x *tensor.Tensor) *tensor.Tensor {
	if x == nil || o.Observer == nil {
		return x
	}
	if x.DType() != tensor.Float32 {
		o.fail(fmt.Errorf("observed a %s tensor %v; observers take float32 activations (is a module already quantized?)", x.DType(), x.Shape()))
		return x
	}
	o.calls++
	if fq, ok := o.Observer.(fakequant.FakeQuantizer); ok {
		y, err := fq.Forward(x)
		if err != nil {
			o.fail(err)
			return x
		}
		return y
	}
	if err := o.Observer.Observe(x.Detach()); err != nil {
		o.fail(err)
	}
	return x
}

func (o *ObserverModule) fail(err error) {
	if o.err == nil {
		o.err = err
	}
}

// Err returns the first error met while observing, or nil.
func (o *ObserverModule) Err() error { return o.err }

// Calls returns how many tensors the module has observed.
func (o *ObserverModule) Calls() int { return o.calls }

// CalculateQParams returns the wrapped observer's qparams.
func (o *ObserverModule) CalculateQParams() (*tensor.QParams, error) {
	if o.err != nil {
		return nil, o.err
	}
	if o.Observer == nil {
		return nil, fmt.Errorf("no observer")
	}
	return o.Observer.CalculateQParams()
}

// EnableObserver switches observation on or off when the wrapped value is a
// fake quantizer (torch.ao.quantization.enable_observer/disable_observer);
// nn/qat.EnableObserver reaches it through the model tree.
func (o *ObserverModule) EnableObserver(on bool) {
	if fq, ok := o.Observer.(fakequant.FakeQuantizer); ok {
		fq.EnableObserver(on)
	}
}

// EnableFakeQuant switches fake quantization on or off when the wrapped
// value is a fake quantizer.
func (o *ObserverModule) EnableFakeQuant(on bool) {
	if fq, ok := o.Observer.(fakequant.FakeQuantizer); ok {
		fq.EnableFakeQuant(on)
	}
}

// observerHook is the forward hook Prepare registers: it passes the
// module's first output through its current activation_post_process when
// that is an ObserverModule, so that clearing the slot (as Convert does for
// modules it keeps float) disables it.
func observerHook(m nn.Module, _, outputs []*tensor.Tensor) []*tensor.Tensor {
	app, ok := m.ModuleBase().ActivationPostProcess.(*ObserverModule)
	if !ok || app == nil || len(outputs) == 0 {
		return nil
	}
	outputs[0] = app.Forward(outputs[0])
	return outputs
}

// frozenWeightObserver hands the quantized modules' FromFloat functions the
// weight qparams a QAT module's weight fake quantizer holds, instead of
// observing the weight anew (PyTorch's from_float uses weight_fake_quant as
// the weight_post_process of a QAT module).
type frozenWeightObserver struct {
	observer.Observer
	q *tensor.QParams
}

func (f frozenWeightObserver) Observe(*tensor.Tensor) error               { return nil }
func (f frozenWeightObserver) CalculateQParams() (*tensor.QParams, error) { return f.q, nil }
