package conv_test

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/conv"
)

// A 3x3 all-ones kernel with padding 1 sums each pixel's neighbourhood.
func ExampleConv2D() {
	p := conv.Conv2DParams{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 3, KW: 3, PadH: 1, PadW: 1}
	if err := p.Validate(); err != nil {
		panic(err)
	}
	x := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	y := make([]float32, p.OutputLen())
	conv.Conv2D(p, x, w, []float32{0.5}, y)
	fmt.Println(p.OutH(), p.OutW(), y)
	// Output: 3 3 [12.5 21.5 16.5 27.5 45.5 33.5 24.5 39.5 28.5]
}

// The input gradient of a convolution is its transpose applied to the
// output gradient.
func ExampleConv2DBackwardInput() {
	p := conv.Conv2DParams{N: 1, C: 1, H: 3, W: 3, OutC: 1, KH: 2, KW: 2}
	w := []float32{1, 2, 3, 4}
	gy := []float32{1, 0, 0, 0} // gradient at output (0, 0) only
	gx := make([]float32, p.InputLen())
	conv.Conv2DBackwardInput(p, w, gy, gx)
	fmt.Println(gx)
	// Output: [1 2 0 3 4 0 0 0 0]
}

// A stride-2 transposed convolution with output padding 1 doubles the size.
func ExampleConvTranspose2D() {
	p := conv.ConvTranspose2DParams{N: 1, C: 1, H: 2, W: 2, OutC: 1, KH: 3, KW: 3,
		StrideH: 2, StrideW: 2, PadH: 1, PadW: 1, OutPadH: 1, OutPadW: 1}
	fmt.Println(p.OutH(), p.OutW())
	// Output: 4 4
}
