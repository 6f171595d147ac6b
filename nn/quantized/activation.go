package quantized

import (
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// OutQParams holds a module's output qparams as buffers named as PyTorch
// names them: "scale" (0-d float32) and "zero_point" (0-d int64).
type OutQParams struct {
	Scale     *tensor.Tensor `nn:"scale,buffer"`
	ZeroPoint *tensor.Tensor `nn:"zero_point,buffer"`
}

func newOut(op string, scale float32, zp int32) (OutQParams, error) {
	s, z, err := outQParams(op, scale, zp)
	return OutQParams{Scale: s, ZeroPoint: z}, err
}

// OutputQParams returns the output scale and zero point.
func (o *OutQParams) OutputQParams() (float32, int32) { return scalarF(o.Scale), scalarZP(o.ZeroPoint) }

// ReLU6 is the quantized ReLU6 (torch.ao.nn.quantized.ReLU6): the output
// keeps the input's qparams, q -> quantize(min(max(dequantize(q), 0), 6)).
type ReLU6 struct{ nn.Base }

// NewReLU6 returns a ReLU6.
func NewReLU6() *ReLU6 { return &ReLU6{} }

// TypeName returns "quantized.ReLU6".
func (m *ReLU6) TypeName() string { return "quantized.ReLU6" }

// Forward applies ReLU6 to quint8 x.
func (m *ReLU6) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("ReLU6", x)
		return must(oq.ReLU6(x))
	})
}

// Hardswish is the quantized Hardswish (torch.ao.nn.quantized.Hardswish)
// with its own output qparams: quantize(hardswish(dequantize(x))).
type Hardswish struct {
	nn.Base
	OutQParams
}

// NewHardswish returns a Hardswish with output qparams (scale, zeroPoint).
func NewHardswish(scale float32, zeroPoint int32) (*Hardswish, error) {
	o, err := newOut("Hardswish", scale, zeroPoint)
	return &Hardswish{OutQParams: o}, err
}

// TypeName returns "quantized.Hardswish".
func (m *Hardswish) TypeName() string { return "quantized.Hardswish" }

// Forward applies Hardswish to quint8 x.
func (m *Hardswish) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("Hardswish", x)
		s, z := m.OutputQParams()
		return must(oq.Hardswish(x, s, z))
	})
}

// LeakyReLU is the quantized LeakyReLU (torch.ao.nn.quantized.LeakyReLU)
// with its own output qparams.
type LeakyReLU struct {
	nn.Base
	NegativeSlope float32
	OutQParams
}

// NewLeakyReLU returns a LeakyReLU with the given slope and output qparams.
func NewLeakyReLU(negativeSlope, scale float32, zeroPoint int32) (*LeakyReLU, error) {
	o, err := newOut("LeakyReLU", scale, zeroPoint)
	return &LeakyReLU{NegativeSlope: negativeSlope, OutQParams: o}, err
}

// TypeName returns "quantized.LeakyReLU".
func (m *LeakyReLU) TypeName() string { return "quantized.LeakyReLU" }

// Forward applies LeakyReLU to quint8 x.
func (m *LeakyReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("LeakyReLU", x)
		s, z := m.OutputQParams()
		return must(oq.LeakyReLU(x, m.NegativeSlope, s, z))
	})
}

// ELU is the quantized ELU (torch.ao.nn.quantized.ELU) with its own output
// qparams.
type ELU struct {
	nn.Base
	Alpha float32
	OutQParams
}

// NewELU returns an ELU with the given alpha (PyTorch's default 1) and
// output qparams.
func NewELU(alpha, scale float32, zeroPoint int32) (*ELU, error) {
	o, err := newOut("ELU", scale, zeroPoint)
	return &ELU{Alpha: alpha, OutQParams: o}, err
}

// TypeName returns "quantized.ELU".
func (m *ELU) TypeName() string { return "quantized.ELU" }

// Forward applies ELU to quint8 x.
func (m *ELU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("ELU", x)
		s, z := m.OutputQParams()
		return must(oq.ELU(x, m.Alpha, s, z))
	})
}

// Sigmoid is the quantized Sigmoid (torch.ao.nn.quantized.Sigmoid) with
// output qparams, normally PyTorch's fixed ones (ops/quantized's
// SigmoidQParams: 1/256, 0), for which it uses the exact lookup table;
// other qparams go through the reference path (dequantize, sigmoid,
// quantize), which gives the same codes.
type Sigmoid struct {
	nn.Base
	OutQParams
}

// NewSigmoid returns a Sigmoid with output qparams (scale, zeroPoint).
func NewSigmoid(scale float32, zeroPoint int32) (*Sigmoid, error) {
	o, err := newOut("Sigmoid", scale, zeroPoint)
	return &Sigmoid{OutQParams: o}, err
}

// TypeName returns "quantized.Sigmoid".
func (m *Sigmoid) TypeName() string { return "quantized.Sigmoid" }

// Forward applies Sigmoid to quint8 x.
func (m *Sigmoid) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("Sigmoid", x)
		s, z := m.OutputQParams()
		if fs, fz := oq.SigmoidQParams(tensor.QUInt8); s == fs && z == fz {
			return must(oq.Sigmoid(x))
		}
		return quantizeOut(tensor.Sigmoid(ops.Dequantize(x)), s, z)
	})
}

// Tanh is the quantized Tanh with output qparams, normally PyTorch's fixed
// ones (ops/quantized's TanhQParams: 2/256, 128), for which it uses the
// exact lookup table; other qparams take the reference path.
type Tanh struct {
	nn.Base
	OutQParams
}

// NewTanh returns a Tanh with output qparams (scale, zeroPoint).
func NewTanh(scale float32, zeroPoint int32) (*Tanh, error) {
	o, err := newOut("Tanh", scale, zeroPoint)
	return &Tanh{OutQParams: o}, err
}

// TypeName returns "quantized.Tanh".
func (m *Tanh) TypeName() string { return "quantized.Tanh" }

// Forward applies Tanh to quint8 x.
func (m *Tanh) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("Tanh", x)
		s, z := m.OutputQParams()
		if fs, fz := oq.TanhQParams(tensor.QUInt8); s == fs && z == fz {
			return must(oq.Tanh(x))
		}
		return quantizeOut(tensor.Tanh(ops.Dequantize(x)), s, z)
	})
}

// Softmax is the quantized Softmax (torch.ao.nn.quantized.Softmax) along
// Dim with output qparams (float internals, ops/quantized.Softmax).
type Softmax struct {
	nn.Base
	Dim int
	OutQParams
}

// NewSoftmax returns a Softmax over dim with output qparams.
func NewSoftmax(dim int, scale float32, zeroPoint int32) (*Softmax, error) {
	o, err := newOut("Softmax", scale, zeroPoint)
	return &Softmax{Dim: dim, OutQParams: o}, err
}

// TypeName returns "quantized.Softmax".
func (m *Softmax) TypeName() string { return "quantized.Softmax" }

// Forward applies Softmax to quint8 x.
func (m *Softmax) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("Softmax", x)
		s, z := m.OutputQParams()
		return must(oq.Softmax(x, m.Dim, s, z))
	})
}
