package eager_test

import (
	"fmt"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/eager"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// M is the model of PyTorch's eager static quantization tutorial: a
// QuantStub and a DeQuantStub around conv, bn and relu. The fields that
// quantization replaces are nn.Layer interfaces.
type M struct {
	nn.Base
	Quant   nn.Layer `nn:"quant"`
	Conv    nn.Layer `nn:"conv"`
	BN      nn.Layer `nn:"bn"`
	ReLU    nn.Layer `nn:"relu"`
	DeQuant nn.Layer `nn:"dequant"`
}

func (m *M) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(m, x, func(x *tensor.Tensor) *tensor.Tensor {
		x = m.Quant.Forward(x)
		x = m.ReLU.Forward(m.BN.Forward(m.Conv.Forward(x)))
		return m.DeQuant.Forward(x)
	})
}

func newM() *M {
	conv, _ := nn.NewConv2d(1, 1, nn.Pair(1), nn.Conv2dOptions{RNG: tensor.NewRNG(1)})
	bn, _ := nn.NewBatchNorm2d(1, nn.BatchNormOptions{})
	return &M{Quant: nn.NewQuantStub(nil), Conv: conv, BN: bn, ReLU: nn.NewReLU(), DeQuant: nn.NewDeQuantStub(nil)}
}

// Post-training static quantization, step for step as PyTorch's tutorial:
// eval mode, a qconfig, fuse, prepare, calibrate, convert.
func ExamplePrepare() {
	model := newM()
	nn.Eval(model)

	// model.qconfig = torch.ao.quantization.get_default_qconfig("x86")
	qc, err := quant.DefaultQConfig("x86")
	if err != nil {
		fmt.Println(err)
		return
	}
	eager.SetQConfig(model, qc)

	// torch.ao.quantization.fuse_modules(model, [["conv", "bn", "relu"]])
	if err := eager.FuseModules(model, [][]string{{"conv", "bn", "relu"}}); err != nil {
		fmt.Println(err)
		return
	}
	// torch.ao.quantization.prepare(model): observers on the outputs.
	if err := eager.Prepare(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	// Calibrate with representative data.
	rng := tensor.NewRNG(2)
	autograd.NoGrad(func() {
		for i := 0; i < 4; i++ {
			model.Forward(tensor.Randn(rng, 4, 1, 4, 4))
		}
	})
	// torch.ao.quantization.convert(model): int8 modules.
	if err := eager.Convert(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	for _, path := range []string{"quant", "conv", "bn", "relu", "dequant"} {
		m, _ := nn.Get(model, path)
		fmt.Printf("%-8s %s\n", path, nn.TypeName(m))
	}
	var y *tensor.Tensor
	autograd.NoGrad(func() { y = model.Forward(tensor.Randn(rng, 4, 1, 4, 4)) })
	fmt.Println("output", y.DType(), y.Shape())
	// Output:
	// quant    quantized.Quantize
	// conv     quantized.ConvReLU2d
	// bn       Identity
	// relu     Identity
	// dequant  quantized.DeQuantize
	// output float32 [4 1 4 4]
}

// Quantization-aware training, as PyTorch's tutorial: train mode, a QAT
// qconfig, fuse for QAT, prepare_qat, train, convert.
func ExamplePrepareQAT() {
	model := newM()
	nn.Train(model)
	qc, err := quant.DefaultQATQConfig("x86")
	if err != nil {
		fmt.Println(err)
		return
	}
	eager.SetQConfig(model, qc)
	if err := eager.FuseModulesQAT(model, [][]string{{"conv", "bn", "relu"}}); err != nil {
		fmt.Println(err)
		return
	}
	if err := eager.PrepareQAT(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	conv, _ := nn.Get(model, "conv")
	fmt.Println("training", nn.TypeName(conv))

	// An ordinary training loop: fake quantization is differentiable.
	rng := tensor.NewRNG(3)
	opt, _ := nn.NewSGD(nn.Parameters(model), nn.SGDOptions{LR: 0.01})
	x, target := tensor.Randn(rng, 8, 1, 4, 4), tensor.Randn(rng, 8, 1, 4, 4)
	for step := 0; step < 5; step++ {
		opt.ZeroGrad()
		loss := ops.MSELoss(model.Forward(x), ops.ReLU(target), "mean")
		if err := autograd.Backward(loss, nil); err != nil {
			fmt.Println(err)
			return
		}
		opt.Step()
	}

	nn.Eval(model)
	if err := eager.Convert(model, eager.Options{}); err != nil {
		fmt.Println(err)
		return
	}
	conv, _ = nn.Get(model, "conv")
	fmt.Println("converted", nn.TypeName(conv))
	// Output:
	// training qat.ConvBnReLU2d
	// converted quantized.ConvReLU2d
}

// Saving a quantized model and loading it into the same architecture
// without recalibrating: build the quantized structure uncalibrated, then
// load the state (PyTorch's prepare, convert, load_state_dict).
func ExampleOptions_uncalibrated() {
	qc, _ := quant.DefaultQConfig("x86")
	quantizedModel := func() *M {
		m := newM()
		nn.Eval(m)
		eager.SetQConfig(m, qc)
		_ = eager.FuseModules(m, [][]string{{"conv", "bn", "relu"}})
		return m
	}
	x := tensor.Randn(tensor.NewRNG(4), 2, 1, 4, 4)

	// Quantize and keep the state (nn.SaveFile would write it to disk).
	src := quantizedModel()
	_ = eager.Quantize(src, func(p nn.Module) error {
		autograd.NoGrad(func() { p.(*M).Forward(x) })
		return nil
	}, eager.Options{})
	state := nn.StateDict(src)

	// Elsewhere: the same architecture, quantized structure, saved state.
	dst := quantizedModel()
	_ = eager.Prepare(dst, eager.Options{})
	if err := eager.Convert(dst, eager.Options{Uncalibrated: true}); err != nil {
		fmt.Println(err)
		return
	}
	if err := nn.LoadStateDict(dst, state); err != nil {
		fmt.Println(err)
		return
	}
	var a, b *tensor.Tensor
	autograd.NoGrad(func() { a, b = src.Forward(x), dst.Forward(x) })
	fmt.Println("same outputs:", tensor.MaxAbsDiff(a, b) == 0)
	// Output:
	// same outputs: true
}
