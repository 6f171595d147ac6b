package fakequant

import (
	"errors"
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

func TestFakeQuantizeUsesObserverQParams(t *testing.T) {
	fq := NewFusedMovingAvgObs(observer.MovingAverageConfig{Config: observer.Config{ReduceRange: true}})
	x := tensor.FromFloat32([]float32{-1, -0.3, 0, 0.7, 3}).SetRequiresGrad(true)
	y, err := fq.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	q, err := fq.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	// First batch: min -1, max 3 over 0..127 (reduce_range): scale 4/127,
	// zero point 32 (PyTorch's numbers for this range).
	if q.Scale[0] != float32(4)/127 || q.ZeroPoint[0] != 32 || q.QuantMax != 127 {
		t.Fatalf("qparams %+v", q)
	}
	want := ops.FakeQuantizePerTensor(x.Detach(), q.Scale[0], q.ZeroPoint[0], 0, 127)
	for i := range want.F32() {
		if y.F32()[i] != want.F32()[i] {
			t.Fatalf("y = %v, want %v", y.F32(), want.F32())
		}
	}
	if err := autograd.Backward(y, nil); err != nil {
		t.Fatal(err)
	}
	if x.Grad() == nil {
		t.Fatal("no gradient through FakeQuantize")
	}
	// Observer off: qparams frozen although the range grows.
	fq.EnableObserver(false)
	if _, err := fq.Forward(tensor.FromFloat32([]float32{-100, 100})); err != nil {
		t.Fatal(err)
	}
	if q2, _ := fq.CalculateQParams(); q2.Scale[0] != q.Scale[0] {
		t.Fatalf("scale moved with the observer disabled: %v", q2.Scale[0])
	}
	// Fake quant off: identity.
	fq.EnableFakeQuant(false)
	z, _ := fq.Forward(x)
	if z != x {
		t.Fatal("disabled fake quant is not the identity")
	}
}

func TestFakeQuantizeErrors(t *testing.T) {
	fq := New(observer.NewMinMax(observer.Config{}))
	if _, err := fq.Forward(tensor.FromFloat32([]float32{1, float32(math.NaN())})); !errors.Is(err, observer.ErrNonFinite) {
		t.Fatalf("NaN: err = %v", err)
	}
	fq.EnableObserver(false)
	if _, err := fq.Forward(tensor.FromFloat32([]float32{1})); err == nil {
		t.Fatal("fake quant without qparams did not fail")
	}
}

func TestPerChannelWeightFakeQuant(t *testing.T) {
	fq := New(observer.NewMovingAveragePerChannelMinMax(observer.MovingAverageConfig{Config: observer.Config{Dtype: tensor.QInt8, QScheme: tensor.PerChannelSymmetric}}))
	w := tensor.FromFloat32([]float32{1, -2, 0.5, 0.1, 0.2, -0.05}, 2, 3)
	y, err := fq.Forward(w)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := fq.CalculateQParams()
	if len(q.Scale) != 2 || q.ZeroPoint[0] != 0 || q.Scale[0] != float32(2)/127.5 {
		t.Fatalf("per-channel qparams %+v", q)
	}
	want := ops.FakeQuantizePerChannel(w, q.Scale, q.ZeroPoint, 0, -128, 127)
	for i := range want.F32() {
		if y.F32()[i] != want.F32()[i] {
			t.Fatalf("y = %v, want %v", y.F32(), want.F32())
		}
	}
}

func TestFixedQParams(t *testing.T) {
	fq := NewFixedSigmoid()
	y, err := fq.Forward(tensor.FromFloat32([]float32{0, 0.5, 0.999, 1.5, -1}))
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{0, 0.5, 1 - 1.0/256, 1 - 1.0/256, 0}
	for i, w := range want {
		if y.F32()[i] != w {
			t.Fatalf("sigmoid fixed fake quant = %v, want %v", y.F32(), want)
		}
	}
	th := NewFixedTanh()
	y, _ = th.Forward(tensor.FromFloat32([]float32{-1, 0, 0.999}))
	if y.F32()[0] != -1 || y.F32()[1] != 0 || y.F32()[2] != 127.0/128 {
		t.Fatalf("tanh fixed fake quant = %v", y.F32())
	}
}

func TestFakeQuantizeMergeAndState(t *testing.T) {
	a := New(observer.NewMinMax(observer.Config{}))
	b := New(observer.NewMinMax(observer.Config{}))
	a.Observe(tensor.FromFloat32([]float32{-1, 2}))
	b.Observe(tensor.FromFloat32([]float32{-3, 1}))
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	one := New(observer.NewMinMax(observer.Config{}))
	one.Observe(tensor.FromFloat32([]float32{-1, 2, -3, 1}))
	qa, _ := a.CalculateQParams()
	q1, _ := one.CalculateQParams()
	if qa.Scale[0] != q1.Scale[0] || qa.ZeroPoint[0] != q1.ZeroPoint[0] {
		t.Fatalf("merged %+v, one pass %+v", qa, q1)
	}
	st, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	c := New(observer.NewMinMax(observer.Config{}))
	if err := c.UnmarshalBinary(st); err != nil {
		t.Fatal(err)
	}
	if qc, _ := c.CalculateQParams(); qc.Scale[0] != qa.Scale[0] {
		t.Fatal("state round trip changed qparams")
	}
	if err := a.Merge(observer.NewMinMax(observer.Config{})); err == nil {
		t.Fatal("merging a plain observer into FakeQuantize was accepted")
	}
}

func TestFloatQParamsFakeQuant(t *testing.T) {
	fq := New(observer.NewPerChannelMinMax(observer.Config{QScheme: tensor.PerChannelAffineFloatQParams}))
	w := tensor.FromFloat32([]float32{0.25, 1, 0.5, -1, 1, 0}, 2, 3).SetRequiresGrad(true)
	y, err := fq.Forward(w)
	if err != nil {
		t.Fatal(err)
	}
	// Row 0: min 0.25 max 1 -> scale 0.75/255, zp = -0.25/scale = -85.
	// The row's own values are representable: 0.25 -> 0.25 (q=0 after zp).
	for i, v := range []float32{0.25, 1, 0.5} {
		if math.Abs(float64(y.F32()[i]-v)) > 0.75/255/2+1e-6 {
			t.Fatalf("row 0: y = %v", y.F32()[:3])
		}
	}
	if err := autograd.Backward(y, nil); err != nil {
		t.Fatal(err)
	}
	for _, g := range w.Grad().F32() {
		if g != 1 {
			t.Fatalf("in-range STE gradient %v", w.Grad().F32())
		}
	}
}

func TestLearnableLearns(t *testing.T) {
	l, err := NewLearnable(observer.NewMinMax(observer.Config{}))
	if err != nil {
		t.Fatal(err)
	}
	g := tensor.NewRNG(1)
	x := tensor.Randn(g, 256)
	if _, err := l.Forward(x); err != nil {
		t.Fatal(err)
	}
	q0, _ := l.CalculateQParams()
	if q0.Scale[0] <= 0 || q0.QuantMax != 255 {
		t.Fatalf("static estimate %+v", q0)
	}
	// Start from a scale 8x too coarse: learning must bring the squared
	// quantization error down.
	l.EnableParamLearning()
	l.Scale.F32()[0] *= 8
	l.UseGradScaling = true
	loss := func() float64 {
		var y *tensor.Tensor
		autograd.NoGrad(func() { y, _ = l.Forward(x) })
		var s float64
		for i, v := range y.F32() {
			d := float64(v - x.F32()[i])
			s += d * d
		}
		return s
	}
	before := loss()
	for step := 0; step < 50; step++ {
		y, err := l.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		d := ops.Sub(y, x.Detach())
		if err := autograd.Backward(ops.SumAll(ops.Mul(d, d)), nil); err != nil {
			t.Fatal(err)
		}
		l.Scale.F32()[0] -= 1e-4 * l.Scale.Grad().F32()[0]
		l.ZeroPoint.F32()[0] -= 1e-1 * l.ZeroPoint.Grad().F32()[0]
		l.Scale.SetGrad(nil)
		l.ZeroPoint.SetGrad(nil)
	}
	if after := loss(); !(after < before) {
		t.Fatalf("LSQ training did not reduce the error: %v -> %v", before, after)
	}
	if _, err := NewLearnable(observer.NewPerChannelMinMax(observer.Config{})); err == nil {
		t.Fatal("per-channel learnable accepted")
	}
}
