package eager_test

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/eager"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantizable"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// Tagger labels every step of a sequence: an LSTM and a linear head
// between the stubs. The LSTM field has an interface type, so that Prepare
// can put the LSTM's quantizable form in its place.
type Tagger struct {
	nn.Base
	Quant   nn.Layer               `nn:"quant"`
	RNN     quantizable.LSTMModule `nn:"rnn"`
	Head    nn.Layer               `nn:"head"`
	DeQuant nn.Layer               `nn:"dequant"`
}

func (m *Tagger) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		y, _ := m.RNN.Forward(m.Quant.Forward(x), nil)
		return m.DeQuant.Forward(m.Head.Forward(y))
	})
}

// Post-training static quantization of a model with an LSTM. Prepare
// swaps the nn.LSTM for quantizable.LSTM, whose cells are made of Linear
// layers, FloatFunctional adds and multiplies and sigmoid/tanh, observes
// them like any other layer; Convert quantizes them. (PyTorch needs
// custom-module configurations for this; here it is the ordinary flow.)
func ExamplePrepare_lstm() {
	rng := tensor.NewRNG(1)
	rnn, _ := nn.NewLSTM(8, 16, nn.RNNOptions{NumLayers: 2, RNG: rng})
	head, _ := nn.NewLinear(16, 4, nn.LinearOptions{RNG: rng})
	model := &Tagger{Quant: nn.NewQuantStub(nil), RNN: rnn, Head: head, DeQuant: nn.NewDeQuantStub(nil)}
	nn.Eval(model)

	qc, _ := quant.DefaultQConfig("qnnpack")
	eager.SetQConfig(model, qc)
	if err := eager.Prepare(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	data := tensor.NewRNG(2)
	x := tensor.Randn(data, 10, 3, 8) // [seq, batch, features]
	var want *tensor.Tensor
	autograd.NoGrad(func() {
		want = model.Forward(x) // the prepared model still computes in float
		for i := 0; i < 8; i++ {
			model.Forward(tensor.Randn(data, 10, 3, 8)) // calibration
		}
	})
	if err := eager.Convert(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	for _, path := range []string{"rnn", "rnn.layers.0.layer_fw.cell.igates", "rnn.layers.0.layer_fw.cell.fgate_cx", "rnn.layers.1.layer_fw.cell.input_gate", "head"} {
		m, _ := nn.Get(model, path)
		fmt.Printf("%-38s %s\n", path, nn.TypeName(m))
	}
	var got *tensor.Tensor
	autograd.NoGrad(func() { got = model.Forward(x) })
	var sig, noise float64
	for i, w := range want.F32() {
		d := float64(got.F32()[i] - w)
		sig, noise = sig+float64(w)*float64(w), noise+d*d
	}
	fmt.Println("output", got.Shape(), "SQNR above 25 dB:", 10*math.Log10(sig/noise) > 25)
	// Output:
	// rnn                                    quantizable.LSTM
	// rnn.layers.0.layer_fw.cell.igates      quantized.Linear
	// rnn.layers.0.layer_fw.cell.fgate_cx    quantized.QFunctional
	// rnn.layers.1.layer_fw.cell.input_gate  Sigmoid
	// head                                   quantized.Linear
	// output [10 3 4] SQNR above 25 dB: true
}
