package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

func cloneOpt(t *tensor.Tensor) *tensor.Tensor {
	if t == nil {
		return nil
	}
	return t.Detach().Clone()
}

func checkVec(op, name string, t *tensor.Tensor, n int) error {
	if t != nil && (t.DType() != tensor.Float32 || t.Numel() != n) {
		return fmt.Errorf("quantized: %s: %s must be float32 with %d values, got %v%v", op, name, n, t.DType(), t.Shape())
	}
	return nil
}

// BatchNorm2d is the quantized BatchNorm2d (torch.ao.nn.quantized.BatchNorm2d)
// in evaluation mode with its own output qparams. It is the reference
// quantized model: the input is dequantized, normalized with the running
// statistics by ops.BatchNorm (float64 statistics, float32 output) and
// quantized to the output qparams, so it equals that reference exactly.
// (PyTorch's kernel folds the statistics into one float multiply-add per
// element on the centred codes, which can differ by one step.)
type BatchNorm2d struct {
	nn.Base
	NumFeatures int
	Eps         float32
	Weight      *tensor.Tensor `nn:"weight,buffer"`
	Bias        *tensor.Tensor `nn:"bias,buffer"`
	RunningMean *tensor.Tensor `nn:"running_mean,buffer"`
	RunningVar  *tensor.Tensor `nn:"running_var,buffer"`
	OutQParams
}

// BatchNorm2dFromFloat converts a float BatchNorm2d (which must track
// running statistics) with output qparams out.
func BatchNorm2dFromFloat(f *nn.BatchNorm2d, out *tensor.QParams) (*BatchNorm2d, error) {
	if f == nil || f.RunningMean == nil || f.RunningVar == nil {
		return nil, fmt.Errorf("quantized: BatchNorm2d: the float module must track running statistics")
	}
	s, z, err := fromQParams("BatchNorm2d", out)
	if err != nil {
		return nil, err
	}
	o, err := newOut("BatchNorm2d", s, z)
	if err != nil {
		return nil, err
	}
	return &BatchNorm2d{NumFeatures: f.NumFeatures, Eps: f.Eps, Weight: cloneOpt(f.Weight), Bias: cloneOpt(f.Bias),
		RunningMean: cloneOpt(f.RunningMean), RunningVar: cloneOpt(f.RunningVar), OutQParams: o}, nil
}

// TypeName returns "quantized.BatchNorm2d".
func (m *BatchNorm2d) TypeName() string { return "quantized.BatchNorm2d" }

// Forward normalizes quint8 x [N, C, H, W].
func (m *BatchNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return m.forward(x, false)
	})
}

func (m *BatchNorm2d) forward(x *tensor.Tensor, relu bool) *tensor.Tensor {
	checkQ("BatchNorm2d", x)
	if x.NDim() != 4 || x.Dim(1) != m.NumFeatures {
		panic(fmt.Sprintf("quantized: BatchNorm2d: input %v, want [N, %d, H, W]", x.Shape(), m.NumFeatures))
	}
	y := ops.BatchNorm(ops.Dequantize(x), m.RunningMean, m.RunningVar, m.Weight, m.Bias, false, 0, m.Eps)
	if relu {
		y = tensor.ReLU(y)
	}
	s, z := m.OutputQParams()
	return quantizeOut(y, s, z)
}

// BNReLU2d is BatchNorm2d followed by ReLU
// (torch.ao.nn.intrinsic.quantized.BNReLU2d): the float result is clamped
// at zero before it is quantized to the output qparams.
type BNReLU2d struct{ BatchNorm2d }

// BNReLU2dFromFloat converts a float BatchNorm2d (the BN of a fused
// intrinsic.BNReLU2d) with output qparams out.
func BNReLU2dFromFloat(f *nn.BatchNorm2d, out *tensor.QParams) (*BNReLU2d, error) {
	b, err := BatchNorm2dFromFloat(f, out)
	if err != nil {
		return nil, err
	}
	return &BNReLU2d{*b}, nil
}

