package eager

import (
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantized"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// square is a user's float module with no quantized counterpart in quanta.
type square struct{ nn.Base }

func (s *square) TypeName() string { return "Square" }
func (s *square) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(s, x, func(x *tensor.Tensor) *tensor.Tensor { return ops.Mul(x, x) })
}

// observedSquare is the user's observed form (PyTorch's
// float_to_observed_custom_module_class target).
type observedSquare struct {
	square
	fromFloat bool
}

func (s *observedSquare) TypeName() string { return "ObservedSquare" }

// quantizedSquare is the user's quantized form: it squares the dequantized
// input and quantizes with the observed output qparams.
type quantizedSquare struct {
	nn.Base
	scale float32
	zp    int32
}

func (s *quantizedSquare) TypeName() string { return "QuantizedSquare" }
func (s *quantizedSquare) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(s, x, func(x *tensor.Tensor) *tensor.Tensor {
		f := ops.Dequantize(x)
		return ops.QuantizePerTensor(ops.Mul(f, f), s.scale, s.zp, tensor.QUInt8)
	})
}

type customNet struct {
	nn.Base
	Quant   nn.Layer `nn:"quant"`
	Sq      nn.Layer `nn:"sq"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (n *customNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return n.DeQuant.Forward(n.Sq.Forward(n.Quant.Forward(x)))
}

func TestCustomModules(t *testing.T) {
	qc, _ := quant.DefaultQConfig("qnnpack")
	fromObserved := func(m nn.Module) (nn.Module, error) {
		q, err := quantized.ObservedQParams(m)
		if err != nil {
			return nil, err
		}
		return &quantizedSquare{scale: q.Scale[0], zp: q.ZeroPoint[0]}, nil
	}
	x := tensor.RandUniform(tensor.NewRNG(1), -2, 2, 64)
	for _, withObserved := range []bool{false, true} {
		cu := CustomModule{FloatType: "Square", FromObserved: fromObserved}
		if withObserved {
			cu.FromFloat = func(f nn.Module, qc *quant.QConfig) (nn.Module, error) {
				return &observedSquare{fromFloat: true}, nil
			}
			cu.ObservedType = "ObservedSquare"
		}
		opt := Options{CustomModules: []CustomModule{cu}}
		m := &customNet{Quant: nn.NewQuantStub(nil), Sq: &square{}, DeQuant: nn.NewDeQuantStub(nil)}
		nn.Eval(m)
		SetQConfig(m, qc)
		must(t, Prepare(m, opt))
		if withObserved {
			if _, ok := m.Sq.(*observedSquare); !ok {
				t.Fatalf("Prepare kept %T, want the observed form", m.Sq)
			}
		}
		if _, ok := m.Sq.ModuleBase().ActivationPostProcess.(*ObserverModule); !ok {
			t.Fatal("the custom module's output is not observed")
		}
		autograd.NoGrad(func() { m.Forward(x) })
		must(t, Convert(m, opt))
		q, ok := m.Sq.(*quantizedSquare)
		if !ok {
			t.Fatalf("Convert gave %T, want the custom quantized module", m.Sq)
		}
		// x*x lies in [0, 4): the observed range, which the histogram
		// observer may clip a little.
		if q.zp != 0 || q.scale < 3.5/255 || q.scale > 4.0/255 {
			t.Errorf("custom module got output qparams %v/%d", q.scale, q.zp)
		}
		var y, xq *tensor.Tensor
		autograd.NoGrad(func() { y, xq = m.Forward(x), ops.Dequantize(m.Quant.Forward(x)) })
		want := ops.QuantizePerTensor(ops.Mul(xq, xq), q.scale, q.zp, tensor.QUInt8)
		if d := tensor.MaxAbsDiff(y, ops.Dequantize(want)); d != 0 {
			t.Errorf("custom quantized output differs from its reference by %v", d)
		}
	}
	// A custom config without FromObserved is an error.
	m := &customNet{Quant: nn.NewQuantStub(nil), Sq: &square{}, DeQuant: nn.NewDeQuantStub(nil)}
	SetQConfig(m, qc)
	err := Prepare(m, Options{CustomModules: []CustomModule{{FloatType: "Square"}}})
	if err == nil || !strings.Contains(err.Error(), "FromObserved") {
		t.Errorf("custom module without FromObserved: %v", err)
	}
}
