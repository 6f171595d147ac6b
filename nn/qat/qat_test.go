package qat

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

func qatQConfig(t *testing.T, engine string) *quant.QConfig {
	t.Helper()
	qc, err := quant.DefaultQATQConfig(engine)
	if err != nil {
		t.Fatal(err)
	}
	return qc
}

// weightedSum returns sum(y * r) for fixed random r, a loss whose gradient
// is r.
func weightedSum(y *tensor.Tensor, seed uint64) *tensor.Tensor {
	r := tensor.Randn(tensor.NewRNG(seed), y.Shape()...)
	return ops.SumAll(ops.Mul(y, r))
}

// gradsOf runs backward from loss and returns clones of the gradients of
// params, then clears them.
func gradsOf(t *testing.T, loss *tensor.Tensor, params ...*tensor.Tensor) []*tensor.Tensor {
	t.Helper()
	if err := autograd.Backward(loss, nil); err != nil {
		t.Fatal(err)
	}
	out := make([]*tensor.Tensor, len(params))
	for i, p := range params {
		if p.Grad() == nil {
			t.Fatalf("parameter %d got no gradient", i)
		}
		out[i] = p.Grad().Clone()
		p.SetGrad(nil)
	}
	return out
}

func sameBits(a, b *tensor.Tensor) bool {
	if !tensor.SameShape(a.Shape(), b.Shape()) {
		return false
	}
	x, y := a.F32(), b.F32()
	for i := range x {
		if math.Float32bits(x[i]) != math.Float32bits(y[i]) {
			return false
		}
	}
	return true
}

// With fake quantization off, the QAT versions of Linear, Conv1d, Conv2d,
// LinearReLU and ConvReLU1d/2d compute exactly the float module's output and
// gradients.
func TestFakeQuantOffEqualsFloat(t *testing.T) {
	g := tensor.NewRNG(11)
	qc := qatQConfig(t, "x86")
	lin, _ := nn.NewLinear(6, 4, nn.LinearOptions{RNG: g})
	c1, _ := nn.NewConv1d(3, 5, 3, nn.Conv1dOptions{Padding: 1, RNG: g})
	c2, _ := nn.NewConv2d(3, 4, nn.Pair(3), nn.Conv2dOptions{Stride: nn.Pair(2), RNG: g})
	lin2, _ := nn.NewLinear(6, 4, nn.LinearOptions{RNG: g})
	lr, _ := intrinsic.NewLinearReLU(lin2, nil)
	c3, _ := nn.NewConv1d(3, 2, 2, nn.Conv1dOptions{RNG: g})
	cr1, _ := intrinsic.NewConvReLU1d(c3, nil)
	c4, _ := nn.NewConv2d(3, 4, nn.Pair(1), nn.Conv2dOptions{NoBias: true, RNG: g})
	cr2, _ := intrinsic.NewConvReLU2d(c4, nil)
	cases := []struct {
		name   string
		float  nn.Layer
		x      *tensor.Tensor
		params []*tensor.Tensor
	}{
		{"Linear", lin, tensor.Randn(g, 5, 6), []*tensor.Tensor{lin.Weight, lin.Bias}},
		{"Conv1d", c1, tensor.Randn(g, 2, 3, 7), []*tensor.Tensor{c1.Weight, c1.Bias}},
		{"Conv2d", c2, tensor.Randn(g, 2, 3, 9, 8), []*tensor.Tensor{c2.Weight, c2.Bias}},
		{"LinearReLU", lr, tensor.Randn(g, 5, 6), []*tensor.Tensor{lin2.Weight, lin2.Bias}},
		{"ConvReLU1d", cr1, tensor.Randn(g, 2, 3, 7), []*tensor.Tensor{c3.Weight, c3.Bias}},
		{"ConvReLU2d", cr2, tensor.Randn(g, 2, 3, 5, 5), []*tensor.Tensor{c4.Weight}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := c.x.Clone().SetRequiresGrad(true)
			want := c.float.Forward(x)
			wantGrads := gradsOf(t, weightedSum(want, 5), append([]*tensor.Tensor{x}, c.params...)...)
			q, err := FromFloat(c.float, qc)
			if err != nil {
				t.Fatal(err)
			}
			if got := nn.TypeName(q); got != "qat."+c.name {
				t.Fatalf("type name %q", got)
			}
			EnableFakeQuant(q, false)
			got := q.Forward(x)
			if !sameBits(got, want) {
				t.Fatalf("output differs from the float module: max diff %g", tensor.MaxAbsDiff(got, want))
			}
			gotGrads := gradsOf(t, weightedSum(got, 5), append([]*tensor.Tensor{x}, c.params...)...)
			for i := range gotGrads {
				if !sameBits(gotGrads[i], wantGrads[i]) {
					t.Fatalf("gradient %d differs: max diff %g", i, tensor.MaxAbsDiff(gotGrads[i], wantGrads[i]))
				}
			}
			f, err := q.ToFloat()
			if err != nil {
				t.Fatal(err)
			}
			if nn.TypeName(f) != c.name {
				t.Fatalf("ToFloat gave %s", nn.TypeName(f))
			}
			if !sameBits(f.Forward(c.x), want) {
				t.Fatal("ToFloat module computes something else")
			}
		})
	}
}

