package nn

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// LinearOptions configure Linear. The zero value has a bias and draws from
// the global generator.
type LinearOptions struct {
	// NoBias drops the bias (bias=False).
	NoBias bool
	// RNG draws the initial weights; nil means the global generator.
	RNG *tensor.RNG
}

// Linear is y = x W^T + b (torch.nn.Linear). Weight is [out, in], Bias is
// [out] or nil. Initialization is PyTorch's: kaiming_uniform(a=sqrt(5))
// for the weight, U(-1/sqrt(in), 1/sqrt(in)) for the bias.
type Linear struct {
	Base
	InFeatures  int
	OutFeatures int
	Weight      *tensor.Tensor `nn:"weight"`
	Bias        *tensor.Tensor `nn:"bias"`
}

// NewLinear returns a Linear layer from in to out features.
func NewLinear(in, out int, o LinearOptions) (*Linear, error) {
	if in < 0 || out < 0 {
		return nil, fmt.Errorf("nn: NewLinear: negative size in=%d out=%d", in, out)
	}
	l := &Linear{InFeatures: in, OutFeatures: out, Weight: newParam(out, in)}
	if !o.NoBias {
		l.Bias = newParam(out)
	}
	withRNG(o.RNG, func(g *tensor.RNG) { initLinearLike(g, l.Weight, l.Bias) })
	return l, nil
}

// Forward applies the layer to x of shape [..., in].
func (l *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(l, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Linear(x, l.Weight, l.Bias) })
}

// Identity returns its input (torch.nn.Identity); fusion leaves it where a
// fused module used to be.
type Identity struct{ Base }

// NewIdentity returns an Identity.
func NewIdentity() *Identity { return &Identity{} }

// Forward returns x.
func (m *Identity) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return x })
}

// Flatten flattens dimensions StartDim..EndDim into one (torch.nn.Flatten,
// defaults 1 and -1).
type Flatten struct {
	Base
	StartDim, EndDim int
}

// NewFlatten returns a Flatten over dimensions startDim..endDim (PyTorch's
// defaults are 1 and -1).
func NewFlatten(startDim, endDim int) *Flatten { return &Flatten{StartDim: startDim, EndDim: endDim} }

// Forward flattens x.
func (m *Flatten) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Flatten(x, m.StartDim, m.EndDim) })
}

// Dropout zeroes elements with probability P in training mode and scales
// the rest by 1/(1-P) (torch.nn.Dropout); in evaluation mode it returns its
// input. A Dropout in training mode draws from its own generator and must
// not run concurrently with itself.
type Dropout struct {
	Base
	P   float32
	rng *tensor.RNG
}

// NewDropout returns a Dropout with probability p (PyTorch's default is
// 0.5). rng draws the masks; nil means a generator seeded from the global
// one.
func NewDropout(p float32, rng *tensor.RNG) (*Dropout, error) {
	if p < 0 || p > 1 {
		return nil, fmt.Errorf("nn: NewDropout: probability %g outside [0, 1]", p)
	}
	return &Dropout{P: p, rng: childRNG(rng)}, nil
}

// Forward applies dropout to x.
func (m *Dropout) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		if !m.Training() || m.P == 0 {
			return x
		}
		if m.rng == nil {
			m.rng = childRNG(nil)
		}
		return ops.Dropout(x, m.P, true, m.rng)
	})
}