// TypeName returns "quantized.BNReLU2d".
func (m *BNReLU2d) TypeName() string { return "quantized.BNReLU2d" }

// Forward normalizes quint8 x [N, C, H, W] and applies ReLU.
func (m *BNReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		return m.BatchNorm2d.forward(x, true)
	})
}

// LayerNorm is the quantized LayerNorm (torch.ao.nn.quantized.LayerNorm):
// ops/quantized.LayerNorm with float32 weight and bias and output qparams.
type LayerNorm struct {
	nn.Base
	NormalizedShape []int
	Eps             float32
	Weight          *tensor.Tensor `nn:"weight,buffer"`
	Bias            *tensor.Tensor `nn:"bias,buffer"`
	OutQParams
}

// LayerNormFromFloat converts a float LayerNorm with output qparams out.
func LayerNormFromFloat(f *nn.LayerNorm, out *tensor.QParams) (*LayerNorm, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: LayerNorm: nil float module")
	}
	s, z, err := fromQParams("LayerNorm", out)
	if err != nil {
		return nil, err
	}
	o, err := newOut("LayerNorm", s, z)
	if err != nil {
		return nil, err
	}
	return &LayerNorm{NormalizedShape: append([]int(nil), f.NormalizedShape...), Eps: f.Eps,
		Weight: cloneOpt(f.Weight), Bias: cloneOpt(f.Bias), OutQParams: o}, nil
}

// TypeName returns "quantized.LayerNorm".
func (m *LayerNorm) TypeName() string { return "quantized.LayerNorm" }

// Forward normalizes quint8 x over its trailing NormalizedShape dimensions.
func (m *LayerNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("LayerNorm", x)
		s, z := m.OutputQParams()
		return must(oq.LayerNorm(x, m.NormalizedShape, m.Weight, m.Bias, m.Eps, s, z))
	})
}

// GroupNorm is the quantized GroupNorm (torch.ao.nn.quantized.GroupNorm),
// with float internals: quantize(ops.GroupNorm(dequantize(x))) to the output
// qparams. Weight and bias are float32 [C] or nil.
type GroupNorm struct {
	nn.Base
	NumGroups, NumChannels int
	Eps                    float32
	Weight                 *tensor.Tensor `nn:"weight,buffer"`
	Bias                   *tensor.Tensor `nn:"bias,buffer"`
	OutQParams
}

// NewGroupNorm returns a GroupNorm of numChannels channels in numGroups
// groups with optional affine weight and bias, eps (0 means 1e-5) and output
// qparams.
func NewGroupNorm(numGroups, numChannels int, weight, bias *tensor.Tensor, eps, scale float32, zeroPoint int32) (*GroupNorm, error) {
	if numGroups <= 0 || numChannels%numGroups != 0 {
		return nil, fmt.Errorf("quantized: GroupNorm: %d channels not divisible into %d groups", numChannels, numGroups)
	}
	if err := checkVec("GroupNorm", "weight", weight, numChannels); err != nil {
		return nil, err
	}
	if err := checkVec("GroupNorm", "bias", bias, numChannels); err != nil {
		return nil, err
	}
	if eps == 0 {
		eps = 1e-5
	}
	o, err := newOut("GroupNorm", scale, zeroPoint)
	return &GroupNorm{NumGroups: numGroups, NumChannels: numChannels, Eps: eps, Weight: cloneOpt(weight), Bias: cloneOpt(bias), OutQParams: o}, err
}

// TypeName returns "quantized.GroupNorm".
func (m *GroupNorm) TypeName() string { return "quantized.GroupNorm" }

// Forward normalizes quint8 x [N, C, ...].
func (m *GroupNorm) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("GroupNorm", x)
		if x.NDim() < 2 || x.Dim(1) != m.NumChannels {
			panic(fmt.Sprintf("quantized: GroupNorm: input %v, want [N, %d, ...]", x.Shape(), m.NumChannels))
		}
		s, z := m.OutputQParams()
		return quantizeOut(ops.GroupNorm(ops.Dequantize(x), m.NumGroups, m.Weight, m.Bias, m.Eps), s, z)
	})
}

