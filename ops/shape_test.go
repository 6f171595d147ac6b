package ops

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/tensor"
)

// shParam returns a random float32 tensor that requires grad.
func shParam(seed uint64, shape ...int) *tensor.Tensor {
	return tensor.RandUniform(tensor.NewRNG(seed), -1, 1, shape...).SetRequiresGrad(true)
}

// shGradcheck runs gradcheck.Check and fails the test on a mismatch.
func shGradcheck(t *testing.T, name string, f func(in []*tensor.Tensor) *tensor.Tensor, in ...*tensor.Tensor) {
	t.Helper()
	if err := gradcheck.Check(f, in, gradcheck.Options{}); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// shValues fails unless got has the shape and values given.
func shValues(t *testing.T, name string, got *tensor.Tensor, shape []int, want []float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape(), shape)
	}
	g := got.Float64s()
	if len(g) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(g), len(want))
	}
	for i := range g {
		if math.Abs(g[i]-want[i]) > 1e-6*(1+math.Abs(want[i])) {
			t.Fatalf("%s: values %v, want %v", name, g, want)
		}
	}
}

func TestShapeOpsGradcheck(t *testing.T) {
	x := func() *tensor.Tensor { return shParam(1, 2, 3, 4) }
	idx := tensor.FromInt64([]int64{2, 0, 2, -1})
	cases := []struct {
		name string
		f    func(in []*tensor.Tensor) *tensor.Tensor
		in   []*tensor.Tensor
	}{
		{"Reshape", func(in []*tensor.Tensor) *tensor.Tensor { return Reshape(in[0], 4, -1) }, Ts(x())},
		{"View", func(in []*tensor.Tensor) *tensor.Tensor { return View(in[0], 24) }, Ts(x())},
		{"Flatten", func(in []*tensor.Tensor) *tensor.Tensor { return Flatten(in[0], 1, -1) }, Ts(x())},
		{"Squeeze", func(in []*tensor.Tensor) *tensor.Tensor { return Squeeze(in[0]) }, Ts(shParam(2, 2, 1, 3))},
		{"Unsqueeze", func(in []*tensor.Tensor) *tensor.Tensor { return Unsqueeze(in[0], -1) }, Ts(x())},
		{"Transpose", func(in []*tensor.Tensor) *tensor.Tensor { return Transpose(in[0], 0, -1) }, Ts(x())},
		{"Permute", func(in []*tensor.Tensor) *tensor.Tensor { return Permute(in[0], 2, -3, 1) }, Ts(x())},
		{"Slice", func(in []*tensor.Tensor) *tensor.Tensor { return Slice(in[0], 2, -3, math.MaxInt, 2) }, Ts(x())},
		{"Narrow", func(in []*tensor.Tensor) *tensor.Tensor { return Narrow(in[0], 1, -2, 2) }, Ts(x())},
		{"Concat", func(in []*tensor.Tensor) *tensor.Tensor { return Concat(in, 1) },
			Ts(shParam(3, 2, 2), tensor.Ones(2, 3), shParam(4, 2, 1))},
		{"Stack", func(in []*tensor.Tensor) *tensor.Tensor { return Stack(in, -1) }, Ts(shParam(5, 2, 3), shParam(6, 2, 3))},
		{"Split", func(in []*tensor.Tensor) *tensor.Tensor {
			p := Split(in[0], []int{1, 0, 3}, 2)
			return Concat(Ts(p[2], p[0]), 2)
		}, Ts(x())},
		{"Split one piece", func(in []*tensor.Tensor) *tensor.Tensor { return Split(in[0], []int{2, 2}, -1)[1] }, Ts(x())},
		{"Chunk", func(in []*tensor.Tensor) *tensor.Tensor {
			p := Chunk(in[0], 2, 1)
			return Concat(Ts(p[1], p[0]), 1)
		}, Ts(x())},
		{"IndexSelect", func(in []*tensor.Tensor) *tensor.Tensor { return IndexSelect(in[0], -1, idx) }, Ts(x())},
		{"Gather", func(in []*tensor.Tensor) *tensor.Tensor {
			return Gather(in[0], 1, tensor.FromInt64([]int64{0, 2, 2, 1, 1, 1, 0, 0}, 2, 1, 4))
		}, Ts(x())},
		{"Pad", func(in []*tensor.Tensor) *tensor.Tensor { return Pad(in[0], []int{1, 2, 0, -1}, 3) }, Ts(x())},
		{"Pad crop", func(in []*tensor.Tensor) *tensor.Tensor { return Pad(in[0], []int{-1, -2, 1, 0, 0, 1}, 0) }, Ts(x())},
		{"Expand", func(in []*tensor.Tensor) *tensor.Tensor { return Expand(in[0], 2, -1, 4) }, Ts(shParam(7, 3, 1))},
		{"Repeat", func(in []*tensor.Tensor) *tensor.Tensor { return Repeat(in[0], 2, 1, 3) }, Ts(shParam(8, 2, 3))},
	}
	for _, c := range cases {
		shGradcheck(t, c.name, c.f, c.in...)
	}
}

