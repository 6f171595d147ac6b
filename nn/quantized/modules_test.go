package quantized

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/ops"
	oq "github.com/quanta-go/quanta/ops/quantized"
	"github.com/quanta-go/quanta/tensor"
)

// allCodes returns a quint8 [1, 4, 8, 8] tensor holding every code once.
func allCodes(scale float32, zp int32) *tensor.Tensor {
	d := make([]uint8, 256)
	for i := range d {
		d[i] = uint8(i*37 + 11)
	}
	return tensor.NewQuantized(tensor.QUInt8, d, outQ(scale, zp), 1, 4, 8, 8)
}

func TestActivationsExact(t *testing.T) {
	x := allCodes(0.05, 120)
	xf := deq(x)
	hs, _ := NewHardswish(0.03, 20)
	lr, _ := NewLeakyReLU(0.1, 0.04, 60)
	elu, _ := NewELU(1.5, 0.04, 100)
	sig, _ := NewSigmoid(oq.SigmoidQParams(tensor.QUInt8))
	sig2, _ := NewSigmoid(0.005, 10)
	th, _ := NewTanh(oq.TanhQParams(tensor.QUInt8))
	th2, _ := NewTanh(0.01, 128)
	sm, _ := NewSoftmax(-1, 1.0/256, 0)
	cases := []struct {
		name string
		m    nn.Layer
		ref  *tensor.Tensor
	}{
		{"relu6", NewReLU6(), quantizeOut(ops.ReLU6(xf), 0.05, 120)},
		{"hardswish", hs, quantizeOut(ops.Hardswish(xf), 0.03, 20)},
		{"leaky_relu", lr, quantizeOut(ops.LeakyReLU(xf, 0.1), 0.04, 60)},
		{"elu", elu, quantizeOut(ops.ELU(xf, 1.5), 0.04, 100)},
		{"sigmoid", sig, quantizeOut(ops.Sigmoid(xf), 1.0/256, 0)},
		{"sigmoid other qparams", sig2, quantizeOut(ops.Sigmoid(xf), 0.005, 10)},
		{"tanh", th, quantizeOut(ops.Tanh(xf), 2.0/256, 128)},
		{"tanh other qparams", th2, quantizeOut(ops.Tanh(xf), 0.01, 128)},
		{"softmax", sm, quantizeOut(ops.Softmax(xf, -1), 1.0/256, 0)},
		{"dropout", NewDropout(0.5), x},
	}
	for _, c := range cases {
		compareQ(t, c.name, c.m.Forward(x), c.ref, 1)
	}
}

func TestQuantizeDeQuantize(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, 0, 0.25, 0.3, 100, -100, 0.125, 0.375}, 2, 4)
	q, err := NewQuantize(0.25, 10)
	if err != nil {
		t.Fatal(err)
	}
	y := q.Forward(x)
	// Hand values: RNE(x/0.25)+10 saturated: -4+10, 10, 11, RNE(1.2)=1 -> 11,
	// 255, 0, RNE(0.5)=0 -> 10, RNE(1.5)=2 -> 12.
	want := []uint8{6, 10, 11, 11, 255, 0, 10, 12}
	for i, v := range y.U8() {
		if v != want[i] {
			t.Fatalf("codes %v, want %v", y.U8(), want)
		}
	}
	d := NewDeQuantize().Forward(y)
	wantF := []float32{-1, 0, 0.25, 0.25, 61.25, -2.5, 0, 0.5}
	for i, v := range d.F32() {
		if v != wantF[i] {
			t.Fatalf("dequantized %v, want %v", d.F32(), wantF)
		}
	}
	if _, err := NewQuantize(0, 0); err == nil {
		t.Fatal("zero scale accepted")
	}
	if _, err := NewQuantize(1, 300); err == nil {
		t.Fatal("zero point 300 accepted")
	}
	func() {
		defer func() {
			if r := recover(); r == nil || fmt.Sprint(r)[:10] != "quantized:" {
				t.Fatalf("float input to DeQuantize: panic %v", r)
			}
		}()
		NewDeQuantize().Forward(x)
	}()
}

func TestWrongDtypePanics(t *testing.T) {
	g := tensor.NewRNG(9)
	l, err := NewLinear(randW(t, g, false, 0, 3, 4), nil, 0.1, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r == nil || fmt.Sprint(r) != "quantized: Linear: input must be quint8, got float32" {
			t.Fatalf("panic %v", r)
		}
	}()
	l.Forward(tensor.Zeros(2, 4))
}

