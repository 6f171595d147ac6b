package ops

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

func TestSoftmaxGradcheck(t *testing.T) {
	for _, dim := range []int{0, 1, -1} {
		shGradcheck(t, "Softmax", func(in []*tensor.Tensor) *tensor.Tensor { return Softmax(in[0], dim) }, shParam(31, 3, 4, 5))
		shGradcheck(t, "LogSoftmax", func(in []*tensor.Tensor) *tensor.Tensor { return LogSoftmax(in[0], dim) }, shParam(32, 3, 4, 5))
	}
	// Large logits: the stable forms have well-defined gradients.
	big := tensor.RandUniform(tensor.NewRNG(33), 90, 100, 4, 6).SetRequiresGrad(true)
	shGradcheck(t, "LogSoftmax large", func(in []*tensor.Tensor) *tensor.Tensor { return LogSoftmax(in[0], 1) }, big)
	shGradcheck(t, "Softmax scalar", func(in []*tensor.Tensor) *tensor.Tensor { return Softmax(in[0], 0) }, tensor.Scalar(3).SetRequiresGrad(true))
}

func TestSoftmaxHandGradients(t *testing.T) {
	// y = softmax([1000, 1001, 1002]) and g = [1, 0, 0]:
	// dx_j = y_j (g_j - sum_k g_k y_k) = y_0 (delta_0j - y_j).
	y0, y1, y2 := 0.09003057317038046, 0.24472847105479764, 0.6652409557748219
	x := tensor.FromFloat32([]float32{1000, 1001, 1002}).SetRequiresGrad(true)
	if err := autograd.Backward(Softmax(x, 0), tensor.FromFloat32([]float32{1, 0, 0})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "softmax grad", x.Grad(), []int{3}, []float64{y0 * (1 - y0), -y0 * y1, -y0 * y2})

	// log_softmax with g = [1, 2, 3]: dx_j = g_j - y_j * sum(g) = g_j - 6 y_j.
	x2 := tensor.FromFloat32([]float32{1000, 1001, 1002}).SetRequiresGrad(true)
	out := LogSoftmax(x2, -1)
	shValues(t, "log_softmax", out, []int{3}, []float64{math.Log(y0), math.Log(y1), math.Log(y2)})
	if err := autograd.Backward(out, tensor.FromFloat32([]float32{1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	shValues(t, "log_softmax grad", x2.Grad(), []int{3}, []float64{1 - 6*y0, 2 - 6*y1, 3 - 6*y2})

	// The gradient of sum(softmax) is zero: softmax rows sum to one.
	x3 := shParam(34, 2, 5)
	if err := autograd.Backward(SumAll(Softmax(x3, 1)), nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range x3.Grad().F32() {
		if math.Abs(float64(v)) > 1e-6 {
			t.Fatalf("grad of sum(softmax) = %v, want zeros", x3.Grad())
		}
	}
}
