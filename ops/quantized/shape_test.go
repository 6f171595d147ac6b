package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestCatReferenceModel: quantized cat equals quantize(cat(dequantize))
// with the output qparams, along every dimension.
func TestCatReferenceModel(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, dt := range dtypes {
		for dim := -3; dim < 3; dim++ {
			d := (dim + 3) % 3
			s1, s2, s3 := []int{2, 3, 4}, []int{2, 3, 4}, []int{2, 3, 4}
			s2[d], s3[d] = 5, 1
			zo := randZP(r, dt)
			a := randQ(r, dt, 0.1, randZP(r, dt), s1...)
			b := randQ(r, dt, 0.03, zo, s2...) // same qparams as the output: copied
			c := randQ(r, dt, 0.2, randZP(r, dt), s3...)
			y := ok(t)(Cat([]*tensor.Tensor{a, b, c}, dim, 0.03, zo))
			want := refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return tensor.Concat(v, dim) }, dt, 0.03, zo, a, b, c)
			sameQ(t, name(dt, "cat", dim), y, want)
		}
	}
	a := randQ(r, tensor.QUInt8, 0.1, 3, 2, 3)
	if _, err := Cat([]*tensor.Tensor{a, randQ(r, tensor.QUInt8, 0.1, 3, 3, 3)}, 1, 0.1, 3); err == nil {
		t.Error("mismatched sizes accepted")
	}
	if _, err := Cat([]*tensor.Tensor{a, randQ(r, tensor.QInt8, 0.1, 3, 2, 3)}, 0, 0.1, 3); err == nil {
		t.Error("mixed dtypes accepted")
	}
	if _, err := Cat(nil, 0, 0.1, 3); err == nil {
		t.Error("no inputs accepted")
	}
	if _, err := Cat([]*tensor.Tensor{a}, 2, 0.1, 3); err == nil {
		t.Error("dimension 2 of a 2-D tensor accepted")
	}
}

func TestShapeOps(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	x := randQ(r, tensor.QInt8, 0.25, -3, 2, 3, 4, 5)
	f := ok(t)(Flatten(x, 1, -1))
	if !tensor.SameShape(f.Shape(), []int{2, 60}) || f.QParams().Scale[0] != 0.25 || f.QParams().ZeroPoint[0] != -3 {
		t.Fatalf("Flatten: %v %v", f.Shape(), f.QParams())
	}
	rs := ok(t)(Reshape(x, -1, 20))
	if !tensor.SameShape(rs.Shape(), []int{6, 20}) || codes(rs)[37] != codes(x)[37] {
		t.Fatalf("Reshape: %v", rs.Shape())
	}
	p := ok(t)(Permute(x, 0, 2, 3, 1))
	if !tensor.SameShape(p.Shape(), []int{2, 4, 5, 3}) || p.QParams().ZeroPoint[0] != -3 {
		t.Fatalf("Permute: %v", p.Shape())
	}
	// p[n][h][w][c] = x[n][c][h][w]
	if codes(p)[((1*4+2)*5+3)*3+1] != codes(x)[((1*3+1)*4+2)*5+3] {
		t.Fatal("Permute moved the wrong element")
	}
	if _, err := Reshape(x, 7, -1); err == nil {
		t.Error("reshape of 120 elements to [7 -1] accepted")
	}
	if _, err := Permute(x, 0, 1, 1, 2); err == nil {
		t.Error("non-permutation accepted")
	}
	if _, err := Flatten(x, 2, 1); err == nil {
		t.Error("start after end accepted")
	}
	if _, err := Flatten(tensor.Zeros(2, 2), 0, 1); err == nil {
		t.Error("float tensor accepted")
	}
	pc := ops.QuantizePerChannel(tensor.Ones(2, 3, 4), []float32{0.1, 0.2, 0.3}, []int32{0, 0, 0}, 1, tensor.QUInt8)
	if _, err := Flatten(pc, 1, 2); err == nil {
		t.Error("flattening a per-channel axis accepted")
	}
	pc1 := ops.QuantizePerChannel(tensor.Ones(1, 3, 4), []float32{0.1, 0.2, 0.3}, []int32{0, 0, 0}, 1, tensor.QUInt8)
	if y := ok(t)(Flatten(pc1, 0, 1)); y.QParams().Axis != 0 {
		t.Errorf("per-channel axis after Flatten(0, 1) = %d", y.QParams().Axis)
	}
}