func TestShapeOpsHandGradients(t *testing.T) {
	// Repeat: each element of x appears reps times, so its gradient under a
	// sum is the number of copies.
	x := shParam(9, 2, 1)
	if err := autograd.Backward(SumAll(Repeat(x, 3, 2, 4)), nil); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Repeat grad", x.Grad(), []int{2, 1}, []float64{24, 24})

	// IndexSelect with repeated indices accumulates.
	y := shParam(10, 3)
	if err := autograd.Backward(IndexSelect(y, 0, tensor.FromInt64([]int64{1, 1, -1})), tensor.FromFloat32([]float32{1, 2, 4})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "IndexSelect grad", y.Grad(), []int{3}, []float64{0, 3, 4})

	// Pad gradient is the cropped output gradient.
	z := shParam(11, 2, 2)
	g := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
	if err := autograd.Backward(Pad(z, []int{1, 0, 0, 1}, 5), g); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Pad grad", z.Grad(), []int{2, 2}, []float64{2, 3, 5, 6})

	// A piece of Split that receives no gradient contributes zeros.
	w := shParam(12, 5)
	if err := autograd.Backward(Split(w, []int{2, 3}, 0)[1], tensor.FromFloat32([]float32{7, 8, 9})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Split grad", w.Grad(), []int{5}, []float64{0, 0, 7, 8, 9})

	// Concat routes slices back, skipping legacy empty inputs.
	a, b := shParam(13, 1, 2), shParam(14, 2, 2)
	if err := autograd.Backward(Concat(Ts(a, tensor.Zeros(0), b), 0), tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6}, 3, 2)); err != nil {
		t.Fatal(err)
	}
	shValues(t, "Concat grad a", a.Grad(), []int{1, 2}, []float64{1, 2})
	shValues(t, "Concat grad b", b.Grad(), []int{2, 2}, []float64{3, 4, 5, 6})
}

func TestReshapeSharesStorage(t *testing.T) {
	x := shParam(15, 2, 3)
	for _, r := range []*tensor.Tensor{Reshape(x, 3, 2), View(x, -1), Flatten(x, 0, 1), Unsqueeze(x, 0), Squeeze(x)} {
		if &r.F32()[0] != &x.F32()[0] {
			t.Fatalf("%v does not share storage", r.GradFn().Name())
		}
	}
	if n := Reshape(x, 6).GradFn().Name(); n != "ReshapeBackward" {
		t.Fatalf("grad fn %q", n)
	}
	plain := tensor.Ones(2, 3)
	if Transpose(plain, 0, 1).GradFn() != nil || Reshape(plain, 6).RequiresGrad() {
		t.Fatal("op on a tensor without grad recorded history")
	}
}

// shTracer records op names and attributes.
type shTracer struct{ ops []string }

func (r *shTracer) Op(name string, attrs any, inputs, outputs []*tensor.Tensor) {
	r.ops = append(r.ops, fmt.Sprintf("%s%+v/%d/%d", name, attrs, len(inputs), len(outputs)))
}
func (r *shTracer) EnterModule(path, typ string, inputs []*tensor.Tensor) {}
func (r *shTracer) ExitModule(path, typ string, outputs []*tensor.Tensor) {}

func TestShapeOpsTrace(t *testing.T) {
	tr := &shTracer{}
	prev := SetTracer(tr)
	defer SetTracer(prev)
	x := tensor.Ones(2, 6)
	Pad(x, []int{1, 1}, 0.5)
	Chunk(x, 3, 1)
	Narrow(x, 1, -2, 2)
	Sum(x, []int{1}, true)
	Softmax(x, -1)
	Gather(x, 1, tensor.FromInt64([]int64{0, 1}, 2, 1))
	want := []string{
		"Pad{Pads:[1 1] Value:0.5}/1/1",
		"Chunk{Sizes:[2 2 2] Dim:1}/1/3",
		"Narrow{Dim:1 Start:4 End:6 Step:1}/1/1",
		"Sum{Dims:[1] KeepDim:true Unbiased:false}/1/1",
		"Softmax{Dim:-1}/1/1",
		"Gather{Dim:1}/2/1",
	}
	if fmt.Sprint(tr.ops) != fmt.Sprint(want) {
		t.Fatalf("trace\n%v\nwant\n%v", tr.ops, want)
	}
}
