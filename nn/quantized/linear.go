package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/qgemm"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Linear is a statically quantized linear layer y = x W^T + b
// (torch.ao.nn.quantized.Linear): quint8 input [..., in], qint8 weight
// [out, in] (per-tensor or per-channel along axis 0), float32 bias, quint8
// output [..., out] with the stored output qparams. See the package comment
// for the integer arithmetic.
type Linear struct {
	nn.Base
	InFeatures, OutFeatures int
	WeightParams

	relu   bool
	packed *qgemm.Packed
}

// LinearReLU is Linear with a fused ReLU
// (torch.ao.nn.intrinsic.quantized.LinearReLU): the output is bounded below
// at the output zero point.
type LinearReLU struct{ Linear }

// NewLinear returns a quantized Linear from a qint8 weight [out, in], a
// float32 bias [out] (or nil) and the output qparams.
func NewLinear(weight, bias *tensor.Tensor, outScale float32, outZeroPoint int32) (*Linear, error) {
	m := &Linear{}
	return m, m.init("Linear", weight, bias, outScale, outZeroPoint)
}

// NewLinearReLU returns a quantized LinearReLU (see NewLinear).
func NewLinearReLU(weight, bias *tensor.Tensor, outScale float32, outZeroPoint int32) (*LinearReLU, error) {
	m := &LinearReLU{}
	m.relu = true
	return m, m.init("LinearReLU", weight, bias, outScale, outZeroPoint)
}

func (m *Linear) init(op string, weight, bias *tensor.Tensor, scale float32, zp int32) error {
	if weight == nil || weight.NDim() != 2 {
		return fmt.Errorf("quantized: %s: weight must be [out, in]", op)
	}
	m.OutFeatures, m.InFeatures = weight.Dim(0), weight.Dim(1)
	return m.WeightParams.init(op, weight, bias, 0, m.OutFeatures, scale, zp, m.repack)
}

func (m *Linear) repack() error {
	_, zw := m.weightQ()
	m.packed = qgemm.Pack(m.OutFeatures, m.InFeatures, m.Weight.I8(), m.InFeatures, zw)
	return nil
}

// LinearFromFloat quantizes a float Linear (PyTorch's Linear.from_float):
// the weight is quantized with the qparams weightObserver computes from it
// (nil means per-tensor symmetric qint8 min/max), the bias stays float, and
// out gives the output qparams (per-tensor quint8, typically the float
// module's observed output).
func LinearFromFloat(f *nn.Linear, weightObserver observer.Observer, out *tensor.QParams) (*Linear, error) {
	w, s, z, err := linearParts(f, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewLinear(w, f.Bias, s, z)
}

// LinearReLUFromFloat quantizes a float Linear followed by a ReLU (the
// fused nni.LinearReLU) into a LinearReLU; arguments as LinearFromFloat.
func LinearReLUFromFloat(f *nn.Linear, weightObserver observer.Observer, out *tensor.QParams) (*LinearReLU, error) {
	w, s, z, err := linearParts(f, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewLinearReLU(w, f.Bias, s, z)
}

func linearParts(f *nn.Linear, obs observer.Observer, out *tensor.QParams) (*tensor.Tensor, float32, int32, error) {
	if f == nil {
		return nil, 0, 0, fmt.Errorf("quantized: Linear: nil float module")
	}
	s, z, err := fromQParams("Linear", out)
	if err != nil {
		return nil, 0, 0, err
	}
	w, err := QuantizeWeight(f.Weight, obs)
	return w, s, z, err
}

// TypeName returns "quantized.Linear".
func (m *Linear) TypeName() string { return "quantized.Linear" }

// TypeName returns "quantized.LinearReLU".
func (m *LinearReLU) TypeName() string { return "quantized.LinearReLU" }

// Forward applies the layer to quint8 x [..., in].
func (m *Linear) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, m.forward)
}

// Forward applies the layer and the ReLU to quint8 x [..., in].
func (m *LinearReLU) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, m.forward)
}

func (m *Linear) forward(x *tensor.Tensor) *tensor.Tensor {
	op := "Linear"
	if m.relu {
		op = "LinearReLU"
	}
	sa, za := checkQ(op, x)
	if x.NDim() == 0 || x.Dim(-1) != m.InFeatures {
		panic(fmt.Sprintf("quantized: %s: input %v, want [..., %d]", op, x.Shape(), m.InFeatures))
	}
	m.sync(op)
	m.mu.Lock()
	packed := m.packed
	r := m.requant(sa, m.OutFeatures, m.relu)
	m.mu.Unlock()
	rows := x.Numel() / m.InFeatures
	out := make([]uint8, rows*m.OutFeatures)
	qgemm.GemmU8(rows, x.U8(), m.InFeatures, za, packed, r, out, m.OutFeatures)
	shape := append(append([]int(nil), x.Shape()[:x.NDim()-1]...), m.OutFeatures)
	sy, zy := m.OutputQParams()
	return tensor.NewQuantized(tensor.QUInt8, out, outQ(sy, zy), shape...)
}

// outQ returns quint8 per-tensor qparams.
func outQ(scale float32, zp int32) *tensor.QParams {
	q := tensor.PerTensor(scale, zp)
	q.QuantMin, q.QuantMax = 0, 255
	return q
}
