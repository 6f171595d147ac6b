package quantized

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

var dtypes = []tensor.DType{tensor.QUInt8, tensor.QInt8}

// randQ returns a random per-tensor quantized tensor with codes spread
// over the whole range (extremes included).
func randQ(r *rand.Rand, dt tensor.DType, scale float32, zp int32, shape ...int) *tensor.Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	q := &tensor.QParams{Scheme: tensor.PerTensorAffine, Scale: []float32{scale}, ZeroPoint: []int32{zp}}
	q.QuantMin, q.QuantMax = dtypeRange(dt)
	if dt == tensor.QUInt8 {
		d := make([]uint8, n)
		for i := range d {
			d[i] = uint8(r.IntN(256))
		}
		if n > 1 {
			d[0], d[1] = 0, 255
		}
		return tensor.NewQuantized(dt, d, q, shape...)
	}
	d := make([]int8, n)
	for i := range d {
		d[i] = int8(r.IntN(256) - 128)
	}
	if n > 1 {
		d[0], d[1] = -128, 127
	}
	return tensor.NewQuantized(dt, d, q, shape...)
}

// randZP returns a random zero point of dt.
func randZP(r *rand.Rand, dt tensor.DType) int32 {
	lo, _ := dtypeRange(dt)
	return lo + int32(r.IntN(256))
}

// codes returns a quantized tensor's values as int32.
func codes(t *tensor.Tensor) []int32 {
	out := make([]int32, t.Numel())
	if t.DType() == tensor.QUInt8 {
		for i, v := range t.U8() {
			out[i] = int32(v)
		}
	} else {
		for i, v := range t.I8() {
			out[i] = int32(v)
		}
	}
	return out
}

// sameQ fails unless got and want have equal shapes, dtypes, per-tensor
// qparams and codes.
func sameQ(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if got.DType() != want.DType() || !tensor.SameShape(got.Shape(), want.Shape()) {
		t.Fatalf("%s: got %v%v, want %v%v", what, got.DType(), got.Shape(), want.DType(), want.Shape())
	}
	gq, wq := got.QParams(), want.QParams()
	if gq.Scale[0] != wq.Scale[0] || gq.ZeroPoint[0] != wq.ZeroPoint[0] {
		t.Fatalf("%s: qparams (%g, %d), want (%g, %d)", what, gq.Scale[0], gq.ZeroPoint[0], wq.Scale[0], wq.ZeroPoint[0])
	}
	g, w := codes(got), codes(want)
	for i := range w {
		if g[i] != w[i] {
			t.Fatalf("%s: element %d = %d, want %d", what, i, g[i], w[i])
		}
	}
}

// refModel is the reference quantized model of a float op: dequantize
// the inputs, run f in float32, quantize to (scale, zp).
func refModel(f func(xs ...*tensor.Tensor) *tensor.Tensor, dt tensor.DType, scale float32, zp int32, xs ...*tensor.Tensor) *tensor.Tensor {
	fs := make([]*tensor.Tensor, len(xs))
	for i, x := range xs {
		fs[i] = ops.Dequantize(x)
	}
	return ops.QuantizePerTensor(f(fs...), scale, zp, dt)
}

func must(t *testing.T, y *tensor.Tensor, err error) *tensor.Tensor {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return y
}

// ok returns a function that fails t on a non-nil error.
func ok(t *testing.T) func(*tensor.Tensor, error) *tensor.Tensor {
	return func(y *tensor.Tensor, err error) *tensor.Tensor {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
}

func name(dt tensor.DType, extra ...any) string { return fmt.Sprint(dt, extra) }
