package intrinsic

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// foldCase is one case of testdata/fold_golden.json (gen_golden.py).
type foldCase struct {
	Kind         string
	WeightShape  []int `json:"weight_shape"`
	Weight, Bias []float64
	RunningMean  []float64 `json:"running_mean"`
	RunningVar   []float64 `json:"running_var"`
	BNWeight     []float64 `json:"bn_weight"`
	BNBias       []float64 `json:"bn_bias"`
	Eps          float64
	FusedWeight  []float64 `json:"fused_weight"`
	FusedBias    []float64 `json:"fused_bias"`
}

func tensorOf(v []float64, shape ...int) *tensor.Tensor {
	if v == nil {
		return nil
	}
	d := make([]float32, len(v))
	for i, x := range v {
		d[i] = float32(x)
	}
	return tensor.FromFloat32(d, shape...)
}

// Folding reproduces PyTorch 1.13's fuse_conv_bn_weights and
// fuse_linear_bn_weights bit for bit.
func TestFoldGoldenPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/fold_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Cases []foldCase }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Cases) == 0 {
		t.Fatal("no cases")
	}
	for i, c := range file.Cases {
		out := len(c.RunningMean)
		bn := nn.BatchNorm{NumFeatures: out, Eps: float32(c.Eps),
			RunningMean: tensorOf(c.RunningMean, out), RunningVar: tensorOf(c.RunningVar, out),
			Weight: tensorOf(c.BNWeight, out), Bias: tensorOf(c.BNBias, out)}
		w := tensorOf(c.Weight, c.WeightShape...)
		b := tensorOf(c.Bias, out)
		var fw, fb *tensor.Tensor
		switch c.Kind {
		case "conv":
			fw, fb, err = FuseConvBNWeights(w, b, &bn)
		case "linear":
			fw, fb, err = FuseLinearBNWeights(w, b, &bn)
		case "convtranspose":
			sh := c.WeightShape
			conv := &nn.ConvTranspose2d{InChannels: sh[0], OutChannels: sh[1], KernelSize: [2]int{sh[2], sh[3]},
				Stride: nn.Pair(1), Dilation: nn.Pair(1), Groups: 1, Weight: w, Bias: b}
			bn2 := &nn.BatchNorm2d{BatchNorm: bn}
			nn.Eval(conv)
			nn.Eval(bn2)
			var f *nn.ConvTranspose2d
			f, err = FoldConvTransposeBN2d(conv, bn2)
			if err == nil {
				fw, fb = f.Weight, f.Bias
			}
		default:
			t.Fatalf("case %d: unknown kind %q", i, c.Kind)
		}
		if err != nil {
			t.Fatalf("case %d (%s): %v", i, c.Kind, err)
		}
		for j, v := range fw.F32() {
			if math.Float32bits(v) != math.Float32bits(float32(c.FusedWeight[j])) {
				t.Fatalf("case %d (%s): weight %d = %v, PyTorch %v", i, c.Kind, j, v, float32(c.FusedWeight[j]))
			}
		}
		for j, v := range fb.F32() {
			if math.Float32bits(v) != math.Float32bits(float32(c.FusedBias[j])) {
				t.Fatalf("case %d (%s): bias %d = %v, PyTorch %v", i, c.Kind, j, v, float32(c.FusedBias[j]))
			}
		}
	}
}
