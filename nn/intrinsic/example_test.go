package intrinsic_test

import (
	"fmt"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
)

// Folding an evaluation-mode BatchNorm2d into the Conv2d before it, as
// torch.nn.utils.fuse_conv_bn_eval does before post-training quantization.
func ExampleFoldConvBN2d() {
	conv, _ := nn.NewConv2d(1, 2, nn.Pair(1), nn.Conv2dOptions{})
	copy(conv.Weight.F32(), []float32{1, -1})
	copy(conv.Bias.F32(), []float32{0, 2})
	bn, _ := nn.NewBatchNorm2d(2, nn.BatchNormOptions{Eps: 0.5})
	copy(bn.RunningMean.F32(), []float32{1, 0})
	copy(bn.RunningVar.F32(), []float32{3.5, 0.5}) // var+eps = 4 and 1
	copy(bn.Weight.F32(), []float32{2, 3})
	nn.Eval(conv)
	nn.Eval(bn)
	folded, err := intrinsic.FoldConvBN2d(conv, bn)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(folded.Weight.F32(), folded.Bias.F32())
	// Output: [1 -3] [-1 6]
}
