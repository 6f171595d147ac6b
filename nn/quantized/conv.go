package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/conv"
	"github.com/quanta-go/quanta/internal/kernels/qconv"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// Conv2d is a statically quantized 2-D convolution
// (torch.ao.nn.quantized.Conv2d) with zero padding: quint8 input [N, C, H,
// W] (or [C, H, W]), qint8 weight [out, in/groups, kH, kW] (per-tensor or
// per-channel along axis 0), float32 bias, quint8 output with the stored
// output qparams, computed by the qconv kernels (see the package comment).
// The weights are packed once per input height, width and zero point (the
// kernels' layout depends on them) and reused for every later call.
type Conv2d struct {
	nn.Base
	InChannels, OutChannels int
	KernelSize              [2]int
	Attrs                   ops.ConvAttrs
	WeightParams

	relu  bool
	name  string
	cache map[convKey]*qconv.Packed
}

type convKey struct {
	h, w int
	za   int32
}

// ConvReLU2d is Conv2d with a fused ReLU
// (torch.ao.nn.intrinsic.quantized.ConvReLU2d).
type ConvReLU2d struct{ Conv2d }

// Conv1d is a statically quantized 1-D convolution
// (torch.ao.nn.quantized.Conv1d) over [N, C, L], computed as a Conv2d of
// height 1. Its weight is [out, in/groups, k].
type Conv1d struct{ Conv2d }

// ConvReLU1d is Conv1d with a fused ReLU
// (torch.ao.nn.intrinsic.quantized.ConvReLU1d).
type ConvReLU1d struct{ Conv2d }

// NewConv2d returns a quantized Conv2d from a qint8 weight [out, in/groups,
// kH, kW], a float32 bias [out] (or nil), the convolution attributes and the
// output qparams.
func NewConv2d(weight, bias *tensor.Tensor, attrs ops.ConvAttrs, outScale float32, outZeroPoint int32) (*Conv2d, error) {
	m := &Conv2d{}
	return m, m.init("Conv2d", false, false, weight, bias, attrs, outScale, outZeroPoint)
}

// NewConvReLU2d returns a quantized ConvReLU2d (see NewConv2d).
func NewConvReLU2d(weight, bias *tensor.Tensor, attrs ops.ConvAttrs, outScale float32, outZeroPoint int32) (*ConvReLU2d, error) {
	m := &ConvReLU2d{}
	return m, m.init("ConvReLU2d", true, false, weight, bias, attrs, outScale, outZeroPoint)
}

// NewConv1d returns a quantized Conv1d from a qint8 weight [out, in/groups,
// k], a float32 bias (or nil), the attributes and the output qparams.
func NewConv1d(weight, bias *tensor.Tensor, attrs ops.Conv1dAttrs, outScale float32, outZeroPoint int32) (*Conv1d, error) {
	m := &Conv1d{}
	return m, m.init("Conv1d", false, true, weight, bias, attrs2d(attrs), outScale, outZeroPoint)
}

// NewConvReLU1d returns a quantized ConvReLU1d (see NewConv1d).
func NewConvReLU1d(weight, bias *tensor.Tensor, attrs ops.Conv1dAttrs, outScale float32, outZeroPoint int32) (*ConvReLU1d, error) {
	m := &ConvReLU1d{}
	return m, m.init("ConvReLU1d", true, true, weight, bias, attrs2d(attrs), outScale, outZeroPoint)
}

func attrs2d(a ops.Conv1dAttrs) ops.ConvAttrs {
	return ops.ConvAttrs{Stride: [2]int{1, a.Stride}, Padding: [2]int{0, a.Padding}, Dilation: [2]int{1, a.Dilation}, Groups: a.Groups}
}

