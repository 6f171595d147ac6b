package qat

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// qatCase is one case of testdata/qat_golden.json (gen_golden.py).
type qatCase struct {
	Kind             string
	WeightShape      []int `json:"weight_shape"`
	Weight, Bias     []float64
	RunningMean      []float64 `json:"running_mean"`
	RunningVar       []float64 `json:"running_var"`
	BNWeight         []float64 `json:"bn_weight"`
	BNBias           []float64 `json:"bn_bias"`
	X                [][]float64
	XShape           []int `json:"x_shape"`
	Y1, Y2, Upstream []float64
	GradX            []float64 `json:"grad_x"`
	GradWeight       []float64 `json:"grad_weight"`
	GradBias         []float64 `json:"grad_bias"`
	GradBNWeight     []float64 `json:"grad_bn_weight"`
	GradBNBias       []float64 `json:"grad_bn_bias"`
	RunningMeanAfter []float64 `json:"running_mean_after"`
	RunningVarAfter  []float64 `json:"running_var_after"`
	WeightScale      []float64 `json:"weight_scale"`
	YFrozen          []float64 `json:"y_frozen"`
}

func f32s(v []float64) []float32 {
	d := make([]float32, len(v))
	for i, x := range v {
		d[i] = float32(x)
	}
	return d
}

func closeTo(t *testing.T, what string, got *tensor.Tensor, want []float64, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: missing", what)
	}
	g := got.F32()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, PyTorch %d", what, len(g), len(want))
	}
	for i, w := range want {
		if d := float64(g[i]) - w; d > tol*(1+abs(w)) || -d > tol*(1+abs(w)) {
			t.Fatalf("%s[%d] = %v, PyTorch %v", what, i, g[i], w)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// The QAT ConvBnReLU2d and LinearBn1d reproduce PyTorch 1.13's
// nniqat modules: outputs in training mode, running statistics, gradients
// through the fake-quantized, BN-scaled weight, the weight's scales, and the
// output with frozen batch norm statistics.
func TestGoldenPyTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/qat_golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Cases []qatCase }
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	qc := qatQConfig(t, "fbgemm")
	for _, c := range file.Cases {
		t.Run(c.Kind, func(t *testing.T) {
			out := c.WeightShape[0]
			var q Module
			var bn *nn.BatchNorm
			switch c.Kind {
			case "ConvBnReLU2d":
				conv, _ := nn.NewConv2d(c.WeightShape[1], out, [2]int{c.WeightShape[2], c.WeightShape[3]}, nn.Conv2dOptions{Padding: nn.Pair(1)})
				copy(conv.Weight.F32(), f32s(c.Weight))
				copy(conv.Bias.F32(), f32s(c.Bias))
				b, _ := nn.NewBatchNorm2d(out, nn.BatchNormOptions{})
				fused, _ := intrinsic.NewConvBnReLU2d(conv, b, nil)
				m, err := ConvBnReLU2dFromFloat(fused, qc)
				if err != nil {
					t.Fatal(err)
				}
				q, bn = m, &b.BatchNorm
			case "LinearBn1d":
				lin, _ := nn.NewLinear(c.WeightShape[1], out, nn.LinearOptions{})
				copy(lin.Weight.F32(), f32s(c.Weight))
				copy(lin.Bias.F32(), f32s(c.Bias))
				b, _ := nn.NewBatchNorm1d(out, nn.BatchNormOptions{})
				fused, _ := intrinsic.NewLinearBn1d(lin, b)
				m, err := LinearBn1dFromFloat(fused, qc)
				if err != nil {
					t.Fatal(err)
				}
				q, bn = m, &b.BatchNorm
			default:
				t.Fatalf("unknown kind %q", c.Kind)
			}
			copy(bn.RunningMean.F32(), f32s(c.RunningMean))
			copy(bn.RunningVar.F32(), f32s(c.RunningVar))
			copy(bn.Weight.F32(), f32s(c.BNWeight))
			copy(bn.Bias.F32(), f32s(c.BNBias))
			xs := make([]*tensor.Tensor, len(c.X))
			for i, x := range c.X {
				xs[i] = tensor.FromFloat32(f32s(x), c.XShape...)
			}
			closeTo(t, "y1", q.Forward(xs[0]), c.Y1, 1e-5)
			x2 := xs[1].SetRequiresGrad(true)
			y2 := q.Forward(x2)
			closeTo(t, "y2", y2, c.Y2, 1e-5)
			up := tensor.FromFloat32(f32s(c.Upstream), y2.Shape()...)
			if err := autograd.Backward(ops.SumAll(ops.Mul(y2, up)), nil); err != nil {
				t.Fatal(err)
			}
			closeTo(t, "grad x", x2.Grad(), c.GradX, 1e-4)
			closeTo(t, "grad weight", weightOf(q).Grad(), c.GradWeight, 1e-4)
			closeTo(t, "grad bias", biasOf(q).Grad(), c.GradBias, 1e-4)
			closeTo(t, "grad bn weight", bn.Weight.Grad(), c.GradBNWeight, 1e-4)
			closeTo(t, "grad bn bias", bn.Bias.Grad(), c.GradBNBias, 1e-4)
			closeTo(t, "running mean", bn.RunningMean, c.RunningMeanAfter, 1e-5)
			closeTo(t, "running var", bn.RunningVar, c.RunningVarAfter, 1e-5)
			qp, err := q.WeightFakeQuantizer().CalculateQParams()
			if err != nil {
				t.Fatal(err)
			}
			closeTo(t, "weight scale", tensor.FromFloat32(qp.Scale, len(qp.Scale)), c.WeightScale, 0)
			FreezeBNStats(q)
			var yf *tensor.Tensor
			autograd.NoGrad(func() { yf = q.Forward(xs[2]) })
			closeTo(t, "frozen output", yf, c.YFrozen, 1e-5)
		})
	}
}

// weightOf and biasOf return the layer parameters (not detached views).
func weightOf(m Module) *tensor.Tensor {
	switch m := m.(type) {
	case *ConvBnReLU2d:
		return m.Weight
	case *LinearBn1d:
		return m.Weight
	}
	return nil
}

func biasOf(m Module) *tensor.Tensor {
	switch m := m.(type) {
	case *ConvBnReLU2d:
		return m.Bias
	case *LinearBn1d:
		return m.Bias
	}
	return nil
}
