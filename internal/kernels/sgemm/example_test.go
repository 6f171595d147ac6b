package sgemm_test

import (
	"fmt"

	"github.com/quanta-go/quanta/internal/kernels/sgemm"
)

func ExampleSgemm() {
	a := []float32{1, 2, 3, 4, 5, 6}    // 2×3
	b := []float32{7, 8, 9, 10, 11, 12} // 3×2
	c := []float32{1, 1, 1, 1}          // 2×2
	// C = 1*A*B + 10*C
	sgemm.Sgemm(false, false, 2, 2, 3, 1, a, 3, b, 2, 10, c, 2)
	fmt.Println(c)
	// Output: [68 74 149 164]
}

func ExamplePackB() {
	// A linear layer y = x*Wᵀ with W of shape out×in = 2×3.
	w := []float32{1, 0, -1, 2, 2, 2}
	pw := sgemm.PackB(true, 3, 2, w, 3) // op(B) = Wᵀ is 3×2
	for _, x := range [][]float32{{1, 2, 3}, {0.5, 0, 0}} {
		y := make([]float32, 2)
		sgemm.SgemmPackedB(false, 1, 1, x, 3, pw, 0, y, 2)
		fmt.Println(y)
	}
	// Output:
	// [-2 12]
	// [0.5 1]
}
