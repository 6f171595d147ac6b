package fx_test

import (
	"context"
	"fmt"

	"github.com/quanta-go/quanta/fx"
	"github.com/quanta-go/quanta/graph/exec"
	"github.com/quanta-go/quanta/graph/quantize"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// Quantization-aware fine-tuning of a QDQ model without labels: quantize
// a graph (here traced; an imported ONNX model works the same) with
// post-training calibration, then train its int8 weight codes to
// reproduce the float model's outputs on the calibration feeds.
func ExampleFinetuneQDQ() {
	rng := tensor.NewRNG(3)
	model := smallCNN(rng)
	nn.Eval(model)
	float, err := fx.Trace(model, tensor.Randn(rng, 4, 1, 8, 8))
	if err != nil {
		fmt.Println(err)
		return
	}
	var feeds []map[string]*tensor.Tensor
	for i := 0; i < 8; i++ {
		feeds = append(feeds, map[string]*tensor.Tensor{"input": tensor.Randn(rng, 4, 1, 8, 8)})
	}
	ctx := context.Background()
	p, _ := quantize.Prepare(float, quantize.Options{})
	for _, f := range feeds {
		p.Observe(ctx, f)
	}
	calibrated, err := quantize.Convert(p)
	if err != nil {
		fmt.Println(err)
		return
	}
	teacher, _ := exec.Compile(float, exec.Options{})
	tuned, res, err := fx.FinetuneQDQ(ctx, calibrated, teacher, feeds, fx.FinetuneOptions{Epochs: 20, LR: 1e-4, NoMixup: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	first, last := res.Losses[0], res.Losses[len(res.Losses)-1]
	fmt.Println("same graph:", len(tuned.Graph.Nodes) == len(calibrated.Graph.Nodes))
	fmt.Println("output error at least halved:", last < first/2)
	// Output:
	// same graph: true
	// output error at least halved: true
}
