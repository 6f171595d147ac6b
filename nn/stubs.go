package nn

import (
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// QuantStub marks where a float tensor enters the quantized part of a model
// (torch.ao.quantization.QuantStub). In a float model it returns its input;
// eager-mode prepare observes its output and convert replaces it with a
// quantized.Quantize using the observed qparams. QConfig, when non-nil,
// overrides the qconfig propagated to it (PyTorch's qconfig argument).
type QuantStub struct{ Base }

// NewQuantStub returns a QuantStub; qconfig may be nil.
func NewQuantStub(qconfig any) *QuantStub {
	s := &QuantStub{}
	s.QConfig = qconfig
	return s
}

// Forward returns x (a float model's identity).
func (s *QuantStub) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(s, x, func(x *tensor.Tensor) *tensor.Tensor { return x })
}

// DeQuantStub marks where a tensor leaves the quantized part of a model
// (torch.ao.quantization.DeQuantStub). In a float model it returns its
// input; convert replaces it with a quantized.DeQuantize. It is never
// observed.
type DeQuantStub struct{ Base }

// NewDeQuantStub returns a DeQuantStub; qconfig may be nil.
func NewDeQuantStub(qconfig any) *DeQuantStub {
	s := &DeQuantStub{}
	s.QConfig = qconfig
	return s
}

// Forward returns x (a float model's identity).
func (s *DeQuantStub) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(s, x, func(x *tensor.Tensor) *tensor.Tensor { return x })
}

// QuantWrapper runs Quant, then Module, then DeQuant
// (torch.ao.quantization.QuantWrapper): wrapping a float layer so that,
// after eager prepare and convert, it takes and returns float tensors while
// computing quantized inside. Children are named "quant", "dequant" and
// "module", as in PyTorch. The wrapper takes the wrapped module's QConfig.
type QuantWrapper struct {
	Base
	Quant   Layer `nn:"quant"`
	DeQuant Layer `nn:"dequant"`
	Module  Layer `nn:"module"`
}

// NewQuantWrapper wraps m between a QuantStub and a DeQuantStub, both
// carrying m's QConfig.
func NewQuantWrapper(m Layer) *QuantWrapper {
	qc := m.ModuleBase().QConfig
	w := &QuantWrapper{Quant: NewQuantStub(qc), DeQuant: NewDeQuantStub(qc), Module: m}
	w.QConfig = qc
	return w
}

// Forward returns DeQuant(Module(Quant(x))).
func (w *QuantWrapper) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(w, x, func(x *tensor.Tensor) *tensor.Tensor {
		return w.DeQuant.Forward(w.Module.Forward(w.Quant.Forward(x)))
	})
}

// Functional is the interface FloatFunctional and its quantized form
// (nn/quantized.QFunctional) share. Declare a model's field with this type
// (as any replaceable child is declared with an interface type) so that
// eager-mode convert can swap the FloatFunctional for a QFunctional.
type Functional interface {
	Module
	// Add returns x + y.
	Add(x, y *tensor.Tensor) *tensor.Tensor
	// Mul returns x * y.
	Mul(x, y *tensor.Tensor) *tensor.Tensor
	// AddScalar returns x + s.
	AddScalar(x *tensor.Tensor, s float32) *tensor.Tensor
	// MulScalar returns x * s.
	MulScalar(x *tensor.Tensor, s float32) *tensor.Tensor
	// Cat joins xs along dim.
	Cat(xs []*tensor.Tensor, dim int) *tensor.Tensor
	// AddReLU returns relu(x + y).
	AddReLU(x, y *tensor.Tensor) *tensor.Tensor
}

// FloatFunctional holds functional operations so that eager-mode
// quantization can observe their outputs and replace them with quantized
// ones (torch.ao.nn.quantized.FloatFunctional): Add, Mul, Cat and AddReLU
// pass their float result through ActivationPostProcess when it is set (a
// Layer such as an observer module; PyTorch's activation_post_process,
// which FloatFunctional calls itself, so prepare registers no observer hook
// on it), while AddScalar and MulScalar are never observed, as in PyTorch
// (their quantized form derives the output qparams from the input's).
// Every method runs through Call, so forward hooks and tracing see each
// call with its inputs and output. Convert replaces it with a
// quantized.QFunctional.
type FloatFunctional struct{ Base }

// NewFloatFunctional returns a FloatFunctional.
func NewFloatFunctional() *FloatFunctional { return &FloatFunctional{} }

// TypeName returns "FloatFunctional".
func (f *FloatFunctional) TypeName() string { return "FloatFunctional" }

// observe passes r through the ActivationPostProcess when it is a Layer.
func (f *FloatFunctional) observe(r *tensor.Tensor) *tensor.Tensor {
	if app, ok := f.ActivationPostProcess.(Layer); ok && app != nil {
		return app.Forward(r)
	}
	return r
}

func (f *FloatFunctional) run(in []*tensor.Tensor, op func(in []*tensor.Tensor) *tensor.Tensor, observed bool) *tensor.Tensor {
	return Call(f, in, func(in []*tensor.Tensor) []*tensor.Tensor {
		r := op(in)
		if observed {
			r = f.observe(r)
		}
		return []*tensor.Tensor{r}
	})[0]
}

// Add returns x + y (torch.add), observed.
func (f *FloatFunctional) Add(x, y *tensor.Tensor) *tensor.Tensor {
	return f.run([]*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor { return ops.Add(in[0], in[1]) }, true)
}

// Mul returns x * y (torch.mul), observed.
func (f *FloatFunctional) Mul(x, y *tensor.Tensor) *tensor.Tensor {
	return f.run([]*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor { return ops.Mul(in[0], in[1]) }, true)
}

// AddScalar returns x + s (torch.add with a number); not observed.
func (f *FloatFunctional) AddScalar(x *tensor.Tensor, s float32) *tensor.Tensor {
	return f.run([]*tensor.Tensor{x}, func(in []*tensor.Tensor) *tensor.Tensor { return ops.AddScalar(in[0], s) }, false)
}

// MulScalar returns x * s (torch.mul with a number); not observed.
func (f *FloatFunctional) MulScalar(x *tensor.Tensor, s float32) *tensor.Tensor {
	return f.run([]*tensor.Tensor{x}, func(in []*tensor.Tensor) *tensor.Tensor { return ops.MulScalar(in[0], s) }, false)
}

// Cat joins xs along dim (torch.cat), observed.
func (f *FloatFunctional) Cat(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	return f.run(xs, func(in []*tensor.Tensor) *tensor.Tensor { return ops.Concat(in, dim) }, true)
}

// AddReLU returns relu(x + y), observed once after the ReLU.
func (f *FloatFunctional) AddReLU(x, y *tensor.Tensor) *tensor.Tensor {
	return f.run([]*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor { return ops.ReLU(ops.Add(in[0], in[1])) }, true)
}
