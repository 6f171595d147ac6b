package numeric_test

import (
	"context"
	"fmt"

	"github.com/quanta-go/quanta/graph"
	"github.com/quanta-go/quanta/graph/numeric"
	"github.com/quanta-go/quanta/tensor"
)

// A float model y = Conv(x, 1.1) (a 1x1 convolution) and its QDQ version:
// x quantized with scale 0.5 (0.1, 0.4, 1.0, 2.2 become 0, 0.5, 1, 2), the
// weight as int8 2 with scale 0.5 (1.0). By hand: the input's SQNR is
// 10*log10(6.01/0.06) = 20.01 dB, the weight's 10*log10(1.21/0.01) =
// 20.83 dB, and the output y = (0.11, 0.44, 1.1, 2.42) against
// (0, 0.5, 1, 2) has 10*log10(7.2721/0.2021) = 15.56 dB and cosine
// 6.16/sqrt(7.2721*5.25) = 0.9969: the convolution loses 4.45 dB.
func ExampleCompare() {
	xType := graph.Type{Elem: graph.Float, HasShape: true, Shape: []graph.Dim{{Size: 1}, {Size: 1}, {Size: 1}, {Size: 4}}}
	fg := graph.New("float")
	fx := fg.AddInput("x", xType)
	w := fg.AddInitializer("W", tensor.FromFloat32([]float32{1.1}, 1, 1, 1, 1))
	fg.Outputs = fg.AddNode("conv", "Conv", []*graph.Value{fx, w}, []string{"y"}, nil).Outputs
	float := &graph.Model{Graph: fg, Opsets: map[string]int64{"": 13}}

	qg := graph.New("quantized")
	qx := qg.AddInput("x", xType)
	s := qg.AddInitializer("x_scale", tensor.Scalar(0.5))
	z := qg.AddInitializer("x_zero_point", tensor.FromUint8([]uint8{0}).Reshape())
	xq := qg.AddNode("x_QuantizeLinear", "QuantizeLinear", []*graph.Value{qx, s, z}, []string{"x_quantized"}, nil).Outputs[0]
	xd := qg.AddNode("x_DequantizeLinear", "DequantizeLinear", []*graph.Value{xq, s, z}, []string{"x_dequantized"}, nil).Outputs[0]
	wq := qg.AddInitializer("W_quantized", tensor.FromInt8([]int8{2}, 1, 1, 1, 1))
	ws := qg.AddInitializer("W_scale", tensor.Scalar(0.5))
	wz := qg.AddInitializer("W_zero_point", tensor.FromInt8([]int8{0}).Reshape())
	wd := qg.AddNode("W_DequantizeLinear", "DequantizeLinear", []*graph.Value{wq, ws, wz}, []string{"W_dequantized"}, nil).Outputs[0]
	qg.Outputs = qg.AddNode("conv", "Conv", []*graph.Value{xd, wd}, []string{"y"}, nil).Outputs
	quant := &graph.Model{Graph: qg, Opsets: map[string]int64{"": 13}}

	feeds := []map[string]*tensor.Tensor{{"x": tensor.FromFloat32([]float32{0.1, 0.4, 1.0, 2.2}, 1, 1, 1, 4)}}
	rep, err := numeric.Compare(context.Background(), float, quant, feeds, numeric.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	in := rep.Inputs[0]
	fmt.Printf("input %s: SQNR %.2f dB\n", in.Name, in.Stats.SQNR)
	for _, l := range rep.Layers {
		fmt.Printf("%s (%s): SQNR %.2f dB, cosine %.4f, max |err| %.2f, weight SQNR %.2f dB, drop %.2f dB\n",
			l.Node, l.OpType, l.Activation.SQNR, l.Activation.Cosine, l.Activation.MaxAbs, l.Weight.SQNR, l.Drop)
	}
	// Output:
	// input x: SQNR 20.01 dB
	// conv (Conv): SQNR 15.56 dB, cosine 0.9969, max |err| 0.42, weight SQNR 20.83 dB, drop 4.45 dB
}
