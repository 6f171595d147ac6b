package demo

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/safetensors"
	"github.com/quanta-go/quanta/tensor"
)

// Net is the demo's CNN for 28×28 digits:
//
//	features: conv3x3(1→w)-bn-relu, maxpool 2, conv3x3(w→2w)-bn-relu, maxpool 2   [2w, 7, 7]
//	res1:     conv3x3(2w→2w)-bn-relu
//	res2:     conv3x3(2w→2w)-bn
//	skip:     relu(features + res2(res1(features)))                              (residual add)
//	fc:       flatten, linear(2w·7·7 → 10)
//
// It is written as PyTorch's eager-mode quantization wants a model: a
// QuantStub and a DeQuantStub mark where tensors enter and leave the
// quantized part (identities while the model is float), the residual add
// is a FloatFunctional, and children are nn.Layer (or nn.Functional) fields
// and Sequentials, so that eager mode can fuse conv-bn-relu triples and
// swap modules by path ("features.0.0").
type Net struct {
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

// NewNet builds the demo CNN of width w with weights drawn from rng as
// PyTorch initializes them.
func NewNet(w int, rng *tensor.RNG) (*Net, error) {
	if w < 1 {
		return nil, fmt.Errorf("demo: model width %d must be at least 1", w)
	}
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
			return nil, fmt.Errorf("demo: building the model: %w", err)
		}
	}
	n := &Net{
		Quant:    nn.NewQuantStub(nil),
		Features: features,
		Res1:     convBN(2*w, 2*w, true),
		Res2:     convBN(2*w, 2*w, false),
		Skip:     nn.NewFloatFunctional(),
		Flatten:  nn.NewFlatten(1, -1),
		FC:       fc,
		DeQuant:  nn.NewDeQuantStub(nil),
	}
	nn.AssignPaths(n)
	return n, nil
}

// Forward maps images [N, 1, 28, 28] to logits [N, 10].
func (n *Net) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		h := n.Features.Forward(n.Quant.Forward(x))
		h = n.Skip.AddReLU(h, n.Res2.Forward(n.Res1.Forward(h)))
		return n.DeQuant.Forward(n.FC.Forward(n.Flatten.Forward(h)))
	})
}

// savedSize returns the size in bytes of the model's state dict saved as a
// safetensors file (what nn.SaveFile writes).
func savedSize(m nn.Module) (int64, error) {
	var w countingWriter
	if err := safetensors.Encode(&w, nn.StateDict(m), nil); err != nil {
		return 0, fmt.Errorf("demo: encoding the state dict: %w", err)
	}
	return w.n, nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// fuseGroups are the module groups eager-mode quantization fuses:
// conv-bn-relu in the feature blocks and res1, conv-bn in res2.
var fuseGroups = [][]string{
	{"features.0.0", "features.0.1", "features.0.2"},
	{"features.2.0", "features.2.1", "features.2.2"},
	{"res1.0", "res1.1", "res1.2"},
	{"res2.0", "res2.1"},
}

// clone returns a new Net of width w holding a copy of src's parameters
// and buffers.
func clone(src *Net, w int) (*Net, error) {
	n, err := NewNet(w, tensor.NewRNG(0))
	if err != nil {
		return nil, err
	}
	if err := nn.LoadStateDict(n, nn.StateDict(src)); err != nil {
		return nil, fmt.Errorf("demo: copying the float model: %w", err)
	}
	return n, nil
}
