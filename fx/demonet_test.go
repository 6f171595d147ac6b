package fx

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// demoNet is the demo CNN of internal/demo (which imports this package,
// so its tests cannot import it back), built the same way: conv-bn-relu
// blocks with pooling, a residual block joined by a FloatFunctional
// add-relu, a linear head, and the QuantStub and DeQuantStub eager mode
// needs (identities in the float model).
type demoNet struct {
	nn.Base
	Quant    nn.Layer      `nn:"quant"`
	Features nn.Layer      `nn:"features"`
	Res1     nn.Layer      `nn:"res1"`
	Res2     nn.Layer      `nn:"res2"`
	Skip     nn.Functional `nn:"skip"`
	Flatten  nn.Layer      `nn:"flatten"`
	FC       nn.Layer      `nn:"fc"`
	DeQuant  nn.Layer      `nn:"dequant"`
}

func newDemoNet(w int, rng *tensor.RNG) (*demoNet, error) {
	var errs []error
	convBN := func(in, out int, relu bool) *nn.Sequential {
		conv, err := nn.NewConv2d(in, out, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), NoBias: true, RNG: rng})
		errs = append(errs, err)
		bn, err := nn.NewBatchNorm2d(out, nn.BatchNormOptions{})
		errs = append(errs, err)
		s := nn.NewSequential(conv, bn)
		if relu {
			s.Append(nn.NewReLU())
		}
		return s
	}
	pool := func() nn.Layer {
		p, err := nn.NewMaxPool2d(nn.Pair(2), nn.PoolOptions{})
		errs = append(errs, err)
		return p
	}
	features := nn.NewSequential(convBN(1, w, true), pool(), convBN(w, 2*w, true), pool())
	fc, err := nn.NewLinear(2*w*7*7, 10, nn.LinearOptions{RNG: rng})
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("building the demo model: %w", err)
		}
	}
	n := &demoNet{
		Quant: nn.NewQuantStub(nil), Features: features,
		Res1: convBN(2*w, 2*w, true), Res2: convBN(2*w, 2*w, false),
		Skip: nn.NewFloatFunctional(), Flatten: nn.NewFlatten(1, -1), FC: fc, DeQuant: nn.NewDeQuantStub(nil),
	}
	nn.AssignPaths(n)
	return n, nil
}

// Forward maps images [N, 1, 28, 28] to logits [N, 10].
func (n *demoNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		h := n.Features.Forward(n.Quant.Forward(x))
		h = n.Skip.AddReLU(h, n.Res2.Forward(n.Res1.Forward(h)))
		return n.DeQuant.Forward(n.FC.Forward(n.Flatten.Forward(h)))
	})
}

// TypeName implements nn.Typer: the type name of internal/demo's Net, so
// that traces (and the committed ONNX Runtime references) are the same.
func (n *demoNet) TypeName() string { return "Net" }
