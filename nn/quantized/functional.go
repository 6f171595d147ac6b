package quantized

import (
	"math"

	"github.com/quanta-go/quanta/internal/kernels/qmath"
	"github.com/quanta-go/quanta/nn"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// QFunctional is the quantized form of nn.FloatFunctional
// (torch.ao.nn.quantized.QFunctional): Add, Mul, Cat and AddReLU produce
// quint8 results with the stored output qparams (ops/quantized, the
// reference quantized model exactly); AddScalar and MulScalar derive the
// output qparams from the input's, as ATen's quantized add_scalar and
// mul_scalar do. Every method runs through nn.Call, so hooks and tracing
// see it.
type QFunctional struct {
	nn.Base
	OutQParams
}

// NewQFunctional returns a QFunctional with output qparams (scale,
// zeroPoint).
func NewQFunctional(scale float32, zeroPoint int32) (*QFunctional, error) {
	o, err := newOut("QFunctional", scale, zeroPoint)
	return &QFunctional{OutQParams: o}, err
}

// QFunctionalFromFloat converts an observed FloatFunctional (PyTorch's
// QFunctional.from_float): the output qparams come from its
// ActivationPostProcess.
func QFunctionalFromFloat(f *nn.FloatFunctional) (*QFunctional, error) {
	q, err := ObservedQParams(f)
	if err != nil {
		return nil, err
	}
	s, z, err := fromQParams("QFunctional", q)
	if err != nil {
		return nil, err
	}
	return NewQFunctional(s, z)
}

// TypeName returns "quantized.QFunctional".
func (m *QFunctional) TypeName() string { return "quantized.QFunctional" }

func (m *QFunctional) run(op string, in []*tensor.Tensor, fn func(in []*tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	for _, x := range in {
		checkQ("QFunctional."+op, x)
	}
	return nn.Call(m, in, func(in []*tensor.Tensor) []*tensor.Tensor { return []*tensor.Tensor{fn(in)} })[0]
}

// Add returns x + y quantized to the stored qparams (quantized::add).
func (m *QFunctional) Add(x, y *tensor.Tensor) *tensor.Tensor {
	return m.run("Add", []*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor {
		s, z := m.OutputQParams()
		return must(oq.Add(in[0], in[1], s, z))
	})
}

// AddReLU returns relu(x + y) quantized to the stored qparams
// (quantized::add_relu).
func (m *QFunctional) AddReLU(x, y *tensor.Tensor) *tensor.Tensor {
	return m.run("AddReLU", []*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor {
		s, z := m.OutputQParams()
		return must(oq.AddReLU(in[0], in[1], s, z))
	})
}

// Mul returns x * y quantized to the stored qparams (quantized::mul).
func (m *QFunctional) Mul(x, y *tensor.Tensor) *tensor.Tensor {
	return m.run("Mul", []*tensor.Tensor{x, y}, func(in []*tensor.Tensor) *tensor.Tensor {
		s, z := m.OutputQParams()
		return must(oq.Mul(in[0], in[1], s, z))
	})
}

// Cat joins xs along dim, each requantized to the stored qparams
// (quantized::cat).
func (m *QFunctional) Cat(xs []*tensor.Tensor, dim int) *tensor.Tensor {
	return m.run("Cat", xs, func(in []*tensor.Tensor) *tensor.Tensor {
		s, z := m.OutputQParams()
		return must(oq.Cat(in, dim, s, z))
	})
}

// AddScalar returns x + c (quantized::add_scalar), with ATen's output
// qparams: with c_q = RNE(c/s_x) and z' = z_x - c_q, when z' lies in 0..255
// the codes are kept and the output has qparams (s_x, z'), so
// dequantizing gives x + c_q*s_x exactly; otherwise the grid is widened to
// keep zero representable, scale s' = (255 - z')/255*s_x with zero point 0
// (z' < 0) or s' = z'/255*s_x with zero point 255 (z' > 255), and each code
// becomes quantize(float32(q - z')*s_x) in (s', z_out).
func (m *QFunctional) AddScalar(x *tensor.Tensor, c float32) *tensor.Tensor {
	return m.run("AddScalar", []*tensor.Tensor{x}, func(in []*tensor.Tensor) *tensor.Tensor {
		return addScalar(in[0], c)
	})
}

// MulScalar returns x * c (quantized::mul_scalar): for c > 0 the codes are
// kept with scale c*s_x; for c = 0 the result is all zero codes with scale
// 1 and zero point 0; for c < 0 the codes are reflected, q -> 255 - q, with
// scale |c|*s_x and zero point 255 - z_x. Scales are computed in float64
// and rounded to float32, as ATen stores them.
func (m *QFunctional) MulScalar(x *tensor.Tensor, c float32) *tensor.Tensor {
	return m.run("MulScalar", []*tensor.Tensor{x}, func(in []*tensor.Tensor) *tensor.Tensor {
		return mulScalar(in[0], c)
	})
}

func addScalar(x *tensor.Tensor, c float32) *tensor.Tensor {
	s, z := x.QParams().Scale[0], x.QParams().ZeroPoint[0]
	cq := int64(math.RoundToEven(float64(c) / float64(s)))
	zPrime := int64(z) - cq
	src := x.U8()
	out := make([]uint8, len(src))
	var sP float32
	var zP int32
	switch {
	case zPrime >= 0 && zPrime <= 255:
		copy(out, src)
		sP, zP = s, int32(zPrime)
	default:
		// ATen: the shifted range no longer holds the zero point; widen the
		// scale so that [qmin, qmax] still covers it.
		if zPrime < 0 {
			sP, zP = float32((255-float64(zPrime))/255*float64(s)), 0
		} else {
			sP, zP = float32((float64(zPrime)-0)/255*float64(s)), 255
		}
		for i, q := range src {
			v := float32(int64(q)-zPrime) * s
			out[i] = uint8(qmath.Quantize(v, sP, zP, 0, 255))
		}
	}
	return tensor.NewQuantized(tensor.QUInt8, out, outQ(sP, zP), x.Shape()...)
}

func mulScalar(x *tensor.Tensor, c float32) *tensor.Tensor {
	s, z := x.QParams().Scale[0], x.QParams().ZeroPoint[0]
	src := x.U8()
	out := make([]uint8, len(src))
	var sP float32
	var zP int32
	switch {
	case c > 0:
		copy(out, src)
		sP, zP = float32(float64(c)*float64(s)), z
	case c == 0:
		sP, zP = 1, 0
	default:
		for i, q := range src {
			out[i] = 255 - q
		}
		sP, zP = float32(math.Abs(float64(c))*float64(s)), 255-z
	}
	return tensor.NewQuantized(tensor.QUInt8, out, outQ(sP, zP), x.Shape()...)
}

var _ nn.Functional = (*QFunctional)(nil)