// InstanceNorm2d is the quantized InstanceNorm2d
// (torch.ao.nn.quantized.InstanceNorm2d): each channel of each sample is
// normalized over its H*W values (a GroupNorm with one channel per group),
// with float internals and output qparams.
type InstanceNorm2d struct{ InstanceNorm }

// InstanceNorm1d is the quantized InstanceNorm1d
// (torch.ao.nn.quantized.InstanceNorm1d) over [N, C, L].
type InstanceNorm1d struct{ InstanceNorm }

// InstanceNorm holds the state InstanceNorm1d and InstanceNorm2d share:
// optional float32 affine weight and bias [C] and the output qparams.
type InstanceNorm struct {
	nn.Base
	NumFeatures int
	Eps         float32
	Weight      *tensor.Tensor `nn:"weight,buffer"`
	Bias        *tensor.Tensor `nn:"bias,buffer"`
	OutQParams
	rank int
}

func newInstanceNorm(op string, rank, c int, weight, bias *tensor.Tensor, eps, scale float32, zp int32) (InstanceNorm, error) {
	if err := checkVec(op, "weight", weight, c); err != nil {
		return InstanceNorm{}, err
	}
	if err := checkVec(op, "bias", bias, c); err != nil {
		return InstanceNorm{}, err
	}
	if eps == 0 {
		eps = 1e-5
	}
	o, err := newOut(op, scale, zp)
	return InstanceNorm{NumFeatures: c, Eps: eps, Weight: cloneOpt(weight), Bias: cloneOpt(bias), OutQParams: o, rank: rank}, err
}

// NewInstanceNorm2d returns an InstanceNorm2d over numFeatures channels with
// optional affine weight and bias, eps (0 means 1e-5) and output qparams.
func NewInstanceNorm2d(numFeatures int, weight, bias *tensor.Tensor, eps, scale float32, zeroPoint int32) (*InstanceNorm2d, error) {
	n, err := newInstanceNorm("InstanceNorm2d", 4, numFeatures, weight, bias, eps, scale, zeroPoint)
	return &InstanceNorm2d{n}, err
}

// NewInstanceNorm1d returns an InstanceNorm1d (see NewInstanceNorm2d).
func NewInstanceNorm1d(numFeatures int, weight, bias *tensor.Tensor, eps, scale float32, zeroPoint int32) (*InstanceNorm1d, error) {
	n, err := newInstanceNorm("InstanceNorm1d", 3, numFeatures, weight, bias, eps, scale, zeroPoint)
	return &InstanceNorm1d{n}, err
}

// TypeName returns "quantized.InstanceNorm2d".
func (m *InstanceNorm2d) TypeName() string { return "quantized.InstanceNorm2d" }

// TypeName returns "quantized.InstanceNorm1d".
func (m *InstanceNorm1d) TypeName() string { return "quantized.InstanceNorm1d" }

// Forward normalizes quint8 x [N, C, H, W].
func (m *InstanceNorm2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("InstanceNorm2d", x) })
}

// Forward normalizes quint8 x [N, C, L].
func (m *InstanceNorm1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor { return m.forward("InstanceNorm1d", x) })
}

func (m *InstanceNorm) forward(op string, x *tensor.Tensor) *tensor.Tensor {
	checkQ(op, x)
	if x.NDim() != m.rank || x.Dim(1) != m.NumFeatures {
		panic(fmt.Sprintf("quantized: %s: input %v, want %d dimensions with %d channels", op, x.Shape(), m.rank, m.NumFeatures))
	}
	s, z := m.OutputQParams()
	return quantizeOut(ops.GroupNorm(ops.Dequantize(x), m.NumFeatures, m.Weight, m.Bias, m.Eps), s, z)
}
