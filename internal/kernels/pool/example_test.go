package pool_test

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/pool"
)

// Max pooling returns, with each maximum, its position in the plane, which
// the backward pass routes the gradient to.
func ExampleMaxPool2D() {
	p := pool.Pool2DParams{N: 1, C: 1, H: 2, W: 4, KH: 2, KW: 2}
	x := []float32{
		1, 5, 2, 0,
		3, 4, 8, 7,
	}
	y := make([]float32, p.OutputLen())
	idx := make([]int32, p.OutputLen())
	pool.MaxPool2D(p, x, y, idx)
	gx := make([]float32, p.InputLen())
	pool.MaxPool2DBackward(p, []float32{10, 20}, idx, gx)
	fmt.Println(y, idx, gx)
	// Output: [5 8] [1 6] [0 10 0 0 0 0 20 0]
}

// Adaptive average pooling of 5 columns to 3 uses overlapping windows
// [0,2), [1,4), [3,5).
func ExampleAdaptiveAvgPool2D() {
	p := pool.AdaptivePool2DParams{N: 1, C: 1, H: 1, W: 5, OutH: 1, OutW: 3}
	y := make([]float32, 3)
	pool.AdaptiveAvgPool2D(p, []float32{1, 2, 3, 4, 5}, y)
	fmt.Println(y)
	// Output: [1.5 3 4.5]
}