// handSymmetricQParams computes per-channel symmetric qint8 qparams
// (-128..127) of w along axis 0, as PyTorch's _calculate_qparams:
// scale = max(-min(min,0), max(max,0)) / 127.5, at least float32 eps.
func handSymmetricQParams(w *tensor.Tensor) []float32 {
	n := w.Dim(0)
	per := w.Numel() / n
	scales := make([]float32, n)
	for c := 0; c < n; c++ {
		var lo, hi float32
		for _, v := range w.F32()[c*per : (c+1)*per] {
			lo, hi = min(lo, v), max(hi, v)
		}
		s := max(-lo, hi) / float32(127.5)
		scales[c] = max(s, float32(math.Nextafter32(1, 2)-1))
	}
	return scales
}

// handFakeQuant is x̂ = (clamp(rint(x*(1/s)), -128, 127))*s per output
// channel (zero point 0), written with plain loops.
func handFakeQuant(w *tensor.Tensor, scales []float32) *tensor.Tensor {
	out := w.Clone()
	n := w.Dim(0)
	per := w.Numel() / n
	d := out.F32()
	for i, v := range d {
		s := scales[i/per]
		inv := float32(1) / s
		q := float32(math.RoundToEven(float64(float32(v * inv))))
		q = min(max(q, -128), 127)
		d[i] = float32(q * s)
	}
	return out
}

