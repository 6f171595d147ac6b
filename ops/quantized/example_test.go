package quantized_test

import (
	"fmt"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// Residual add of two quint8 activations with their own qparams, into the
// output qparams a calibrated model would have chosen, then a fixed-qparams
// sigmoid.
func ExampleAdd() {
	a := ops.QuantizePerTensor(tensor.FromFloat32([]float32{-1, 0, 0.5, 2}), 0.02, 128, tensor.QUInt8)
	b := ops.QuantizePerTensor(tensor.FromFloat32([]float32{1, 0.25, 0.5, 2}), 0.01, 0, tensor.QUInt8)
	y, err := quantized.Add(a, b, 0.025, 64)
	if err != nil {
		panic(err)
	}
	fmt.Println(ops.IntRepr(y).U8(), ops.Dequantize(y).F32())
	s, err := quantized.Sigmoid(y)
	if err != nil {
		panic(err)
	}
	fmt.Println(ops.IntRepr(s).U8(), s.QParams().Scale[0], s.QParams().ZeroPoint[0])
	// Output:
	// [64 74 104 224] [0 0.25 1 4]
	// [128 144 187 251] 0.00390625 0
}

// Max pooling and nearest upsampling move codes; qparams pass through.
func ExampleMaxPool2d() {
	x := ops.QuantizePerTensor(tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8}, 1, 1, 2, 4), 0.5, 10, tensor.QUInt8)
	y, err := quantized.MaxPool2d(x, ops.PoolAttrs{Kernel: [2]int{2, 2}})
	if err != nil {
		panic(err)
	}
	fmt.Println(y.Shape(), ops.Dequantize(y).F32())
	z, err := quantized.UpsampleNearest2d(y, quantized.UpsampleAttrs{ScaleFactor: [2]float64{1, 2}})
	if err != nil {
		panic(err)
	}
	fmt.Println(z.Shape(), ops.Dequantize(z).F32())
	// Output:
	// [1 1 1 2] [6 8]
	// [1 1 1 4] [6 6 8 8]
}
