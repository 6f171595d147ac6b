package ops

import (
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

// shDistinct returns a tensor whose values are a shuffled 0.5-spaced
// ramp, so small perturbations never change which element is largest.
func shDistinct(seed uint64, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i, p := range tensor.NewRNG(seed).Perm(n) {
		v[i] = 0.5*float32(p) - 3
	}
	return tensor.FromFloat32(v, shape...).SetRequiresGrad(true)
}

func TestReduceGradcheck(t *testing.T) {
	x := func() *tensor.Tensor { return shParam(21, 2, 3, 4) }
	cases := []struct {
		name string
		f    func(in []*tensor.Tensor) *tensor.Tensor
		in   *tensor.Tensor
	}{
		{"Sum dims", func(in []*tensor.Tensor) *tensor.Tensor { return Sum(in[0], []int{0, -1}, false) }, x()},
		{"Sum keep", func(in []*tensor.Tensor) *tensor.Tensor { return Sum(in[0], []int{1}, true) }, x()},
		{"Sum all", func(in []*tensor.Tensor) *tensor.Tensor { return Sum(in[0], nil, false) }, x()},
		{"Mean", func(in []*tensor.Tensor) *tensor.Tensor { return Mean(in[0], []int{2}, false) }, x()},
		{"Mean keep", func(in []*tensor.Tensor) *tensor.Tensor { return Mean(in[0], []int{0, 2}, true) }, x()},
		{"SumAll", func(in []*tensor.Tensor) *tensor.Tensor { return SumAll(in[0]) }, x()},
		{"MeanAll", func(in []*tensor.Tensor) *tensor.Tensor { return MeanAll(in[0]) }, x()},
		{"Var unbiased", func(in []*tensor.Tensor) *tensor.Tensor { return Var(in[0], []int{-1}, true, false) }, x()},
		{"Var biased keep", func(in []*tensor.Tensor) *tensor.Tensor { return Var(in[0], []int{0, 1}, false, true) }, x()},
		{"Var all", func(in []*tensor.Tensor) *tensor.Tensor { return Var(in[0], nil, true, false) }, x()},
		{"Max", func(in []*tensor.Tensor) *tensor.Tensor { v, _ := Max(in[0], 1, false); return v }, shDistinct(22, 2, 3, 4)},
		{"Max keep last", func(in []*tensor.Tensor) *tensor.Tensor { v, _ := Max(in[0], -1, true); return v }, shDistinct(23, 2, 3, 4)},
		{"Min", func(in []*tensor.Tensor) *tensor.Tensor { v, _ := Min(in[0], 0, false); return v }, shDistinct(24, 2, 3, 4)},
		{"Max scalar", func(in []*tensor.Tensor) *tensor.Tensor { v, _ := Max(in[0], 0, false); return v }, tensor.Scalar(2).SetRequiresGrad(true)},
	}
	for _, c := range cases {
		shGradcheck(t, c.name, c.f, c.in)
	}
}

func TestReduceHandGradients(t *testing.T) {
	// Max sends the gradient to the first maximum only.
	x := tensor.FromFloat32([]float32{1, 5, 5, 2, 0, 3}, 2, 3).SetRequiresGrad(true)
	v, i := Max(x, 1, false)
	shValues(t, "Max values", v, []int{2}, []float64{5, 3})
	shValues(t, "Max indices", i, []int{2}, []float64{1, 2})
	if i.RequiresGrad() {
		t.Fatal("indices require grad")
	}
	if err := autograd.Backward(v, tensor.FromFloat32([]float32{10, 20})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Max grad", x.Grad(), []int{2, 3}, []float64{0, 10, 0, 0, 0, 20})

	// Mean over 3 elements: gradient 1/3 each.
	y := shParam(25, 2, 3)
	if err := autograd.Backward(Mean(y, []int{1}, false), tensor.FromFloat32([]float32{3, 6})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Mean grad", y.Grad(), []int{2, 3}, []float64{1, 1, 1, 2, 2, 2})

	// Var of [1,2,3,4] (unbiased): d/dx = 2(x-2.5)/3.
	z := tensor.FromFloat32([]float32{1, 2, 3, 4}).SetRequiresGrad(true)
	if err := autograd.Backward(Var(z, nil, true, false), nil); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Var grad", z.Grad(), []int{4}, []float64{-1, -1.0 / 3, 1.0 / 3, 1})

	// Sum of an int64 tensor is int64 and records nothing.
	s := Sum(tensor.FromInt64([]int64{1, 2, 3}), nil, false)
	if s.DType() != tensor.Int64 || s.Item() != 6 || s.RequiresGrad() {
		t.Fatalf("Sum int64 = %v", s)
	}
	if m := MeanAll(tensor.Zeros(0)); m.Item() == m.Item() {
		t.Fatalf("MeanAll of empty = %v, want NaN", m)
	}
}
