// Package ops holds quanta's differentiable operations. Every op goes through
// one dispatcher, Apply: it computes the outputs, records an autograd node
// when an input requires grad, and records a graph node when a Tracer is
// installed. That is how eager models get autograd for training and QAT, and
// graph capture for graph-mode quantization, from one implementation.
//
// Ops panic on programmer errors (shapes that do not fit, wrong dtypes) with
// a message naming the op and the shapes, as tensor operations in gonum do.
package ops

import (
	"sync"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

// Tracer receives every op call while installed (see SetTracer). Graph mode
// implements it to capture a model as a graph.
type Tracer interface {
	// Op is called after an op computed outputs from inputs. attrs is the
	// op's typed attribute struct (e.g. ConvAttrs), or nil.
	Op(name string, attrs any, inputs, outputs []*tensor.Tensor)
	// EnterModule and ExitModule bracket a module call, with the module's
	// dotted path ("features.3.conv") and type name ("Conv2d").
	EnterModule(path, typ string, inputs []*tensor.Tensor)
	ExitModule(path, typ string, outputs []*tensor.Tensor)
}

var (
	tracerMu sync.RWMutex
	tracer   Tracer
)

// SetTracer installs t (nil removes it) and returns the previous tracer.
// Tracing is process-wide: trace one model at a time.
func SetTracer(t Tracer) (prev Tracer) {
	tracerMu.Lock()
	defer tracerMu.Unlock()
	prev, tracer = tracer, t
	return prev
}

// CurrentTracer returns the installed tracer, or nil.
func CurrentTracer() Tracer {
	tracerMu.RLock()
	defer tracerMu.RUnlock()
	return tracer
}

// Apply is the one dispatcher. outputs were computed from inputs by the op
// called name; backward maps output gradients to input gradients (it is
// only called when some input requires grad, and may be nil for ops that
// are not differentiable). Apply records the autograd node and the trace,
// and returns outputs[0] for convenience.
//
// Packages above ops (quant's fake quantization, nn) define their own
// differentiable ops by computing outputs and calling Apply.
func Apply(name string, attrs any, inputs []*tensor.Tensor, outputs []*tensor.Tensor, backward autograd.BackwardFunc) *tensor.Tensor {
	if backward != nil {
		autograd.Record(name, inputs, outputs, backward)
	}
	if tr := CurrentTracer(); tr != nil {
		tr.Op(name, attrs, inputs, outputs)
	}
	if len(outputs) == 0 {
		return nil
	}
	return outputs[0]
}

// Ts is shorthand for a tensor slice literal.
func Ts(ts ...*tensor.Tensor) []*tensor.Tensor { return ts }

// needs reports whether input i of an op needs a gradient.
func needs(t *tensor.Tensor) bool { return t != nil && t.RequiresGrad() }