func norm1(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

func (m *Conv2d) init(op string, relu, oneD bool, weight, bias *tensor.Tensor, attrs ops.ConvAttrs, scale float32, zp int32) error {
	m.name, m.relu = op, relu
	want := 4
	if oneD {
		want = 3
	}
	if weight == nil || weight.NDim() != want {
		return fmt.Errorf("quantized: %s: weight must have %d dimensions", op, want)
	}
	attrs.Stride = [2]int{norm1(attrs.Stride[0]), norm1(attrs.Stride[1])}
	attrs.Dilation = [2]int{norm1(attrs.Dilation[0]), norm1(attrs.Dilation[1])}
	attrs.Groups = norm1(attrs.Groups)
	m.Attrs = attrs
	m.OutChannels = weight.Dim(0)
	m.InChannels = weight.Dim(1) * attrs.Groups
	if oneD {
		m.KernelSize = [2]int{1, weight.Dim(2)}
	} else {
		m.KernelSize = [2]int{weight.Dim(2), weight.Dim(3)}
	}
	if m.OutChannels%attrs.Groups != 0 {
		return fmt.Errorf("quantized: %s: %d output channels not divisible by %d groups", op, m.OutChannels, attrs.Groups)
	}
	if attrs.Padding[0] < 0 || attrs.Padding[1] < 0 {
		return fmt.Errorf("quantized: %s: negative padding %v", op, attrs.Padding)
	}
	return m.WeightParams.init(op, weight, bias, 0, m.OutChannels, scale, zp, m.repack)
}

func (m *Conv2d) repack() error {
	m.cache = map[convKey]*qconv.Packed{}
	// Validate the weights once with a one-pixel-output geometry.
	_, err := m.packFor(convKey{h: m.minSize(0), w: m.minSize(1), za: 0})
	return err
}

// minSize returns the smallest input size along spatial dim d that gives one
// output.
func (m *Conv2d) minSize(d int) int {
	s := m.Attrs.Dilation[d]*(m.KernelSize[d]-1) + 1 - 2*m.Attrs.Padding[d]
	if s < 1 {
		s = 1
	}
	return s
}

func (m *Conv2d) params(k convKey) qconv.Params {
	_, zw := m.weightQ()
	return qconv.Params{
		Conv2DParams: conv.Conv2DParams{
			N: 1, C: m.InChannels, H: k.h, W: k.w, OutC: m.OutChannels,
			KH: m.KernelSize[0], KW: m.KernelSize[1],
			StrideH: m.Attrs.Stride[0], StrideW: m.Attrs.Stride[1],
			PadH: m.Attrs.Padding[0], PadW: m.Attrs.Padding[1],
			DilH: m.Attrs.Dilation[0], DilW: m.Attrs.Dilation[1],
			Groups: m.Attrs.Groups,
		},
		InZeroPoint:      k.za,
		WeightZeroPoints: zw,
	}
}

// packFor returns the packed weights for one input geometry; m.mu is held.
func (m *Conv2d) packFor(k convKey) (*qconv.Packed, error) {
	if pk, ok := m.cache[k]; ok {
		return pk, nil
	}
	pk, err := qconv.Pack(m.params(k), m.Weight.I8())
	if err != nil {
		return nil, fmt.Errorf("quantized: %s: %w", m.name, err)
	}
	if len(m.cache) >= 8 {
		m.cache = map[convKey]*qconv.Packed{}
	}
	m.cache[k] = pk
	return pk, nil
}

// TypeName returns "quantized.Conv2d".
func (m *Conv2d) TypeName() string { return "quantized.Conv2d" }

// TypeName returns "quantized.ConvReLU2d".
func (m *ConvReLU2d) TypeName() string { return "quantized.ConvReLU2d" }

// TypeName returns "quantized.Conv1d".
func (m *Conv1d) TypeName() string { return "quantized.Conv1d" }

// TypeName returns "quantized.ConvReLU1d".
func (m *ConvReLU1d) TypeName() string { return "quantized.ConvReLU1d" }

// Forward convolves quint8 x [N, C, H, W] or [C, H, W].
func (m *Conv2d) Forward(x *tensor.Tensor) *tensor.Tensor { return nn.Call1(m, x, m.forward2d) }

// Forward convolves quint8 x [N, C, H, W] or [C, H, W] and applies the ReLU.
func (m *ConvReLU2d) Forward(x *tensor.Tensor) *tensor.Tensor { return nn.Call1(m, x, m.forward2d) }

// Forward convolves quint8 x [N, C, L] or [C, L].
func (m *Conv1d) Forward(x *tensor.Tensor) *tensor.Tensor { return nn.Call1(m, x, m.forward1d) }

// Forward convolves quint8 x [N, C, L] or [C, L] and applies the ReLU.
func (m *ConvReLU1d) Forward(x *tensor.Tensor) *tensor.Tensor { return nn.Call1(m, x, m.forward1d) }

func (m *Conv2d) forward1d(x *tensor.Tensor) *tensor.Tensor {
	checkQ(m.name, x)
	switch x.NDim() {
	case 2:
		y := m.forward2d(tensor.Unsqueeze(x, 1))
		return tensor.Squeeze(y, 1)
	case 3:
		y := m.forward2d(tensor.Unsqueeze(x, 2))
		return tensor.Squeeze(y, 2)
	}
	panic(fmt.Sprintf("quantized: %s: input %v, want [N, C, L] or [C, L]", m.name, x.Shape()))
}

func (m *Conv2d) forward2d(x *tensor.Tensor) *tensor.Tensor {
	sa, za := checkQ(m.name, x)
	batched := x.NDim() == 4
	if !batched && x.NDim() != 3 {
		panic(fmt.Sprintf("quantized: %s: input %v, want [N, C, H, W] or [C, H, W]", m.name, x.Shape()))
	}
	n := 1
	if batched {
		n = x.Dim(0)
	}
	c, h, w := x.Dim(-3), x.Dim(-2), x.Dim(-1)
	if c != m.InChannels {
		panic(fmt.Sprintf("quantized: %s: input has %d channels, want %d", m.name, c, m.InChannels))
	}
	m.sync(m.name)
	m.mu.Lock()
	pk, err := m.packFor(convKey{h, w, za})
	r := m.requant(sa, m.OutChannels, m.relu)
	m.mu.Unlock()
	if err != nil {
		panic(fmt.Sprintf("quantized: %s: input %v: %v", m.name, x.Shape(), err))
	}
	p := pk.Params().Conv2DParams
	oh, ow := p.OutH(), p.OutW()
	in, outLen := c*h*w, m.OutChannels*oh*ow
	out := make([]uint8, n*outLen)
	xs := x.U8()
	for i := 0; i < n; i++ {
		qconv.Conv2D(pk, xs[i*in:(i+1)*in], r, out[i*outLen:(i+1)*outLen])
	}
	sy, zy := m.OutputQParams()
	shape := []int{m.OutChannels, oh, ow}
	if batched {
		shape = append([]int{n}, shape...)
	}
	return tensor.NewQuantized(tensor.QUInt8, out, outQ(sy, zy), shape...)
}

// Conv2dFromFloat quantizes a float Conv2d (PyTorch's Conv2d.from_float):
// the weight with the qparams weightObserver computes (nil means per-tensor
// symmetric qint8 min/max; a per-channel observer must use axis 0), the
// bias kept float, and out as the output qparams.
func Conv2dFromFloat(f *nn.Conv2d, weightObserver observer.Observer, out *tensor.QParams) (*Conv2d, error) {
	w, s, z, err := convParts("Conv2d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConv2d(w, f.Bias, f.Attrs(), s, z)
}

// ConvReLU2dFromFloat quantizes a float Conv2d followed by a ReLU (the
// fused nni.ConvReLU2d); arguments as Conv2dFromFloat.
func ConvReLU2dFromFloat(f *nn.Conv2d, weightObserver observer.Observer, out *tensor.QParams) (*ConvReLU2d, error) {
	w, s, z, err := convParts("ConvReLU2d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConvReLU2d(w, f.Bias, f.Attrs(), s, z)
}

// Conv1dFromFloat quantizes a float Conv1d; arguments as Conv2dFromFloat.
func Conv1dFromFloat(f *nn.Conv1d, weightObserver observer.Observer, out *tensor.QParams) (*Conv1d, error) {
	w, s, z, err := convParts("Conv1d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConv1d(w, f.Bias, f.Attrs(), s, z)
}

// ConvReLU1dFromFloat quantizes a float Conv1d followed by a ReLU (the fused
// nni.ConvReLU1d); arguments as Conv2dFromFloat.
func ConvReLU1dFromFloat(f *nn.Conv1d, weightObserver observer.Observer, out *tensor.QParams) (*ConvReLU1d, error) {
	w, s, z, err := convParts("ConvReLU1d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConvReLU1d(w, f.Bias, f.Attrs(), s, z)
}

func convParts(op string, w *tensor.Tensor, obs observer.Observer, out *tensor.QParams) (*tensor.Tensor, float32, int32, error) {
	s, z, err := fromQParams(op, out)
	if err != nil {
		return nil, 0, 0, err
	}
	qw, err := QuantizeWeight(w, obs)
	return qw, s, z, err
}
