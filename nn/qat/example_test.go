package qat_test

import (
	"fmt"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/nn/qat"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// Preparing a fused Conv2d+BatchNorm2d+ReLU for quantization-aware training,
// training it one step, then freezing the batch norm and the observers as
// QAT recipes do before converting.
func ExampleConvBnReLU2dFromFloat() {
	g := tensor.NewRNG(1)
	conv, _ := nn.NewConv2d(3, 8, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: g})
	bn, _ := nn.NewBatchNorm2d(8, nn.BatchNormOptions{})
	fused, _ := intrinsic.NewConvBnReLU2d(conv, bn, nil)

	qc, _ := quant.DefaultQATQConfig("x86")
	m, err := qat.ConvBnReLU2dFromFloat(fused, qc)
	if err != nil {
		fmt.Println(err)
		return
	}
	opt, _ := nn.NewSGD(nn.Parameters(m), nn.SGDOptions{LR: 0.1})
	x := tensor.Randn(g, 4, 3, 8, 8)
	target := tensor.Rand(g, 4, 8, 8, 8)

	loss := ops.MSELoss(m.Forward(x), target, "mean")
	before := loss.Item()
	if err := autograd.Backward(loss, nil); err != nil {
		fmt.Println(err)
		return
	}
	opt.Step()
	after := ops.MSELoss(m.Forward(x), target, "mean").Item()
	fmt.Println(nn.TypeName(m), "loss decreased:", after < before)

	qp, _ := m.WeightFakeQuantizer().CalculateQParams()
	fmt.Println("weight qparams:", len(qp.Scale), "channels,", qp.QuantMin, "..", qp.QuantMax)

	qat.FreezeBNStats(m)
	qat.EnableObserver(m, false)
	f, _ := m.ToFloat()
	fmt.Println("float module:", nn.TypeName(f))
	// Output:
	// qat.ConvBnReLU2d loss decreased: true
	// weight qparams: 8 channels, -128 .. 127
	// float module: ConvReLU2d
}

// FromFloat picks the QAT module for a float or fused module, as PyTorch's
// QAT module mapping.
func ExampleFromFloat() {
	lin, _ := nn.NewLinear(4, 2, nn.LinearOptions{RNG: tensor.NewRNG(1)})
	qc, _ := quant.DefaultQATQConfig("x86")
	q, err := qat.FromFloat(lin, qc)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(nn.TypeName(q), nn.StateDictKeys(q))
	// Output: qat.Linear [weight bias]
}
