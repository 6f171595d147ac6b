package dynamic_test

import (
	"fmt"

	"github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

func ExampleLinear() {
	// A 3→2 layer quantized as PyTorch's quantize_dynamic does.
	w := tensor.FromFloat32([]float32{0.5, -1, 0.25, 1, 0.75, -0.5}, 2, 3)
	b := tensor.FromFloat32([]float32{0.1, -0.2}, 2)
	p, err := dynamic.PackLinear(w, b, dynamic.PerTensor)
	if err != nil {
		panic(err)
	}
	x := tensor.FromFloat32([]float32{1, 2, 3, -1, 0, 4}, 2, 3)
	y, err := dynamic.Linear(x, p, dynamic.RuleTorch)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.3f\n", y.F32())
	// The float layer gives [-0.650 0.800 0.600 -3.200]; activations
	// quantized with scale 5/255 move it by at most 0.02.

	_, err = dynamic.Linear(tensor.FromFloat32([]float32{1, 0, float32(nan())}, 1, 3), p, dynamic.RuleTorch)
	fmt.Println(err)
	// Output:
	// [-0.637 0.796 0.602 -3.204]
	// dynamic.Linear: input holds NaN or ±Inf, which have no quantization parameters
}

func nan() float64 { z := 0.0; return z / z }

func ExampleEmbeddingBag() {
	w := tensor.FromFloat32([]float32{
		0, 1, 2, 3,
		-1, -1, 1, 1,
		4, 2, 0, -2,
	}, 3, 4)
	e, err := dynamic.PackEmbedding(w, 8)
	if err != nil {
		panic(err)
	}
	idx := tensor.FromInt64([]int64{0, 2, 1})
	offsets := tensor.FromInt64([]int64{0, 2})
	for _, mode := range []dynamic.BagMode{dynamic.BagSum, dynamic.BagMean, dynamic.BagMax} {
		y, err := dynamic.EmbeddingBag(idx, e, dynamic.BagOptions{Mode: mode, Offsets: offsets})
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s %.2f\n", mode, y.F32())
	}
	// Output:
	// sum [4.00 3.00 2.00 1.00 -1.00 -1.00 1.00 1.00]
	// mean [2.00 1.50 1.00 0.50 -1.00 -1.00 1.00 1.00]
	// max [4.00 2.00 2.00 3.00 -1.00 -1.00 1.00 1.00]
}

func ExampleLinearFP16() {
	w := tensor.FromFloat32([]float32{0.1, 1e5}, 1, 2)
	p, err := dynamic.PackLinearFP16(w, nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%#04x %v\n", p.WeightFP16(), p.Weight().F32())
	y, _ := dynamic.LinearFP16(tensor.FromFloat32([]float32{10, 1}, 1, 2), p)
	fmt.Println(y.F32())
	// Output:
	// [0x2e66 0x7bff] [0.099975586 65504]
	// [65505]
}
