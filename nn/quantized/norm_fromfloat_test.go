package quantized

import (
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// TestNormELUFromFloat converts the float modules and checks that each
// quantized module equals the reference model: quantize(float module
// (dequantize(x))) with the output qparams, code for code.
func TestNormELUFromFloat(t *testing.T) {
	g := tensor.NewRNG(31)
	out := tensor.PerTensor(0.03, 128)
	gn, err := nn.NewGroupNorm(2, 6, nn.GroupNormOptions{Eps: 1e-4})
	if err != nil {
		t.Fatal(err)
	}
	tensor.UniformFill(g, gn.Weight, 0.5, 1.5)
	tensor.UniformFill(g, gn.Bias, -0.5, 0.5)
	in1, err := nn.NewInstanceNorm1d(6, nn.InstanceNormOptions{Affine: true})
	if err != nil {
		t.Fatal(err)
	}
	tensor.UniformFill(g, in1.Weight, 0.5, 1.5)
	in2, err := nn.NewInstanceNorm2d(6, nn.InstanceNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	elu := nn.NewELU(0.7)
	qgn, err := GroupNormFromFloat(gn, out)
	if err != nil {
		t.Fatal(err)
	}
	qin1, err := InstanceNorm1dFromFloat(in1, out)
	if err != nil {
		t.Fatal(err)
	}
	qin2, err := InstanceNorm2dFromFloat(in2, out)
	if err != nil {
		t.Fatal(err)
	}
	qelu, err := ELUFromFloat(elu, out)
	if err != nil {
		t.Fatal(err)
	}
	if qgn.NumGroups != 2 || qgn.Eps != 1e-4 || qin1.Weight == nil || qin2.Weight != nil || qelu.Alpha != 0.7 {
		t.Fatalf("converted modules lost attributes: %+v %+v", qgn, qelu)
	}
	// The converted modules own copies of the affine parameters.
	w0 := gn.Weight.F32()[0]
	gn.Weight.F32()[0] = 100
	if qgn.Weight.F32()[0] == 100 || qgn.Weight.RequiresGrad() {
		t.Error("GroupNorm weight shared with the float module")
	}
	gn.Weight.F32()[0] = w0
	x3 := randQ(g, 0.05, 120, 2, 6, 9)
	x4 := randQ(g, 0.05, 120, 2, 6, 3, 4)
	for _, c := range []struct {
		name string
		q, f nn.Layer
		x    *tensor.Tensor
	}{
		{"groupnorm", qgn, gn, x4},
		{"instancenorm1d", qin1, in1, x3},
		{"instancenorm2d", qin2, in2, x4},
		{"elu", qelu, elu, x4},
	} {
		nn.Eval(c.f)
		want := quantizeOut(c.f.Forward(deq(c.x)).Detach(), 0.03, 128)
		compareQ(t, c.name, c.q.Forward(c.x), want, 1)
	}
	if _, err := GroupNormFromFloat(gn, &tensor.QParams{Scheme: tensor.PerChannelAffine, Scale: []float32{1, 1}, ZeroPoint: []int32{0, 0}}); err == nil {
		t.Error("per-channel output qparams accepted")
	}
	if m, err := ELUFromFloat(elu, tensor.PerTensor(0, 0)); err == nil || m != nil {
		t.Error("zero output scale accepted")
	}
	if _, err := InstanceNorm2dFromFloat(nil, out); err == nil {
		t.Error("nil module accepted")
	}
}
