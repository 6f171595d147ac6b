package nn

import (
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// ReLU is max(x, 0) (torch.nn.ReLU).
type ReLU struct{ Base }

// NewReLU returns a ReLU.
func NewReLU() *ReLU { return &ReLU{} }

// Forward applies ReLU.
func (m *ReLU) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.ReLU) }

// ReLU6 is min(max(x, 0), 6) (torch.nn.ReLU6).
type ReLU6 struct{ Base }

// NewReLU6 returns a ReLU6.
func NewReLU6() *ReLU6 { return &ReLU6{} }

// Forward applies ReLU6.
func (m *ReLU6) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.ReLU6) }

// LeakyReLU is x for x >= 0 and NegativeSlope*x otherwise
// (torch.nn.LeakyReLU).
type LeakyReLU struct {
	Base
	NegativeSlope float32
}

// NewLeakyReLU returns a LeakyReLU with the given negative slope (PyTorch's
// default is 0.01).
func NewLeakyReLU(negativeSlope float32) *LeakyReLU { return &LeakyReLU{NegativeSlope: negativeSlope} }

// Forward applies LeakyReLU.
func (m *LeakyReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.LeakyReLU(x, m.NegativeSlope) })
}

// Hardswish is x*relu6(x+3)/6 (torch.nn.Hardswish).
type Hardswish struct{ Base }

// NewHardswish returns a Hardswish.
func NewHardswish() *Hardswish { return &Hardswish{} }

// Forward applies Hardswish.
func (m *Hardswish) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.Hardswish) }

// Hardsigmoid is relu6(x+3)/6 (torch.nn.Hardsigmoid).
type Hardsigmoid struct{ Base }

// NewHardsigmoid returns a Hardsigmoid.
func NewHardsigmoid() *Hardsigmoid { return &Hardsigmoid{} }

// Forward applies Hardsigmoid.
func (m *Hardsigmoid) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.Hardsigmoid) }

// Sigmoid is 1/(1+exp(-x)) (torch.nn.Sigmoid).
type Sigmoid struct{ Base }

// NewSigmoid returns a Sigmoid.
func NewSigmoid() *Sigmoid { return &Sigmoid{} }

// Forward applies Sigmoid.
func (m *Sigmoid) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.Sigmoid) }

// Tanh is the hyperbolic tangent (torch.nn.Tanh).
type Tanh struct{ Base }

// NewTanh returns a Tanh.
func NewTanh() *Tanh { return &Tanh{} }

// Forward applies Tanh.
func (m *Tanh) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.Tanh) }

// GELU is x*Phi(x) (torch.nn.GELU); Approximate selects the tanh
// approximation (approximate="tanh").
type GELU struct {
	Base
	Approximate bool
}

// NewGELU returns a GELU, exact (erf) unless approximate is set.
func NewGELU(approximate bool) *GELU { return &GELU{Approximate: approximate} }

// Forward applies GELU.
func (m *GELU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.GELU(x, m.Approximate) })
}

// SiLU is x*sigmoid(x) (torch.nn.SiLU).
type SiLU struct{ Base }

// NewSiLU returns a SiLU.
func NewSiLU() *SiLU { return &SiLU{} }

// Forward applies SiLU.
func (m *SiLU) Forward(x *tensor.Tensor) *tensor.Tensor { return Call1(m, x, ops.SiLU) }

// Softmax normalizes exp(x) to sum to one along Dim (torch.nn.Softmax).
type Softmax struct {
	Base
	Dim int
}

// NewSoftmax returns a Softmax over dim (negative counts from the end).
func NewSoftmax(dim int) *Softmax { return &Softmax{Dim: dim} }

// Forward applies Softmax.
func (m *Softmax) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Softmax(x, m.Dim) })
}
