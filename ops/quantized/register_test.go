package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestFloatOpsDispatchOnQuantized checks that the float ops (and so the nn
// modules calling them) run this package's kernels on quantized tensors,
// with the kernels' exact codes and qparams, as PyTorch's nn.ReLU and
// nn.MaxPool2d run on quantized tensors.
func TestFloatOpsDispatchOnQuantized(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pa := ops.PoolAttrs{Kernel: [2]int{2, 2}, Stride: [2]int{2, 2}, Dilation: [2]int{1, 1}}
	for _, dt := range dtypes {
		zp := int32(100)
		if dt == tensor.QInt8 {
			zp = -3
		}
		x := randQ(r, dt, 0.05, zp, 2, 3, 6, 6)
		cases := []struct {
			name      string
			got, want func() (*tensor.Tensor, error)
		}{
			{"ReLU", func() (*tensor.Tensor, error) { return ops.ReLU(x), nil }, func() (*tensor.Tensor, error) { return ReLU(x) }},
			{"ReLU6", func() (*tensor.Tensor, error) { return ops.ReLU6(x), nil }, func() (*tensor.Tensor, error) { return ReLU6(x) }},
			{"Hardtanh", func() (*tensor.Tensor, error) { return ops.Hardtanh(x, -1, 2), nil }, func() (*tensor.Tensor, error) { return Hardtanh(x, -1, 2) }},
			{"LeakyReLU", func() (*tensor.Tensor, error) { return ops.LeakyReLU(x, 0.1), nil }, func() (*tensor.Tensor, error) { return LeakyReLU(x, 0.1, 0.05, zp) }},
			{"ELU", func() (*tensor.Tensor, error) { return ops.ELU(x, 1), nil }, func() (*tensor.Tensor, error) { return ELU(x, 1, 0.05, zp) }},
			{"GELU", func() (*tensor.Tensor, error) { return ops.GELU(x, false), nil }, func() (*tensor.Tensor, error) { return GELU(x, false, 0.05, zp) }},
			{"Hardswish", func() (*tensor.Tensor, error) { return ops.Hardswish(x), nil }, func() (*tensor.Tensor, error) { return Hardswish(x, 0.05, zp) }},
			{"Hardsigmoid", func() (*tensor.Tensor, error) { return ops.Hardsigmoid(x), nil }, func() (*tensor.Tensor, error) { return Hardsigmoid(x) }},
			{"Sigmoid", func() (*tensor.Tensor, error) { return ops.Sigmoid(x), nil }, func() (*tensor.Tensor, error) { return Sigmoid(x) }},
			{"Tanh", func() (*tensor.Tensor, error) { return ops.Tanh(x), nil }, func() (*tensor.Tensor, error) { return Tanh(x) }},
			{"MaxPool2d", func() (*tensor.Tensor, error) { return ops.MaxPool2d(x, pa), nil }, func() (*tensor.Tensor, error) { return MaxPool2d(x, pa) }},
			{"AvgPool2d", func() (*tensor.Tensor, error) { return ops.AvgPool2d(x, pa), nil }, func() (*tensor.Tensor, error) { return AvgPool2d(x, pa) }},
			{"AdaptiveAvgPool2d", func() (*tensor.Tensor, error) { return ops.AdaptiveAvgPool2d(x, 4, 3), nil }, func() (*tensor.Tensor, error) { return AdaptiveAvgPool2d(x, 4, 3) }},
			{"Dropout(eval)", func() (*tensor.Tensor, error) { return ops.Dropout(x, 0.5, false, nil), nil }, func() (*tensor.Tensor, error) { return x, nil }},
			{"Flatten", func() (*tensor.Tensor, error) { return ops.Flatten(x, 1, -1), nil }, func() (*tensor.Tensor, error) { return Flatten(x, 1, -1) }},
		}
		for _, c := range cases {
			got, _ := c.got()
			want, err := c.want()
			if err != nil {
				t.Fatalf("%v %s: %v", dt, c.name, err)
			}
			sameQTensor(t, dt.String()+" "+c.name, got, want)
		}
		// The nn modules go through the same ops.
		mp, err := nn.NewMaxPool2d(nn.Pair(2), nn.PoolOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := MaxPool2d(x, pa)
		sameQTensor(t, dt.String()+" nn.MaxPool2d", mp.Forward(x), want)
		want, _ = ReLU(x)
		sameQTensor(t, dt.String()+" nn.ReLU", nn.NewReLU().Forward(x), want)
	}
}

func sameQTensor(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
		t.Fatalf("%s: got %v %v, want %v %v", what, got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	gq, wq := got.QParams(), want.QParams()
	if gq.Scale[0] != wq.Scale[0] || gq.ZeroPoint[0] != wq.ZeroPoint[0] {
		t.Fatalf("%s: qparams %v/%v, want %v/%v", what, gq.Scale, gq.ZeroPoint, wq.Scale, wq.ZeroPoint)
	}
	g, w := ops.Dequantize(got).F32(), ops.Dequantize(want).F32()
	for i := range g {
		if g[i] != w[i] {
			t.Fatalf("%s: element %d dequantizes to %v, kernel gives %v", what, i, g[i], w[i])
		}
	}
}
