package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// ConvTranspose1d is a statically quantized transposed 1-D convolution
// (torch.ao.nn.quantized.ConvTranspose1d): quint8 input [N, C_in, L] (or
// [C_in, L]), qint8 weight [C_in, C_out/groups, k] (per-tensor, or
// per-channel along axis 1 as ConvTranspose2d), float32 bias [C_out],
// quint8 output with the stored qparams. It runs the 2-D transposed kernel
// (ops/quantized.ConvTranspose2d) on the input viewed as [N, C_in, 1, L]
// with the weight viewed as [C_in, C_out/groups, 1, k], so its numerics are
// ConvTranspose2d's (PyTorch's qnnpack engine). Attrs are those of that
// 2-D convolution (height stride 1, no height padding).
type ConvTranspose1d struct {
	nn.Base
	InChannels, OutChannels int
	KernelSize              int
	Attrs                   ops.ConvTransposeAttrs
	WeightParams

	packed *oq.ConvTranspose2dWeight
}

// ConvTranspose1dAttrs are the attributes of a transposed 1-D convolution,
// as the arguments of torch.nn.functional.conv_transpose1d. Zero Stride,
// Dilation and Groups mean 1.
type ConvTranspose1dAttrs struct {
	Stride, Padding, OutputPadding, Dilation int
	Groups                                   int
}

// attrs2d returns the 2-D attributes over [N, C, 1, L].
func (a ConvTranspose1dAttrs) attrs2d() ops.ConvTransposeAttrs {
	return ops.ConvTransposeAttrs{Stride: [2]int{1, norm1(a.Stride)}, Padding: [2]int{0, a.Padding},
		OutputPadding: [2]int{0, a.OutputPadding}, Dilation: [2]int{1, norm1(a.Dilation)}, Groups: norm1(a.Groups)}
}

// NewConvTranspose1d returns a quantized ConvTranspose1d from a qint8
// weight [C_in, C_out/groups, k], a float32 bias [C_out] (or nil), the
// attributes and the output qparams.
func NewConvTranspose1d(weight, bias *tensor.Tensor, attrs ConvTranspose1dAttrs, outScale float32, outZeroPoint int32) (*ConvTranspose1d, error) {
	if weight == nil || weight.NDim() != 3 {
		return nil, fmt.Errorf("quantized: ConvTranspose1d: weight must be [in, out/groups, k]")
	}
	a := attrs.attrs2d()
	if attrs.Stride < 0 || attrs.Dilation < 0 || attrs.Groups < 0 || attrs.Padding < 0 || attrs.OutputPadding < 0 {
		return nil, fmt.Errorf("quantized: ConvTranspose1d: negative attribute in %+v", attrs)
	}
	if weight.Dim(0)%a.Groups != 0 {
		return nil, fmt.Errorf("quantized: ConvTranspose1d: %d input channels not divisible by %d groups", weight.Dim(0), a.Groups)
	}
	m := &ConvTranspose1d{Attrs: a, InChannels: weight.Dim(0), OutChannels: weight.Dim(1) * a.Groups, KernelSize: weight.Dim(2)}
	return m, m.WeightParams.init("ConvTranspose1d", weight, bias, 1, m.OutChannels, outScale, outZeroPoint, m.repack)
}

func (m *ConvTranspose1d) repack() error {
	w := m.Weight
	if w.NDim() != 3 {
		return fmt.Errorf("quantized: ConvTranspose1d: weight %v must be [in, out/groups, k]", w.Shape())
	}
	pk, err := oq.PackConvTranspose2d(w.Reshape(w.Dim(0), w.Dim(1), 1, w.Dim(2)), m.Bias, m.Attrs)
	if err != nil {
		return fmt.Errorf("quantized: ConvTranspose1d: %w", err)
	}
	m.packed = pk
	return nil
}

// ConvTranspose1dFromFloat quantizes a float ConvTranspose1d: the weight
// with the qparams weightObserver computes (nil means per-tensor
// symmetric qint8 min/max; a per-channel observer must use axis 1), the
// bias kept float, and out as the output qparams.
func ConvTranspose1dFromFloat(f *nn.ConvTranspose1d, weightObserver observer.Observer, out *tensor.QParams) (*ConvTranspose1d, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: ConvTranspose1d: nil float module")
	}
	w, s, z, err := convParts("ConvTranspose1d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConvTranspose1d(w, f.Bias, ConvTranspose1dAttrs{Stride: f.Stride, Padding: f.Padding,
		OutputPadding: f.OutputPadding, Dilation: f.Dilation, Groups: f.Groups}, s, z)
}

// TypeName returns "quantized.ConvTranspose1d".
func (m *ConvTranspose1d) TypeName() string { return "quantized.ConvTranspose1d" }

// Forward applies the transposed convolution to quint8 x [N, C, L] or
// [C, L].
func (m *ConvTranspose1d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("ConvTranspose1d", x)
		if x.NDim() != 2 && x.NDim() != 3 {
			panic(fmt.Sprintf("quantized: ConvTranspose1d: input %v, want [N, C, L] or [C, L]", x.Shape()))
		}
		h := x.NDim() - 1
		m.mu.Lock()
		pk := m.packed
		m.mu.Unlock()
		s, z := m.OutputQParams()
		y := must(oq.ConvTranspose2d(tensor.Unsqueeze(x, h), pk, s, z))
		return tensor.Squeeze(y, h)
	})
}
