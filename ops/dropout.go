package ops

import (
	"fmt"

	"github.com/quanta-go/quanta/tensor"
)

// DropoutAttrs are the attributes Dropout records when traced.
type DropoutAttrs struct {
	// P is the probability of zeroing an element.
	P float32
}

// Dropout zeroes each element of x with probability p and scales the kept
// elements by 1/(1-p), as torch.nn.functional.dropout in training mode.
// Draws come from rng in element order (one Float32 per element; an element
// is kept when the draw is below 1-p), so a seeded rng reproduces the mask.
// When training is false or p is 0, Dropout returns x itself and records
// nothing. p must lie in [0, 1]; with p = 1 the result is all zeros. The
// gradient is the output gradient times the same mask and scale. The
// traced op is "Dropout" with input x and DropoutAttrs.
func Dropout(x *tensor.Tensor, p float32, training bool, rng *tensor.RNG) *tensor.Tensor {
	if isQ(x) && !training {
		return x
	}
	xv := nnopF32("Dropout", "x", x)
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("ops: Dropout: probability %v is outside [0, 1]", p))
	}
	if !training || p == 0 {
		return x
	}
	if rng == nil {
		panic("ops: Dropout: training mode needs a random generator")
	}
	var scale float32
	if p < 1 {
		scale = 1 / (1 - p)
	}
	keepBelow := 1 - p
	mask := make([]bool, len(xv))
	yv := make([]float32, len(xv))
	for i, v := range xv {
		if rng.Float32() < keepBelow {
			mask[i] = true
			yv[i] = v * scale
		}
	}
	y := nnopTensor(yv, x.Shape())
	return Apply("Dropout", DropoutAttrs{P: p}, Ts(x), Ts(y), func(g []*tensor.Tensor) []*tensor.Tensor {
		gv := g[0].F32()
		gx := make([]float32, len(gv))
		for i, k := range mask {
			if k {
				gx[i] = gv[i] * scale
			}
		}
		return Ts(nnopTensor(gx, x.Shape()))
	})
}
