package nn

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// UpsampleOptions are the arguments of torch.nn.Upsample for 2-D inputs.
// Exactly one of Size and ScaleFactor is set.
type UpsampleOptions struct {
	// Size is the output [height, width].
	Size [2]int
	// ScaleFactor gives the output size as floor(input size * factor), per
	// dimension; both factors must be positive and finite. PyTorch's
	// scalar scale_factor=s is [2]float64{s, s}.
	ScaleFactor [2]float64
	// Mode is "nearest" or "bilinear"; empty means "nearest", PyTorch's
	// default.
	Mode string
	// AlignCorners (bilinear only) maps the corner pixels of input and
	// output onto each other (align_corners=True); false is PyTorch's
	// default.
	AlignCorners bool
	// RecomputeScaleFactor (with ScaleFactor only) computes the output size
	// from the factor and then resizes as if that size had been given, so
	// coordinates map with the size ratio instead of 1/factor
	// (recompute_scale_factor=True).
	RecomputeScaleFactor bool
}

// Upsample resizes [N, C, H, W] (or [C, H, W]) inputs by nearest-neighbour
// or bilinear interpolation (torch.nn.Upsample, i.e.
// torch.nn.functional.interpolate with PyTorch 1.13's arithmetic; see
// ops.UpsampleNearest2d and ops.UpsampleBilinear2d). It has no parameters
// and runs natively on quantized tensors, so eager-mode quantization
// leaves it in place.
type Upsample struct {
	Base
	// Mode is "nearest" or "bilinear".
	Mode string
	// Attrs hold the size or scale factor and AlignCorners.
	Attrs ops.UpsampleAttrs
	// RecomputeScaleFactor is UpsampleOptions.RecomputeScaleFactor.
	RecomputeScaleFactor bool
}

// NewUpsample returns an Upsample. It returns an error unless exactly one
// of a positive Size and positive finite ScaleFactor is set, for a mode
// other than "nearest" and "bilinear" (PyTorch's "linear", "bicubic",
// "trilinear", "area" and "nearest-exact" are not provided), for
// AlignCorners with nearest mode and for RecomputeScaleFactor with a Size,
// which PyTorch rejects too.
func NewUpsample(o UpsampleOptions) (*Upsample, error) {
	mode := o.Mode
	if mode == "" {
		mode = "nearest"
	}
	switch mode {
	case "nearest", "bilinear":
	case "linear", "bicubic", "trilinear", "area", "nearest-exact":
		return nil, fmt.Errorf("nn: NewUpsample: mode %q is not supported (want \"nearest\" or \"bilinear\")", mode)
	default:
		return nil, fmt.Errorf("nn: NewUpsample: unknown mode %q (want \"nearest\" or \"bilinear\")", mode)
	}
	hasSize, hasScale := o.Size != [2]int{}, o.ScaleFactor != [2]float64{}
	switch {
	case hasSize && hasScale:
		return nil, fmt.Errorf("nn: NewUpsample: give either a size or a scale factor, not both (size %v, scale factor %v)", o.Size, o.ScaleFactor)
	case !hasSize && !hasScale:
		return nil, fmt.Errorf("nn: NewUpsample: need a size or a scale factor")
	case hasSize && (o.Size[0] < 1 || o.Size[1] < 1):
		return nil, fmt.Errorf("nn: NewUpsample: size %v must be positive", o.Size)
	case hasSize && o.RecomputeScaleFactor:
		return nil, fmt.Errorf("nn: NewUpsample: RecomputeScaleFactor is meaningless with an explicit size")
	case mode == "nearest" && o.AlignCorners:
		return nil, fmt.Errorf("nn: NewUpsample: AlignCorners applies to bilinear mode only")
	}
	for _, f := range o.ScaleFactor {
		if hasScale && (!(f > 0) || math.IsInf(f, 0)) {
			return nil, fmt.Errorf("nn: NewUpsample: scale factor %v must be positive and finite", o.ScaleFactor)
		}
	}
	return &Upsample{Mode: mode, RecomputeScaleFactor: o.RecomputeScaleFactor,
		Attrs: ops.UpsampleAttrs{Size: o.Size, ScaleFactor: o.ScaleFactor, AlignCorners: o.AlignCorners}}, nil
}

// Forward resizes x [N, C, H, W] or [C, H, W]; a quantized x gives a
// quantized output with the same qparams. An input too small for the scale
// factor (an empty output) or a Mode other than "nearest" (or empty) and
// "bilinear" panics, as other ops' shape errors do.
func (m *Upsample) Forward(x *tensor.Tensor) *tensor.Tensor {
	return Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		a := m.Attrs
		if m.RecomputeScaleFactor && a.Size == [2]int{} {
			if s := x.Shape(); len(s) >= 2 {
				out, err := a.OutputSize(s[len(s)-2], s[len(s)-1])
				if err != nil {
					panic(fmt.Sprintf("nn: Upsample: input %v: %v", s, err))
				}
				a = ops.UpsampleAttrs{Size: out, AlignCorners: a.AlignCorners}
			}
		}
		switch m.Mode {
		case "nearest", "":
			return ops.UpsampleNearest2d(x, a)
		case "bilinear":
			return ops.UpsampleBilinear2d(x, a)
		}
		panic(fmt.Sprintf("nn: Upsample: unknown mode %q", m.Mode))
	})
}
