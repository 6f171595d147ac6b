package quantized

import (
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

// randQ returns a random quint8 tensor with the given qparams.
func randQ(g *tensor.RNG, scale float32, zp int32, shape ...int) *tensor.Tensor {
	x := tensor.New(tensor.Uint8, shape...)
	for i := range x.U8() {
		x.U8()[i] = uint8(g.IntN(256))
	}
	return tensor.NewQuantized(tensor.QUInt8, x.U8(), outQ(scale, zp), shape...)
}

// randW returns a qint8 weight quantized from random floats, per-tensor or
// per-channel along axis.
func randW(t *testing.T, g *tensor.RNG, perChannel bool, axis int, shape ...int) *tensor.Tensor {
	t.Helper()
	f := tensor.RandUniform(g, -0.5, 0.5, shape...)
	var obs observer.Observer
	if perChannel {
		obs = observer.NewPerChannelMinMax(observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric, ChAxis: axis})
	}
	w, err := QuantizeWeight(f, obs)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// compareQ counts equal codes and fails when any differs by more than one
// step or fewer than minExact of them are equal.
func compareQ(t *testing.T, what string, got, want *tensor.Tensor, minExact float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	gq, wq := got.QParams(), want.QParams()
	if gq.Scale[0] != wq.Scale[0] || gq.ZeroPoint[0] != wq.ZeroPoint[0] {
		t.Fatalf("%s: qparams %v/%v, want %v/%v", what, gq.Scale, gq.ZeroPoint, wq.Scale, wq.ZeroPoint)
	}
	g, w := got.U8(), want.U8()
	exact := 0
	for i := range g {
		d := int(g[i]) - int(w[i])
		if d == 0 {
			exact++
		} else if d < -1 || d > 1 {
			t.Fatalf("%s: element %d is %d, reference %d", what, i, g[i], w[i])
		}
	}
	if exact < len(g) {
		t.Logf("%s: %d of %d codes equal the reference", what, exact, len(g))
	}
	if len(g) > 0 && float64(exact)/float64(len(g)) < minExact {
		t.Fatalf("%s: %d of %d exact, want at least %.0f%%", what, exact, len(g), 100*minExact)
	}
}

func deq(t *tensor.Tensor) *tensor.Tensor { return ops.Dequantize(t) }
