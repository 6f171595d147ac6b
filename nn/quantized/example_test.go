package quantized_test

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// A float Linear becomes a quantized one: the weight is quantized by the
// default weight observer (per-tensor symmetric qint8), the output gets the
// qparams calibration chose, and Quantize/DeQuantize wrap it for float
// callers.
func ExampleLinearFromFloat() {
	f, _ := nn.NewLinear(2, 2, nn.LinearOptions{})
	copy(f.Weight.F32(), []float32{1, -1, 0.5, 0.25})
	copy(f.Bias.F32(), []float32{0.1, -0.2})

	q, err := quantized.LinearFromFloat(f, nil, tensor.PerTensor(0.01, 128))
	if err != nil {
		fmt.Println(err)
		return
	}
	in, _ := quantized.NewQuantize(0.01, 128)
	model := nn.NewSequential(in, q, quantized.NewDeQuantize())

	x := tensor.FromFloat32([]float32{0.5, 0.25}, 1, 2)
	fmt.Println(nn.TypeName(q), q.Weight.DType(), q.Weight.I8())
	fmt.Println("quantized:", model.Forward(x).F32())
	fmt.Println("float:    ", f.Forward(x).F32())
	// Output:
	// quantized.Linear qint8 [127 -127 64 32]
	// quantized: [0.35 0.11]
	// float:     [0.35 0.1125]
}
