package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestAddMulReferenceModel: quantized add and mul equal
// quantize(dequantize(a) op dequantize(b)) exactly, with broadcasting
// and fused ReLU.
func TestAddMulReferenceModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	shapes := [][2][]int{{{2, 3, 17, 9}, {2, 3, 17, 9}}, {{1, 8, 5, 5}, {1, 8, 1, 1}}, {{4, 1, 7}, {3, 1}}, {{1000}, {1000}}, {{}, {}}}
	for _, dt := range dtypes {
		for trial := 0; trial < 20; trial++ {
			sh := shapes[trial%len(shapes)]
			a := randQ(r, dt, []float32{0.02, 0.1, 0.0037}[r.IntN(3)], randZP(r, dt), sh[0]...)
			b := randQ(r, dt, []float32{0.05, 0.013, 0.5}[r.IntN(3)], randZP(r, dt), sh[1]...)
			s, z := []float32{0.04, 0.11, 0.007}[r.IntN(3)], randZP(r, dt)
			sameQ(t, name(dt, "add", sh), ok(t)(Add(a, b, s, z)), refModel(func(x ...*tensor.Tensor) *tensor.Tensor { return tensor.Add(x[0], x[1]) }, dt, s, z, a, b))
			sameQ(t, name(dt, "mul", sh), ok(t)(Mul(a, b, s, z)), refModel(func(x ...*tensor.Tensor) *tensor.Tensor { return tensor.Mul(x[0], x[1]) }, dt, s, z, a, b))
			sameQ(t, name(dt, "add_relu", sh), ok(t)(AddReLU(a, b, s, z)), refModel(func(x ...*tensor.Tensor) *tensor.Tensor { return ops.ReLU(tensor.Add(x[0], x[1])) }, dt, s, z, a, b))
			sameQ(t, name(dt, "mul_relu", sh), ok(t)(MulReLU(a, b, s, z)), refModel(func(x ...*tensor.Tensor) *tensor.Tensor { return ops.ReLU(tensor.Mul(x[0], x[1])) }, dt, s, z, a, b))
		}
	}
}

func TestAddHandValues(t *testing.T) {
	a := tensor.NewQuantized(tensor.QUInt8, []uint8{10, 14, 0, 255}, tensor.PerTensor(0.5, 10), 4)
	b := tensor.NewQuantized(tensor.QUInt8, []uint8{100, 104, 0, 255}, tensor.PerTensor(0.25, 100), 4)
	// (a-10)/2 + (b-100)/4 = 0, 3, -30, 161.25 -> +50 at scale 1.
	y := ok(t)(Add(a, b, 1, 50))
	if got := y.U8(); got[0] != 50 || got[1] != 53 || got[2] != 20 || got[3] != 211 {
		t.Fatalf("Add = %v", got)
	}
	y = ok(t)(AddReLU(a, b, 1, 50))
	if got := y.U8(); got[2] != 50 {
		t.Fatalf("AddReLU = %v", got)
	}
	// 0*0, 2*1, -5*-25, big: 50, 52, 175, 255.
	y = ok(t)(Mul(a, b, 1, 50))
	if got := y.U8(); got[0] != 50 || got[1] != 52 || got[2] != 175 || got[3] != 255 {
		t.Fatalf("Mul = %v", got)
	}
}

func TestBinaryErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a := randQ(r, tensor.QUInt8, 0.1, 3, 2, 3)
	b := randQ(r, tensor.QInt8, 0.1, 3, 2, 3)
	if _, err := Add(a, b, 0.1, 0); err == nil {
		t.Error("quint8 + qint8 accepted")
	}
	if _, err := Add(a, tensor.Zeros(2, 3), 0.1, 0); err == nil {
		t.Error("float operand accepted")
	}
	if _, err := Add(a, a, 0, 0); err == nil {
		t.Error("zero output scale accepted")
	}
	if _, err := Add(a, a, 0.1, 256); err == nil {
		t.Error("zero point 256 accepted")
	}
	if _, err := Mul(a, randQ(r, tensor.QUInt8, 0.1, 3, 4), 0.1, 0); err == nil {
		t.Error("shapes [2 3] and [4] accepted")
	}
	pc := ops.QuantizePerChannel(tensor.Ones(2, 3), []float32{0.1, 0.2}, []int32{0, 0}, 0, tensor.QUInt8)
	if _, err := Add(pc, pc, 0.1, 0); err == nil {
		t.Error("per-channel activations accepted")
	}
}
