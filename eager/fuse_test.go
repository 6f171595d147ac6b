package eager

import (
	"fmt"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

type net struct {
	nn.Base
	Conv nn.Layer       `nn:"conv"`
	BN   nn.Layer       `nn:"bn"`
	Act  nn.Layer       `nn:"relu"`
	Head *nn.Sequential `nn:"head"`
}

func (n *net) Forward(x *tensor.Tensor) *tensor.Tensor {
	x = n.Act.Forward(n.BN.Forward(n.Conv.Forward(x)))
	return n.Head.Forward(ops.Flatten(x, 1, -1))
}

func newNet(t *testing.T) *net {
	t.Helper()
	rng := tensor.NewRNG(3)
	conv, err := nn.NewConv2d(2, 4, [2]int{3, 3}, nn.Conv2dOptions{Padding: [2]int{1, 1}, RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	bn, err := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lin, err := nn.NewLinear(4*5*5, 6, nn.LinearOptions{RNG: rng})
	if err != nil {
		t.Fatal(err)
	}
	m := &net{Conv: conv, BN: bn, Act: nn.NewReLU(), Head: nn.NewSequential(lin, nn.NewReLU())}
	// Give the batch norm non-trivial statistics and affine parameters.
	autograd.NoGrad(func() {
		for i := 0; i < 5; i++ {
			m.Forward(tensor.Randn(rng, 8, 2, 5, 5))
		}
	})
	for i, v := range bn.Weight.F32() {
		bn.Weight.F32()[i] = v + 0.3*float32(i)
		bn.Bias.F32()[i] = 0.1 * float32(i)
	}
	return m
}

func TestFuseModulesEval(t *testing.T) {
	m := newNet(t)
	nn.Eval(m)
	x := tensor.Randn(tensor.NewRNG(9), 3, 2, 5, 5)
	var before, after *tensor.Tensor
	autograd.NoGrad(func() { before = m.Forward(x) })
	if err := FuseModules(m, [][]string{{"conv", "bn", "relu"}, {"head.0", "head.1"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Conv.(*intrinsic.ConvReLU2d); !ok {
		t.Fatalf("conv is %s, want ConvReLU2d", nn.TypeName(m.Conv))
	}
	if nn.TypeName(m.BN) != "Identity" || nn.TypeName(m.Act) != "Identity" || nn.TypeName(m.Head.At(1)) != "Identity" {
		t.Fatalf("fused-away modules: %s %s %s", nn.TypeName(m.BN), nn.TypeName(m.Act), nn.TypeName(m.Head.At(1)))
	}
	if _, ok := m.Head.At(0).(*intrinsic.LinearReLU); !ok {
		t.Fatalf("head.0 is %s", nn.TypeName(m.Head.At(0)))
	}
	autograd.NoGrad(func() { after = m.Forward(x) })
	if d := tensor.MaxAbsDiff(before, after); d > 1e-5 {
		t.Fatalf("fused model differs from the original by %g", d)
	}
}

func TestFuseModulesQAT(t *testing.T) {
	m := newNet(t)
	if err := FuseModulesQAT(m, [][]string{{"conv", "bn", "relu"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Conv.(*intrinsic.ConvBnReLU2d); !ok {
		t.Fatalf("conv is %s, want ConvBnReLU2d", nn.TypeName(m.Conv))
	}
}

func TestFuseModulesErrors(t *testing.T) {
	cases := []struct {
		groups [][]string
		eval   bool
		qat    bool
		want   string
	}{
		{[][]string{{"conv", "nope"}}, true, false, "nope"},
		{[][]string{{"conv"}}, true, false, "2 or 3"},
		{[][]string{{"relu", "conv"}}, true, false, "not a fusable sequence"},
		{[][]string{{"conv", "bn"}}, false, false, "training mode"},
		{[][]string{{"conv", "bn"}}, true, true, "eval mode"},
		{[][]string{{"conv", "bn"}, {"bn", "relu"}}, true, false, "more than one group"},
	}
	for _, c := range cases {
		m := newNet(t)
		if c.eval {
			nn.Eval(m)
		}
		conv := m.Conv
		var err error
		if c.qat {
			err = FuseModulesQAT(m, c.groups)
		} else {
			err = FuseModules(m, c.groups)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want mention of %q", c.groups, err, c.want)
		}
		if m.Conv != conv {
			t.Errorf("%v: model changed although fusion failed", c.groups)
		}
	}
}

// Fusing a float model for inference, as PyTorch's fuse_modules.
func ExampleFuseModules() {
	rng := tensor.NewRNG(1)
	conv, _ := nn.NewConv2d(1, 2, [2]int{3, 3}, nn.Conv2dOptions{RNG: rng})
	bn, _ := nn.NewBatchNorm2d(2, nn.BatchNormOptions{})
	model := nn.NewSequential(conv, bn, nn.NewReLU())
	nn.Eval(model)
	if err := FuseModules(model, [][]string{{"0", "1", "2"}}); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range nn.Children(model) {
		fmt.Println(c.Name, nn.TypeName(c.Module))
	}
	// Output:
	// 0 ConvReLU2d
	// 1 Identity
	// 2 Identity
}
