package eager

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

type lstmLike interface {
	nn.Module
	Forward(x *tensor.Tensor, s *nn.LSTMState) (*tensor.Tensor, nn.LSTMState)
}

type seqModel struct {
	nn.Base
	RNN  lstmLike       `nn:"rnn"`
	Head *nn.Sequential `nn:"head"`
	Out  nn.Layer       `nn:"out"`
}

func (m *seqModel) Forward(x *tensor.Tensor) *tensor.Tensor {
	y, _ := m.RNN.Forward(x, nil)
	return m.Out.Forward(m.Head.Forward(y))
}

func newSeqModel(t testing.TB) *seqModel {
	rng := tensor.NewRNG(5)
	rnn, err := nn.NewLSTM(8, 16, nn.RNNOptions{RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := nn.NewLinear(16, 16, nn.LinearOptions{RNG: rng})
	l2, _ := nn.NewLinear(16, 4, nn.LinearOptions{RNG: rng})
	return &seqModel{RNN: rnn, Head: nn.NewSequential(l1, nn.NewReLU()), Out: l2}
}

func relErr(a, b *tensor.Tensor) float64 {
	var num, den float64
	for i, v := range a.F32() {
		d := float64(v - b.F32()[i])
		num += d * d
		den += float64(b.F32()[i]) * float64(b.F32()[i])
	}
	return math.Sqrt(num / den)
}

func TestQuantizeDynamic(t *testing.T) {
	x := tensor.Randn(tensor.NewRNG(1), 6, 3, 8)
	for _, opt := range []DynamicOptions{{}, {PerChannel: true, Engine: "x86"}, {Float16: true}, {Engine: "qnnpack"}} {
		m := newSeqModel(t)
		nn.Eval(m)
		var ref, got *tensor.Tensor
		autograd.NoGrad(func() { ref = m.Forward(x) })
		done, err := QuantizeDynamic(m, opt)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(done) != "[rnn head.0 out]" {
			t.Fatalf("%+v: replaced %v", opt, done)
		}
		if nn.TypeName(m.RNN) != "quantized.dynamic.LSTM" || nn.TypeName(m.Out) != "quantized.dynamic.Linear" {
			t.Fatalf("types %s %s", nn.TypeName(m.RNN), nn.TypeName(m.Out))
		}
		autograd.NoGrad(func() { got = m.Forward(x) })
		tol := 0.05
		if opt.Float16 {
			tol = 1e-3
		}
		if e := relErr(got, ref); e > tol || e == 0 && !opt.Float16 {
			t.Fatalf("%+v: relative error %g vs the float model", opt, e)
		}
	}
}

func TestQuantizeDynamicSkipAndTypes(t *testing.T) {
	m := newSeqModel(t)
	m.Head.ModuleBase().QConfig = (*quant.QConfig)(nil) // head.qconfig = None
	done, err := QuantizeDynamic(m, DynamicOptions{Types: []string{"Linear"}})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(done) != "[out]" || nn.TypeName(m.RNN) != "LSTM" || nn.TypeName(m.Head.At(0)) != "Linear" {
		t.Fatalf("replaced %v; rnn %s head.0 %s", done, nn.TypeName(m.RNN), nn.TypeName(m.Head.At(0)))
	}
	if _, err := QuantizeDynamic(newSeqModel(t), DynamicOptions{Types: []string{"Conv2d"}}); err == nil {
		t.Fatal("Conv2d accepted for dynamic quantization")
	}
	if _, err := QuantizeDynamic(newSeqModel(t), DynamicOptions{Engine: "tpu"}); err == nil {
		t.Fatal("unknown engine accepted")
	}
}

func TestQuantizeDynamicMapping(t *testing.T) {
	m := newSeqModel(t)
	mp := quant.NewQConfigMapping().SetGlobal(quant.DefaultDynamicQConfig).
		SetModuleName("rnn", quant.Float16DynamicQConfig).
		SetModuleName("out", nil)
	done, err := QuantizeDynamic(m, DynamicOptions{Mapping: mp})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(done) != "[rnn head.0]" || nn.TypeName(m.Out) != "Linear" {
		t.Fatalf("replaced %v, out %s", done, nn.TypeName(m.Out))
	}
}

// The dynamic quantization tutorial's one call:
// quantize_dynamic(model, {nn.LSTM, nn.Linear}, dtype=torch.qint8).
func ExampleQuantizeDynamic() {
	rng := tensor.NewRNG(7)
	lstm, _ := nn.NewLSTM(32, 64, nn.RNNOptions{RNG: rng})
	fc, _ := nn.NewLinear(64, 10, nn.LinearOptions{RNG: rng})
	model := &seqModel{RNN: lstm, Head: nn.NewSequential(nn.NewIdentity()), Out: fc}
	nn.Eval(model)

	replaced, err := QuantizeDynamic(model, DynamicOptions{Types: []string{"LSTM", "Linear"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("quantized:", replaced)
	var y *tensor.Tensor
	autograd.NoGrad(func() { y = model.Forward(tensor.Randn(rng, 5, 1, 32)) })
	fmt.Println("output:", y.Shape())
	// Output:
	// quantized: [rnn out]
	// output: [5 1 10]
}
