package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// ConvTranspose2d is a statically quantized transposed 2-D convolution
// (torch.ao.nn.quantized.ConvTranspose2d) on ops/quantized.ConvTranspose2d:
// quint8 input [N, C_in, H, W], qint8 weight [C_in, C_out/groups, kH, kW]
// (per-tensor, or per-channel along axis 1, which PyTorch's engines do not
// offer), float32 bias [C_out], quint8 output with the stored qparams.
type ConvTranspose2d struct {
	nn.Base
	InChannels, OutChannels int
	KernelSize              [2]int
	Attrs                   ops.ConvTransposeAttrs
	WeightParams

	packed *oq.ConvTranspose2dWeight
}

// NewConvTranspose2d returns a quantized ConvTranspose2d from a qint8
// weight [C_in, C_out/groups, kH, kW], a float32 bias [C_out] (or nil), the
// attributes and the output qparams.
func NewConvTranspose2d(weight, bias *tensor.Tensor, attrs ops.ConvTransposeAttrs, outScale float32, outZeroPoint int32) (*ConvTranspose2d, error) {
	if weight == nil || weight.NDim() != 4 {
		return nil, fmt.Errorf("quantized: ConvTranspose2d: weight must be [in, out/groups, kH, kW]")
	}
	attrs.Groups = norm1(attrs.Groups)
	m := &ConvTranspose2d{Attrs: attrs, InChannels: weight.Dim(0), OutChannels: weight.Dim(1) * attrs.Groups,
		KernelSize: [2]int{weight.Dim(2), weight.Dim(3)}}
	return m, m.WeightParams.init("ConvTranspose2d", weight, bias, 1, m.OutChannels, outScale, outZeroPoint, m.repack)
}

func (m *ConvTranspose2d) repack() error {
	pk, err := oq.PackConvTranspose2d(m.Weight, m.Bias, m.Attrs)
	if err != nil {
		return fmt.Errorf("quantized: ConvTranspose2d: %w", err)
	}
	m.packed = pk
	return nil
}

// ConvTranspose2dFromFloat quantizes a float ConvTranspose2d: the weight
// with the qparams weightObserver computes (nil means per-tensor symmetric
// qint8 min/max; a per-channel observer must use axis 1), the bias kept
// float, and out as the output qparams.
func ConvTranspose2dFromFloat(f *nn.ConvTranspose2d, weightObserver observer.Observer, out *tensor.QParams) (*ConvTranspose2d, error) {
	w, s, z, err := convParts("ConvTranspose2d", f.Weight, weightObserver, out)
	if err != nil {
		return nil, err
	}
	return NewConvTranspose2d(w, f.Bias, f.Attrs(), s, z)
}

// TypeName returns "quantized.ConvTranspose2d".
func (m *ConvTranspose2d) TypeName() string { return "quantized.ConvTranspose2d" }

// Forward applies the transposed convolution to quint8 x [N, C, H, W] or
// [C, H, W].
func (m *ConvTranspose2d) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		checkQ("ConvTranspose2d", x)
		m.sync("ConvTranspose2d")
		m.mu.Lock()
		pk := m.packed
		m.mu.Unlock()
		s, z := m.OutputQParams()
		return must(oq.ConvTranspose2d(x, pk, s, z))
	})
}
