package fx_test

import (
	"fmt"
	"math"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// smallCNN is conv-bn-relu, flatten, linear: a model written with no
// QuantStub, DeQuantStub or fuse list.
func smallCNN(rng *tensor.RNG) nn.Layer {
	conv, _ := nn.NewConv2d(1, 4, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: rng})
	bn, _ := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	fc, _ := nn.NewLinear(4*8*8, 3, nn.LinearOptions{RNG: rng})
	m := nn.NewSequential(conv, bn, nn.NewReLU(), nn.NewFlatten(1, -1), fc)
	nn.AssignPaths(m)
	return m
}

// agree counts the rows of a and b [N, C] with the same largest entry and
// returns the largest |a-b| relative to the largest |b|.
func agree(a, b *tensor.Tensor) (same int, rel float64) {
	pa, pb := tensor.Argmax(a, 1, false).I64(), tensor.Argmax(b, 1, false).I64()
	var d, s float64
	for i, v := range b.F32() {
		d = math.Max(d, math.Abs(float64(a.F32()[i]-v)))
		s = math.Max(s, math.Abs(float64(v)))
	}
	for i := range pa {
		if pa[i] == pb[i] {
			same++
		}
	}
	return same, d / s
}

// Post-training static quantization in graph mode: trace, prepare
// (batch norm folded, conv+relu fused, observers placed), calibrate by
// running the observed module, convert to a QDQ model run by int8
// kernels.
func ExamplePrepareFX() {
	rng := tensor.NewRNG(1)
	model := smallCNN(rng)
	nn.Eval(model)

	mapping, _ := quant.DefaultQConfigMapping("x86")
	backend, _ := quant.GetBackendConfig("x86")
	observed, err := fx.PrepareFX(model, mapping, tensor.Randn(rng, 1, 1, 8, 8), backend)
	if err != nil {
		fmt.Println(err)
		return
	}
	autograd.NoGrad(func() {
		for i := 0; i < 8; i++ {
			observed.Forward(tensor.Randn(rng, 16, 1, 8, 8)) // calibration
		}
	})
	q, err := fx.ConvertFX(observed)
	if err != nil {
		fmt.Println(err)
		return
	}
	ops := q.Model().Graph.OpCounts()
	fmt.Println("BatchNormalization nodes:", ops["BatchNormalization"])
	fmt.Println("has QuantizeLinear and DequantizeLinear:", ops["QuantizeLinear"] > 0 && ops["DequantizeLinear"] > 0)

	x := tensor.Randn(rng, 32, 1, 8, 8)
	var want *tensor.Tensor
	autograd.NoGrad(func() { want = model.Forward(x) })
	same, rel := agree(q.Forward(x), want)
	fmt.Printf("int8 and float agree on %d of 32 classes; largest difference below 5%%: %v\n", same, rel < 0.05)
	// Output:
	// BatchNormalization nodes: 0
	// has QuantizeLinear and DequantizeLinear: true
	// int8 and float agree on 32 of 32 classes; largest difference below 5%: true
}

// Quantization-aware training in graph mode: the traced model's batch
// norm is folded into the convolution, whose weight and bias train with
// fake quantization; then ConvertFX.
func ExamplePrepareQATFX() {
	rng := tensor.NewRNG(2)
	model := smallCNN(rng)

	mapping, _ := quant.DefaultQATQConfigMapping("x86")
	backend, _ := quant.GetBackendConfig("x86")
	qat, err := fx.PrepareQATFX(model, mapping, tensor.Randn(rng, 1, 1, 8, 8), backend)
	if err != nil {
		fmt.Println(err)
		return
	}
	var names []string
	for _, p := range nn.NamedParameters(qat) {
		names = append(names, p.Name)
	}
	fmt.Println("parameters:", names)

	opt, _ := nn.NewAdam(nn.Parameters(qat), nn.AdamOptions{LR: 1e-2})
	x := tensor.Randn(rng, 32, 1, 8, 8)
	y := tensor.New(tensor.Int64, 32)
	for i := range y.I64() {
		y.I64()[i] = int64(i % 3)
	}
	var first, last float64
	for step := 0; step < 20; step++ {
		loss := ops.CrossEntropy(qat.Forward(x), y, "mean", 0)
		opt.ZeroGrad()
		if err := autograd.Backward(loss, nil); err != nil {
			fmt.Println(err)
			return
		}
		opt.Step()
		if step == 0 {
			first = loss.Item()
		}
		last = loss.Item()
	}
	fmt.Println("loss fell:", last < first)

	qat.EnableObserver(false) // freeze the qparams
	q, err := fx.ConvertFX(qat)
	if err != nil {
		fmt.Println(err)
		return
	}
	var fq *tensor.Tensor
	autograd.NoGrad(func() { fq = qat.Forward(x) })
	same, _ := agree(q.Forward(x), fq)
	fmt.Printf("int8 and fake-quantized agree on %d of 32 classes\n", same)
	// Output:
	// parameters: [4.weight 4.bias 0.weight_bnfold 0/Conv_bias_bnfold]
	// loss fell: true
	// int8 and fake-quantized agree on 32 of 32 classes
}
