package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// GroupNormFromFloat converts a float GroupNorm (its groups, eps and affine
// weight and bias, copied) with output qparams out
// (torch.ao.nn.quantized.GroupNorm.from_float).
func GroupNormFromFloat(f *nn.GroupNorm, out *tensor.QParams) (*GroupNorm, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: GroupNorm: nil float module")
	}
	s, z, err := fromQParams("GroupNorm", out)
	if err != nil {
		return nil, err
	}
	return orNil(NewGroupNorm(f.NumGroups, f.NumChannels, f.Weight, f.Bias, f.Eps, s, z))
}

// InstanceNorm1dFromFloat converts a float InstanceNorm1d (eps and affine
// weight and bias, copied) with output qparams out
// (torch.ao.nn.quantized.InstanceNorm1d.from_float). As in PyTorch, the
// quantized module always normalizes with each instance's own statistics:
// a float module that tracks running statistics uses those in evaluation
// instead, so for it the two differ.
func InstanceNorm1dFromFloat(f *nn.InstanceNorm1d, out *tensor.QParams) (*InstanceNorm1d, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: InstanceNorm1d: nil float module")
	}
	s, z, err := fromQParams("InstanceNorm1d", out)
	if err != nil {
		return nil, err
	}
	return orNil(NewInstanceNorm1d(f.NumFeatures, f.Weight, f.Bias, f.Eps, s, z))
}

// InstanceNorm2dFromFloat converts a float InstanceNorm2d with output
// qparams out; see InstanceNorm1dFromFloat.
func InstanceNorm2dFromFloat(f *nn.InstanceNorm2d, out *tensor.QParams) (*InstanceNorm2d, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: InstanceNorm2d: nil float module")
	}
	s, z, err := fromQParams("InstanceNorm2d", out)
	if err != nil {
		return nil, err
	}
	return orNil(NewInstanceNorm2d(f.NumFeatures, f.Weight, f.Bias, f.Eps, s, z))
}

// ELUFromFloat converts a float ELU (its alpha) with output qparams out
// (torch.ao.nn.quantized.ELU.from_float).
func ELUFromFloat(f *nn.ELU, out *tensor.QParams) (*ELU, error) {
	if f == nil {
		return nil, fmt.Errorf("quantized: ELU: nil float module")
	}
	s, z, err := fromQParams("ELU", out)
	if err != nil {
		return nil, err
	}
	return orNil(NewELU(f.Alpha, s, z))
}

// orNil returns (nil, err) when err is set, so a failed conversion never
// hands back a half-built module.
func orNil[M any](m *M, err error) (*M, error) {
	if err != nil {
		return nil, err
	}
	return m, nil
}