func TestNormsMatchReference(t *testing.T) {
	g := tensor.NewRNG(4)
	x := randQ(g, 0.05, 128, 2, 6, 5, 4)
	xf := deq(x)
	w := tensor.RandUniform(g, 0.5, 1.5, 6)
	b := tensor.RandUniform(g, -0.5, 0.5, 6)

	bnf, err := nn.NewBatchNorm2d(6, nn.BatchNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copy(bnf.Weight.F32(), w.F32())
	copy(bnf.Bias.F32(), b.F32())
	copy(bnf.RunningMean.F32(), tensor.RandUniform(g, -1, 1, 6).F32())
	copy(bnf.RunningVar.F32(), tensor.RandUniform(g, 0.5, 2, 6).F32())
	bn, err := BatchNorm2dFromFloat(bnf, tensor.PerTensor(0.06, 128))
	if err != nil {
		t.Fatal(err)
	}
	nn.Eval(bnf)
	compareQ(t, "batchnorm2d", bn.Forward(x), quantizeOut(bnf.Forward(xf), 0.06, 128), 1)
	bnr, err := BNReLU2dFromFloat(bnf, tensor.PerTensor(0.03, 0))
	if err != nil {
		t.Fatal(err)
	}
	compareQ(t, "bnrelu2d", bnr.Forward(x), quantizeOut(ops.ReLU(bnf.Forward(xf)), 0.03, 0), 1)

	lnf, err := nn.NewLayerNorm([]int{5, 4}, nn.LayerNormOptions{})
	if err != nil {
		t.Fatal(err)
	}
	copy(lnf.Weight.F32(), tensor.RandUniform(g, 0.5, 1.5, 20).F32())
	ln, err := LayerNormFromFloat(lnf, tensor.PerTensor(0.03, 130))
	if err != nil {
		t.Fatal(err)
	}
	compareQ(t, "layernorm", ln.Forward(x), quantizeOut(lnf.Forward(xf), 0.03, 130), 1)

	gn, err := NewGroupNorm(3, 6, w, b, 0, 0.03, 125)
	if err != nil {
		t.Fatal(err)
	}
	compareQ(t, "groupnorm", gn.Forward(x), quantizeOut(ops.GroupNorm(xf, 3, w, b, 1e-5), 0.03, 125), 1)

	in2, err := NewInstanceNorm2d(6, w, b, 0, 0.03, 125)
	if err != nil {
		t.Fatal(err)
	}
	// Instance norm by hand: per (sample, channel) mean and biased variance.
	ref := tensor.New(tensor.Float32, 2, 6, 5, 4)
	xv, rv := xf.F32(), ref.F32()
	for n := 0; n < 2; n++ {
		for c := 0; c < 6; c++ {
			sl := xv[(n*6+c)*20 : (n*6+c+1)*20]
			var mean, vr float64
			for _, v := range sl {
				mean += float64(v)
			}
			mean /= 20
			for _, v := range sl {
				vr += (float64(v) - mean) * (float64(v) - mean)
			}
			vr /= 20
			for i, v := range sl {
				rv[(n*6+c)*20+i] = float32((float64(v)-mean)/math.Sqrt(vr+1e-5))*w.F32()[c] + b.F32()[c]
			}
		}
	}
	compareQ(t, "instancenorm2d (hand)", in2.Forward(x), quantizeOut(ref, 0.03, 125), 0.99)
	compareQ(t, "instancenorm2d", in2.Forward(x), quantizeOut(ops.GroupNorm(xf, 6, w, b, 1e-5), 0.03, 125), 1)

	x1 := randQ(g, 0.05, 128, 3, 6, 7)
	in1, err := NewInstanceNorm1d(6, nil, nil, 0, 0.03, 128)
	if err != nil {
		t.Fatal(err)
	}
	compareQ(t, "instancenorm1d", in1.Forward(x1), quantizeOut(ops.GroupNorm(deq(x1), 6, nil, nil, 1e-5), 0.03, 128), 1)
	if _, err := NewGroupNorm(4, 6, nil, nil, 0, 1, 0); err == nil {
		t.Fatal("6 channels in 4 groups accepted")
	}
}

func TestConvTranspose2dMatchesReference(t *testing.T) {
	g := tensor.NewRNG(5)
	attrs := ops.ConvTransposeAttrs{Stride: [2]int{2, 2}, Padding: [2]int{1, 0}, OutputPadding: [2]int{1, 0}, Groups: 2}
	for _, pc := range []bool{false, true} {
		w := randW(t, g, pc, 1, 4, 3, 3, 2)
		b := tensor.RandUniform(g, -1, 1, 6)
		m, err := NewConvTranspose2d(w, b, attrs, 0.05, 100)
		if err != nil {
			t.Fatal(err)
		}
		x := randQ(g, 0.04, 120, 2, 4, 5, 6)
		ref := ops.ConvTranspose2d(deq(x), deq(w), b, attrs)
		compareQ(t, fmt.Sprintf("convtranspose2d pc=%v", pc), m.Forward(x), quantizeOut(ref, 0.05, 100), 0.99)
	}
}

func TestQFunctional(t *testing.T) {
	g := tensor.NewRNG(6)
	a := randQ(g, 0.05, 100, 3, 4)
	b := randQ(g, 0.02, 140, 3, 4)
	f, err := NewQFunctional(0.07, 110)
	if err != nil {
		t.Fatal(err)
	}
	af, bf := deq(a), deq(b)
	compareQ(t, "add", f.Add(a, b), quantizeOut(ops.Add(af, bf), 0.07, 110), 1)
	compareQ(t, "add_relu", f.AddReLU(a, b), quantizeOut(ops.ReLU(ops.Add(af, bf)), 0.07, 110), 1)
	compareQ(t, "mul", f.Mul(a, b), quantizeOut(ops.Mul(af, bf), 0.07, 110), 1)
	compareQ(t, "cat", f.Cat([]*tensor.Tensor{a, b}, 1), quantizeOut(ops.Concat([]*tensor.Tensor{af, bf}, 1), 0.07, 110), 1)

	// add_scalar inside the range: codes kept, zero point shifted by RNE(c/s).
	y := f.AddScalar(a, 0.26) // c_q = RNE(5.2) = 5
	if q := y.QParams(); q.Scale[0] != 0.05 || q.ZeroPoint[0] != 95 {
		t.Fatalf("add_scalar qparams %v %v", q.Scale, q.ZeroPoint)
	}
	for i := range a.U8() {
		if y.U8()[i] != a.U8()[i] {
			t.Fatal("add_scalar changed the codes")
		}
	}
	// add_scalar past the range: zero point 255 and widened scale; values
	// are x + c_q*s within a step.
	y = f.AddScalar(a, -10) // c_q = -200, z' = 300
	if q := y.QParams(); q.ZeroPoint[0] != 255 || q.Scale[0] != float32(300.0/255*float64(float32(0.05))) {
		t.Fatalf("add_scalar saturating qparams %v %v", q.Scale, q.ZeroPoint)
	}
	compareQ(t, "add_scalar saturating", y, quantizeOut(ops.AddScalar(af, -10), y.QParams().Scale[0], 255), 1)

	y = f.MulScalar(a, 2)
	if q := y.QParams(); q.Scale[0] != 0.1 || q.ZeroPoint[0] != 100 {
		t.Fatalf("mul_scalar qparams %v %v", q.Scale, q.ZeroPoint)
	}
	y = f.MulScalar(a, -0.5)
	yf := deq(y)
	for i, v := range ops.MulScalar(af, -0.5).F32() {
		if math.Abs(float64(yf.F32()[i]-v)) > 1e-6 {
			t.Fatalf("mul_scalar(-0.5): %v, want %v", yf.F32()[i], v)
		}
	}
	z := deq(f.MulScalar(a, 0))
	for _, v := range z.F32() {
		if v != 0 {
			t.Fatal("mul_scalar(0) is not zero")
		}
	}

	// From an observed FloatFunctional.
	ff := nn.NewFloatFunctional()
	if _, err := QFunctionalFromFloat(ff); err == nil {
		t.Fatal("unobserved FloatFunctional converted")
	}
	ff.ActivationPostProcess = &fixedSource{q: tensor.PerTensor(0.5, 7)}
	qf, err := QFunctionalFromFloat(ff)
	if err != nil {
		t.Fatal(err)
	}
	if s, z := qf.OutputQParams(); s != 0.5 || z != 7 || nn.TypeName(qf) != "quantized.QFunctional" {
		t.Fatalf("converted qparams %v %v", s, z)
	}
}

// fixedSource is an observer module stand-in yielding fixed qparams.
type fixedSource struct {
	nn.Base
	q *tensor.QParams
}

func (f *fixedSource) CalculateQParams() (*tensor.QParams, error) { return f.q, nil }
