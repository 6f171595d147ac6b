package intrinsic

import (
	"fmt"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// randomBN gives bn non-trivial running statistics and affine parameters.
func randomBN(g *tensor.RNG, bn *nn.BatchNorm) {
	copy(bn.RunningMean.F32(), tensor.Randn(g, bn.NumFeatures).F32())
	copy(bn.RunningVar.F32(), tensor.RandUniform(g, 0.2, 3, bn.NumFeatures).F32())
	copy(bn.Weight.F32(), tensor.RandUniform(g, 0.5, 2, bn.NumFeatures).F32())
	copy(bn.Bias.F32(), tensor.Randn(g, bn.NumFeatures).F32())
}

func TestFoldOneChannelByHand(t *testing.T) {
	conv, _ := nn.NewConv2d(1, 1, nn.Pair(1), nn.Conv2dOptions{})
	conv.Weight.F32()[0] = 2
	conv.Bias.F32()[0] = 1
	bn, _ := nn.NewBatchNorm2d(1, nn.BatchNormOptions{Eps: 0.25})
	bn.RunningMean.F32()[0] = 3
	bn.RunningVar.F32()[0] = 3.75 // var+eps = 4, rsqrt = 0.5
	bn.Weight.F32()[0] = 4
	bn.Bias.F32()[0] = -1
	nn.Eval(conv)
	nn.Eval(bn)
	f, err := FoldConvBN2d(conv, bn)
	if err != nil {
		t.Fatal(err)
	}
	// scale = 4*0.5 = 2: w' = 4; b' = (1-3)*0.5*4 + (-1) = -5.
	if w, b := f.Weight.F32()[0], f.Bias.F32()[0]; w != 4 || b != -5 {
		t.Fatalf("folded w=%v b=%v, want 4 and -5", w, b)
	}
	y := f.Forward(tensor.FromFloat32([]float32{1, -2}, 1, 1, 1, 2)).F32()
	if y[0] != -1 || y[1] != -13 {
		t.Fatalf("folded conv gives %v, want [-1 -13]", y)
	}
	if conv.Weight.F32()[0] != 2 || conv.Bias.F32()[0] != 1 {
		t.Fatal("folding changed the original conv")
	}
}

func TestFoldMatchesConvThenBN(t *testing.T) {
	g := tensor.NewRNG(7)
	for _, groups := range []int{1, 2} {
		t.Run(fmt.Sprintf("conv2d/groups%d", groups), func(t *testing.T) {
			conv, _ := nn.NewConv2d(4, 6, [2]int{3, 2}, nn.Conv2dOptions{Groups: groups, Padding: nn.Pair(1), Stride: [2]int{2, 1}, RNG: g})
			bn, _ := nn.NewBatchNorm2d(6, nn.BatchNormOptions{})
			randomBN(g, &bn.BatchNorm)
			nn.Eval(conv)
			nn.Eval(bn)
			f, err := FoldConvBN2d(conv, bn)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.Randn(g, 2, 4, 7, 5)
			want := bn.Forward(conv.Forward(x))
			if d := tensor.MaxAbsDiff(f.Forward(x), want); d > 1e-5 {
				t.Fatalf("max diff %g", d)
			}
		})
		t.Run(fmt.Sprintf("convtranspose2d/groups%d", groups), func(t *testing.T) {
			conv, _ := nn.NewConvTranspose2d(4, 6, nn.Pair(3), nn.Conv2dOptions{Groups: groups, Stride: nn.Pair(2), RNG: g})
			bn, _ := nn.NewBatchNorm2d(6, nn.BatchNormOptions{})
			randomBN(g, &bn.BatchNorm)
			nn.Eval(conv)
			nn.Eval(bn)
			f, err := FoldConvTransposeBN2d(conv, bn)
			if err != nil {
				t.Fatal(err)
			}
			x := tensor.Randn(g, 2, 4, 4, 5)
			if d := tensor.MaxAbsDiff(f.Forward(x), bn.Forward(conv.Forward(x))); d > 1e-5 {
				t.Fatalf("max diff %g", d)
			}
		})
	}
	t.Run("conv1d/nobias", func(t *testing.T) {
		conv, _ := nn.NewConv1d(3, 5, 3, nn.Conv1dOptions{NoBias: true, RNG: g})
		bn, _ := nn.NewBatchNorm1d(5, nn.BatchNormOptions{})
		randomBN(g, &bn.BatchNorm)
		nn.Eval(conv)
		nn.Eval(bn)
		f, err := FoldBN(conv, bn)
		if err != nil {
			t.Fatal(err)
		}
		x := tensor.Randn(g, 3, 3, 9)
		if d := tensor.MaxAbsDiff(f.Forward(x), bn.Forward(conv.Forward(x))); d > 1e-5 {
			t.Fatalf("max diff %g", d)
		}
	})
	t.Run("linear", func(t *testing.T) {
		lin, _ := nn.NewLinear(7, 5, nn.LinearOptions{RNG: g})
		bn, _ := nn.NewBatchNorm1d(5, nn.BatchNormOptions{})
		randomBN(g, &bn.BatchNorm)
		nn.Eval(lin)
		nn.Eval(bn)
		f, err := FoldBN(lin, bn)
		if err != nil {
			t.Fatal(err)
		}
		x := tensor.Randn(g, 4, 7)
		if d := tensor.MaxAbsDiff(f.Forward(x), bn.Forward(lin.Forward(x))); d > 1e-5 {
			t.Fatalf("max diff %g", d)
		}
	})
}

func TestFoldErrors(t *testing.T) {
	conv, _ := nn.NewConv2d(2, 3, nn.Pair(1), nn.Conv2dOptions{})
	bn, _ := nn.NewBatchNorm2d(3, nn.BatchNormOptions{})
	if _, err := FoldConvBN2d(conv, bn); err == nil {
		t.Error("training-mode modules folded")
	}
	nn.Eval(conv)
	bad, _ := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	nn.Eval(bad)
	if _, err := FoldConvBN2d(conv, bad); err == nil {
		t.Error("channel mismatch folded")
	}
	nostats, _ := nn.NewBatchNorm2d(3, nn.BatchNormOptions{NoTrackRunningStats: true})
	nn.Eval(nostats)
	if _, err := FoldConvBN2d(conv, nostats); err == nil {
		t.Error("batch norm without running statistics folded")
	}
	if _, err := FoldBN(conv, nn.NewReLU()); err == nil {
		t.Error("FoldBN accepted a ReLU")
	}
}

func TestFusedModules(t *testing.T) {
	g := tensor.NewRNG(3)
	conv, _ := nn.NewConv2d(2, 3, nn.Pair(3), nn.Conv2dOptions{RNG: g})
	bn, _ := nn.NewBatchNorm2d(3, nn.BatchNormOptions{})
	m, err := NewConvBnReLU2d(conv, bn, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := fmt.Sprint(nn.StateDictKeys(m))
	want := "[0.weight 0.bias 1.weight 1.bias 1.running_mean 1.running_var 1.num_batches_tracked]"
	if keys != want {
		t.Fatalf("state dict keys %s, want %s", keys, want)
	}
	if nn.TypeName(m) != "ConvBnReLU2d" {
		t.Fatalf("type name %q", nn.TypeName(m))
	}
	nn.Eval(m)
	x := tensor.Randn(g, 2, 2, 5, 5)
	y := m.Forward(x)
	ref := bn.Forward(conv.Forward(x)).F32()
	for i, v := range y.F32() {
		if want := max(ref[i], 0); v != want {
			t.Fatalf("element %d: %v, want %v", i, v, want)
		}
	}
	if _, err := NewConvBn2d(conv, nil); err == nil {
		t.Error("nil batch norm accepted")
	}
	bn4, _ := nn.NewBatchNorm1d(4, nn.BatchNormOptions{})
	lin, _ := nn.NewLinear(3, 5, nn.LinearOptions{})
	if _, err := NewLinearBn1d(lin, bn4); err == nil {
		t.Error("feature mismatch accepted")
	}
	lr, _ := NewLinearReLU(lin, nil)
	out := lr.Forward(tensor.Randn(g, 2, 3)).F32()
	for _, v := range out {
		if v < 0 {
			t.Fatal("LinearReLU gave a negative value")
		}
	}
}

func TestFusedReLUModules(t *testing.T) {
	g := tensor.NewRNG(9)
	c1, _ := nn.NewConv1d(2, 3, 3, nn.Conv1dOptions{RNG: g})
	cr1, _ := NewConvReLU1d(c1, nil)
	bn, _ := nn.NewBatchNorm2d(2, nn.BatchNormOptions{})
	randomBN(g, &bn.BatchNorm)
	br, _ := NewBNReLU2d(bn, nil)
	nn.Eval(br)
	conv, _ := nn.NewConv1d(2, 3, 3, nn.Conv1dOptions{RNG: g})
	bn1, _ := nn.NewBatchNorm1d(3, nn.BatchNormOptions{})
	randomBN(g, &bn1.BatchNorm)
	cbr, _ := NewConvBnReLU1d(conv, bn1, nil)
	nn.Eval(cbr)
	cases := []struct {
		name string
		m    nn.Layer
		ref  func(x *tensor.Tensor) *tensor.Tensor
		x    *tensor.Tensor
	}{
		{"ConvReLU1d", cr1, c1.Forward, tensor.Randn(g, 2, 2, 6)},
		{"BNReLU2d", br, bn.Forward, tensor.Randn(g, 2, 2, 3, 3)},
		{"ConvBnReLU1d", cbr, func(x *tensor.Tensor) *tensor.Tensor { return bn1.Forward(conv.Forward(x)) }, tensor.Randn(g, 2, 2, 6)},
	}
	for _, c := range cases {
		if nn.TypeName(c.m) != c.name {
			t.Errorf("type name %q, want %q", nn.TypeName(c.m), c.name)
		}
		y, ref := c.m.Forward(c.x).F32(), c.ref(c.x).F32()
		for i := range y {
			if y[i] != max(ref[i], 0) {
				t.Fatalf("%s element %d: %v, want relu(%v)", c.name, i, y[i], ref[i])
			}
		}
	}
	if keys := fmt.Sprint(nn.StateDictKeys(br)); keys != "[0.weight 0.bias 0.running_mean 0.running_var 0.num_batches_tracked]" {
		t.Errorf("BNReLU2d keys %s", keys)
	}
}
