package quantized

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// init registers this package's kernels with ops.RegisterQuantized, so that
// ops.ReLU, ops.MaxPool2d and the other ops listed there (and the nn modules
// calling them) run on quantized tensors. Output qparams follow PyTorch's
// functional ops on quantized tensors: the input's qparams, except the
// fixed ones of Sigmoid, Hardsigmoid and Tanh.
func init() {
	sameQ := func(x *tensor.Tensor) (float32, int32) {
		q := x.QParams()
		return q.Scale[0], q.ZeroPoint[0]
	}
	one := func(name string, fn func(attrs any, x *tensor.Tensor) (*tensor.Tensor, error)) {
		ops.RegisterQuantized(name, func(attrs any, in []*tensor.Tensor) (*tensor.Tensor, error) {
			if len(in) != 1 {
				return nil, fmt.Errorf("want 1 input, got %d", len(in))
			}
			x := in[0]
			if q := x.QParams(); q == nil || len(q.Scale) != 1 || q.Scheme.PerChannel() {
				return nil, fmt.Errorf("want per-tensor qparams")
			}
			return fn(attrs, x)
		})
	}
	one("ReLU", func(_ any, x *tensor.Tensor) (*tensor.Tensor, error) { return ReLU(x) })
	clamp := func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		c, ok := a.(ops.ClampAttrs)
		if !ok {
			return nil, fmt.Errorf("attributes %T, want ops.ClampAttrs", a)
		}
		return Hardtanh(x, c.Min, c.Max)
	}
	one("ReLU6", clamp)
	one("Hardtanh", clamp)
	one("LeakyReLU", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		s, z := sameQ(x)
		return LeakyReLU(x, a.(ops.LeakyReLUAttrs).Slope, s, z)
	})
	one("ELU", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		s, z := sameQ(x)
		return ELU(x, a.(ops.ELUAttrs).Alpha, s, z)
	})
	one("GELU", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		s, z := sameQ(x)
		return GELU(x, a.(ops.GELUAttrs).Approximate, s, z)
	})
	one("Hardswish", func(_ any, x *tensor.Tensor) (*tensor.Tensor, error) {
		s, z := sameQ(x)
		return Hardswish(x, s, z)
	})
	one("Hardsigmoid", func(_ any, x *tensor.Tensor) (*tensor.Tensor, error) { return Hardsigmoid(x) })
	one("Sigmoid", func(_ any, x *tensor.Tensor) (*tensor.Tensor, error) { return Sigmoid(x) })
	one("Tanh", func(_ any, x *tensor.Tensor) (*tensor.Tensor, error) { return Tanh(x) })
	one("MaxPool2d", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) { return MaxPool2d(x, a.(ops.PoolAttrs)) })
	one("AvgPool2d", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) { return AvgPool2d(x, a.(ops.PoolAttrs)) })
	one("AdaptiveAvgPool2d", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		o := a.(ops.AdaptivePoolAttrs).Output
		return AdaptiveAvgPool2d(x, o[0], o[1])
	})
	one("UpsampleNearest2d", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		return UpsampleNearest2d(x, a.(ops.UpsampleAttrs))
	})
	one("UpsampleBilinear2d", func(a any, x *tensor.Tensor) (*tensor.Tensor, error) {
		return UpsampleBilinear2d(x, a.(ops.UpsampleAttrs))
	})
}
