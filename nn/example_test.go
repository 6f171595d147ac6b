package nn_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// Net is a small convolutional classifier. Children are exported fields;
// the nn tag gives each its PyTorch-style name. Fields typed nn.Layer can
// later be replaced by quantized modules.
type Net struct {
	nn.Base
	Features *nn.Sequential `nn:"features"`
	FC       nn.Layer       `nn:"fc"`
}

// NewNet builds the model with weights drawn from rng.
func NewNet(rng *tensor.RNG) (*Net, error) {
	conv, err := nn.NewConv2d(1, 4, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: rng})
	if err != nil {
		return nil, err
	}
	bn, err := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	if err != nil {
		return nil, err
	}
	pool, err := nn.NewAdaptiveAvgPool2d(nn.Pair(1))
	if err != nil {
		return nil, err
	}
	fc, err := nn.NewLinear(4, 3, nn.LinearOptions{RNG: rng})
	if err != nil {
		return nil, err
	}
	return &Net{
		Features: nn.NewSequential(conv, bn, nn.NewReLU(), pool, nn.NewFlatten(1, -1)),
		FC:       fc,
	}, nil
}

// Forward computes class logits for images x [N, 1, H, W].
func (n *Net) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor { return n.FC.Forward(n.Features.Forward(x)) })
}

// Build a model from a Go struct and list its modules and parameters by
// dotted path, as PyTorch's named_modules and named_parameters do.
func Example_buildModel() {
	model, err := NewNet(tensor.NewRNG(1))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range nn.NamedModules(model) {
		fmt.Printf("%q %s\n", m.Name, nn.TypeName(m.Module))
	}
	for _, p := range nn.NamedParameters(model) {
		fmt.Println(p.Name, p.Tensor.Shape())
	}
	y := model.Forward(tensor.Zeros(2, 1, 8, 8))
	fmt.Println("output", y.Shape())

	// Replace a child by path, as eager quantization swaps modules.
	if err := nn.Set(model, "features.2", nn.NewReLU6()); err != nil {
		fmt.Println(err)
	}
	m, _ := nn.Get(model, "features.2")
	fmt.Println("features.2 is now", nn.TypeName(m))
	// Output:
	// "" Net
	// "features" Sequential
	// "features.0" Conv2d
	// "features.1" BatchNorm2d
	// "features.2" ReLU
	// "features.3" AdaptiveAvgPool2d
	// "features.4" Flatten
	// "fc" Linear
	// features.0.weight [4 1 3 3]
	// features.0.bias [4]
	// features.1.weight [4]
	// features.1.bias [4]
	// fc.weight [3 4]
	// fc.bias [3]
	// output [2 3]
	// features.2 is now ReLU6
}

// Train a model for a few steps: forward, loss, backward, optimizer step.
func Example_trainStep() {
	rng := tensor.NewRNG(2)
	model, _ := NewNet(rng)
	opt, err := nn.NewAdam(nn.Parameters(model), nn.AdamOptions{LR: 0.05})
	if err != nil {
		fmt.Println(err)
		return
	}
	lossFn := nn.NewCrossEntropyLoss()
	x := tensor.RandUniform(rng, -1, 1, 6, 1, 8, 8)
	target := tensor.FromInt64([]int64{0, 1, 2, 0, 1, 2})
	var first, last float64
	for step := 0; step < 20; step++ {
		opt.ZeroGrad()
		loss := lossFn.Forward(model.Forward(x), target)
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
	fmt.Println("loss decreased:", last < first)
	// Output:
	// loss decreased: true
}

// Save a model's state dict as a safetensors file and load it into a fresh
// model.
func ExampleSaveFile() {
	dir, err := os.MkdirTemp("", "quanta-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "net.safetensors")

	src, _ := NewNet(tensor.NewRNG(3))
	if err := nn.SaveFile(path, nn.StateDict(src)); err != nil {
		fmt.Println(err)
		return
	}
	sd, err := nn.LoadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}
	dst, _ := NewNet(tensor.NewRNG(4))
	if err := nn.LoadStateDict(dst, sd); err != nil {
		fmt.Println(err)
		return
	}
	nn.Eval(src)
	nn.Eval(dst)
	x := tensor.Ones(1, 1, 5, 5)
	fmt.Println("keys:", nn.StateDictKeys(dst))
	fmt.Println("same output:", tensor.MaxAbsDiff(src.Forward(x), dst.Forward(x)) == 0)

	// A checkpoint that does not fit is an error naming the keys.
	delete(sd, "fc.bias")
	sd["fc.weight"] = ops.Reshape(sd["fc.weight"], 4, 3)
	fmt.Println(nn.LoadStateDict(dst, sd))
	// Output:
	// keys: [features.0.weight features.0.bias features.1.weight features.1.bias features.1.running_mean features.1.running_var features.1.num_batches_tracked fc.weight fc.bias]
	// same output: true
	// nn: LoadStateDict Net: size mismatch for fc.weight: checkpoint [4 3], model [3 4]; missing keys fc.bias
}
