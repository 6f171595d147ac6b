package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func TestLayerNormSoftmaxReferenceModel(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for _, dt := range dtypes {
		x := randQ(r, dt, 0.05, randZP(r, dt), 3, 5, 16)
		w := tensor.RandUniform(tensor.NewRNG(1), 0.5, 1.5, 5, 16)
		b := tensor.RandUniform(tensor.NewRNG(2), -0.5, 0.5, 5, 16)
		so, zo := float32(0.02), randZP(r, dt)
		y := ok(t)(LayerNorm(x, []int{5, 16}, w, b, 1e-5, so, zo))
		want := refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.LayerNorm(v[0], []int{5, 16}, w, b, 1e-5) }, dt, so, zo, x)
		sameQ(t, name(dt, "layer_norm"), y, want)
		y = ok(t)(LayerNorm(x, []int{16}, nil, nil, 1e-5, so, zo))
		want = refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.LayerNorm(v[0], []int{16}, nil, nil, 1e-5) }, dt, so, zo, x)
		sameQ(t, name(dt, "layer_norm no affine"), y, want)
		ss, zs := SigmoidQParams(dt)
		for _, dim := range []int{-1, 0, 1} {
			y = ok(t)(Softmax(x, dim, ss, zs))
			want = refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.Softmax(v[0], dim) }, dt, ss, zs, x)
			sameQ(t, name(dt, "softmax", dim), y, want)
		}
	}
	x := randQ(r, tensor.QUInt8, 0.05, 3, 2, 4)
	if _, err := LayerNorm(x, []int{3}, nil, nil, 1e-5, 0.1, 0); err == nil {
		t.Error("normalized shape [3] of [2 4] accepted")
	}
	if _, err := LayerNorm(x, []int{4}, tensor.Ones(3), nil, 1e-5, 0.1, 0); err == nil {
		t.Error("weight of the wrong shape accepted")
	}
	if _, err := Softmax(x, 2, 0.1, 0); err == nil {
		t.Error("softmax dimension 2 of a 2-D tensor accepted")
	}
}

func TestSoftmaxHandValues(t *testing.T) {
	// Equal inputs: softmax 1/4 each -> 64 at scale 1/256.
	x := tensor.NewQuantized(tensor.QUInt8, []uint8{7, 7, 7, 7}, tensor.PerTensor(0.1, 0), 1, 4)
	y := ok(t)(Softmax(x, 1, 1.0/256, 0))
	for _, v := range y.U8() {
		if v != 64 {
			t.Fatalf("softmax = %v", y.U8())
		}
	}
}
