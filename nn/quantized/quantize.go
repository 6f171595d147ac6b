package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Quantize turns a float32 tensor into a quint8 one with the stored qparams
// (torch.ao.nn.quantized.Quantize, what a QuantStub becomes):
// q = saturate(roundHalfEven(x/scale) + zero_point).
type Quantize struct {
	nn.Base
	Scale     *tensor.Tensor `nn:"scale,buffer"`
	ZeroPoint *tensor.Tensor `nn:"zero_point,buffer"`
}

// NewQuantize returns a Quantize to quint8 (scale, zeroPoint).
func NewQuantize(scale float32, zeroPoint int32) (*Quantize, error) {
	s, z, err := outQParams("Quantize", scale, zeroPoint)
	if err != nil {
		return nil, err
	}
	return &Quantize{Scale: s, ZeroPoint: z}, nil
}

// QuantizeFromStub converts an observed QuantStub (PyTorch's
// Quantize.from_float): its ActivationPostProcess gives the qparams.
func QuantizeFromStub(s *nn.QuantStub) (*Quantize, error) {
	q, err := ObservedQParams(s)
	if err != nil {
		return nil, err
	}
	sc, zp, err := fromQParams("Quantize", q)
	if err != nil {
		return nil, err
	}
	return NewQuantize(sc, zp)
}

// TypeName returns "quantized.Quantize".
func (m *Quantize) TypeName() string { return "quantized.Quantize" }

// Forward quantizes the float32 x.
func (m *Quantize) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		if x == nil || x.DType() != tensor.Float32 {
			panic(fmt.Sprintf("quantized: Quantize: input must be float32"))
		}
		return quantizeOut(x, scalarF(m.Scale), scalarZP(m.ZeroPoint))
	})
}

// DeQuantize turns a quantized tensor back into float32
// (torch.ao.nn.quantized.DeQuantize, what a DeQuantStub becomes):
// x = (q - zero_point) * scale.
type DeQuantize struct{ nn.Base }

// NewDeQuantize returns a DeQuantize.
func NewDeQuantize() *DeQuantize { return &DeQuantize{} }

// TypeName returns "quantized.DeQuantize".
func (m *DeQuantize) TypeName() string { return "quantized.DeQuantize" }

// Forward dequantizes x (any quantized dtype and scheme).
func (m *DeQuantize) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		if x == nil || !x.DType().IsQuantized() {
			panic("quantized: DeQuantize: input must be quantized")
		}
		return ops.Dequantize(x)
	})
}

// Dropout is the quantized Dropout (torch.ao.nn.quantized.Dropout): an
// inference module, so it returns its input.
type Dropout struct {
	nn.Base
	P float32
}

// NewDropout returns a Dropout that remembers p.
func NewDropout(p float32) *Dropout { return &Dropout{P: p} }

// TypeName returns "quantized.Dropout".
func (m *Dropout) TypeName() string { return "quantized.Dropout" }

// Forward returns x.
func (m *Dropout) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return x })
}