func TestFakeQuantOnMatchesReference(t *testing.T) {
	g := tensor.NewRNG(21)
	qc := qatQConfig(t, "x86")
	lin, _ := nn.NewLinear(9, 5, nn.LinearOptions{RNG: g})
	conv, _ := nn.NewConv2d(3, 6, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: g})
	for _, name := range []string{"Linear", "Conv2d"} {
		t.Run(name, func(t *testing.T) {
			var q Module
			var x, w, b *tensor.Tensor
			var ref func(w *tensor.Tensor) *tensor.Tensor
			if name == "Linear" {
				m, err := LinearFromFloat(lin, qc)
				if err != nil {
					t.Fatal(err)
				}
				q, x, w, b = m, tensor.Randn(g, 4, 9), lin.Weight, lin.Bias
				ref = func(w *tensor.Tensor) *tensor.Tensor { return ops.Linear(x, w, b) }
			} else {
				m, err := Conv2dFromFloat(conv, qc)
				if err != nil {
					t.Fatal(err)
				}
				q, x, w, b = m, tensor.Randn(g, 2, 3, 6, 5), conv.Weight, conv.Bias
				ref = func(w *tensor.Tensor) *tensor.Tensor { return ops.Conv2d(x, w, b, conv.Attrs()) }
			}
			scales := handSymmetricQParams(w)
			got := q.Forward(x)
			qp, err := q.WeightFakeQuantizer().CalculateQParams()
			if err != nil {
				t.Fatal(err)
			}
			if !qp.Scheme.PerChannel() || qp.Axis != 0 || qp.QuantMin != -128 || qp.QuantMax != 127 {
				t.Fatalf("weight qparams %+v, want per-channel axis 0 over -128..127", qp)
			}
			for c, s := range scales {
				if qp.Scale[c] != s || qp.ZeroPoint[c] != 0 {
					t.Fatalf("channel %d: scale %v zp %d, want %v 0", c, qp.Scale[c], qp.ZeroPoint[c], s)
				}
			}
			fq := handFakeQuant(w, scales)
			if want := ref(fq); !sameBits(got, want) {
				t.Fatalf("output differs from the layer on the hand fake-quantized weight: %g", tensor.MaxAbsDiff(got, want))
			}
			if want := ref(ops.FakeQuantizePerChannel(w, scales, make([]int32, len(scales)), 0, -128, 127)); !sameBits(got, want) {
				t.Fatal("output differs from ops.FakeQuantizePerChannel semantics")
			}
			if sameBits(got, ref(w)) {
				t.Fatal("fake quantization changed nothing")
			}
		})
	}
}

// Gradients reach the weight through the straight-through estimator: with
// the weight well inside the quantized range, dL/dW of the QAT layer equals
// the float layer's gradient taken at the fake-quantized weight.
func TestSTEGradient(t *testing.T) {
	g := tensor.NewRNG(5)
	lin, _ := nn.NewLinear(5, 3, nn.LinearOptions{RNG: g})
	q, err := LinearFromFloat(lin, qatQConfig(t, "qnnpack"))
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.Randn(g, 4, 5)
	gq := gradsOf(t, weightedSum(q.Forward(x), 3), lin.Weight)[0]
	qp, _ := q.WeightFakeQuant.CalculateQParams()
	wq := handFakeQuant(lin.Weight, []float32{qp.Scale[0], qp.Scale[0], qp.Scale[0]}).SetRequiresGrad(true)
	want := gradsOf(t, weightedSum(ops.Linear(x, wq, lin.Bias), 3), wq)[0]
	if !sameBits(gq, want) {
		t.Fatalf("STE weight gradient differs: %g", tensor.MaxAbsDiff(gq, want))
	}
}

func TestFromFloatErrors(t *testing.T) {
	lin, _ := nn.NewLinear(2, 2, nn.LinearOptions{})
	if _, err := LinearFromFloat(lin, nil); err == nil {
		t.Error("no qconfig accepted")
	}
	if _, err := FromFloat(lin, &quant.QConfig{Name: "no weight"}); err == nil {
		t.Error("qconfig without weight factory accepted")
	}
	if _, err := FromFloat(nn.NewReLU(), qatQConfig(t, "x86")); err == nil {
		t.Error("ReLU has no QAT module")
	}
	lin.QConfig = qatQConfig(t, "x86")
	m, err := FromFloat(lin, nil)
	if err != nil {
		t.Fatalf("module's own qconfig not used: %v", err)
	}
	if m.ModuleBase().QConfig != lin.QConfig {
		t.Error("QAT module does not carry the qconfig")
	}
	conv, _ := nn.NewConv2d(2, 3, nn.Pair(1), nn.Conv2dOptions{})
	bn, _ := nn.NewBatchNorm2d(3, nn.BatchNormOptions{NoTrackRunningStats: true})
	fused, _ := intrinsic.NewConvBn2d(conv, bn)
	if _, err := ConvBn2dFromFloat(fused, qatQConfig(t, "x86")); err == nil {
		t.Error("batch norm without running statistics accepted")
	}
}
