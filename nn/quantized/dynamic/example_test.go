package dynamic_test

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantized/dynamic"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// Quantize a float LSTM dynamically: int8 weights, activations quantized
// per call with PyTorch's qnnpack rule, then compare with the float model.
func Example() {
	g := tensor.NewRNG(7)
	f, err := nn.NewLSTM(8, 16, nn.RNNOptions{NumLayers: 2, RNG: g})
	if err != nil {
		panic(err)
	}
	q, err := dynamic.LSTMFromFloat(f, dynamic.Options{Rule: opsdyn.RuleTorch})
	if err != nil {
		panic(err)
	}
	x := tensor.RandUniform(g, -1, 1, 10, 1, 8) // [seq, batch, input]
	want, _ := f.Forward(x, nil)
	got, state := q.Forward(x, nil)

	worst := 0.0
	for i, v := range got.F32() {
		worst = math.Max(worst, math.Abs(float64(v-want.F32()[i])))
	}
	w := nn.StateDict(q)["weight_hh_l1"]
	fmt.Println("output", got.Shape(), "h_n", state.H.Shape())
	fmt.Println("weight_hh_l1:", w.DType(), w.Shape())
	fmt.Println("within 0.02 of the float LSTM:", worst < 0.02)
	// Output:
	// output [10 1 16] h_n [2 1 16]
	// weight_hh_l1: qint8 [64 16]
	// within 0.02 of the float LSTM: true
}
