package nn

import (
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// ELU is x for x > 0 and Alpha*(exp(x)-1) otherwise (torch.nn.ELU),
// computed by ops.ELU.
type ELU struct {
	Base
	Alpha float32
}

// NewELU returns an ELU with the given alpha (PyTorch's default is 1).
func NewELU(alpha float32) *ELU { return &ELU{Alpha: alpha} }

// Forward applies ELU.
func (m *ELU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.ELU(x, m.Alpha) })
}
