package ops

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

func TestCrossEntropyHand(t *testing.T) {
	y := CrossEntropy(tensor.Zeros(1, 2), tensor.FromInt64([]int64{0}), "mean", 0)
	nnopCheckShape(t, "CE", y)
	nnopCheckClose(t, "CE [0,0]", y.F32(), []float64{math.Ln2}, 1e-7)
	// Unbatched [C] logits with a one-hot probability target.
	lse := math.Log(math.E + math.E*math.E + math.E*math.E*math.E)
	y = CrossEntropy(tensor.FromFloat32([]float32{1, 2, 3}), tensor.FromFloat32([]float32{0, 0, 1}), "none", 0)
	nnopCheckShape(t, "CE unbatched", y)
	nnopCheckClose(t, "CE unbatched", y.F32(), []float64{lse - 3}, 1e-6)
	// The same with a 0-dimensional class-index target.
	y = CrossEntropy(tensor.FromFloat32([]float32{1, 2, 3}), tensor.FromInt64([]int64{2}, 1).Reshape(), "none", 0)
	nnopCheckShape(t, "CE unbatched index", y)
	nnopCheckClose(t, "CE unbatched index", y.F32(), []float64{lse - 3}, 1e-6)
	// Label smoothing 0.3 over 3 classes: 0.7*nll + 0.1*sum(-logp).
	y = CrossEntropy(tensor.FromFloat32([]float32{1, 2, 3}, 1, 3), tensor.FromInt64([]int64{0}), "sum", 0.3)
	want := 0.7*(lse-1) + 0.1*(3*lse-6)
	nnopCheckClose(t, "CE smoothing", y.F32(), []float64{want}, 1e-6)
}

func TestCrossEntropyTorch(t *testing.T) {
	// x = seq(24, 0.3, 3).reshape(3,4,2), t = [[0,3],[-100,1],[2,2]],
	// F.cross_entropy(x, t, reduction=r, label_smoothing=0.1).
	ceMean := []float64{1.966893196105957}
	ceSum := []float64{9.834465980529785}
	ceNone := []float64{2.3200082778930664, 5.394344329833984, 0.0, 0.4440320134162903, 0.44080737233161926, 1.2352739572525024}
	ceMeanGrad := []float64{-0.16408173739910126, 0.11798860877752304, 0.16385765373706818, 0.06974396109580994, 0.004764991346746683, -0.003428382333368063, -0.0045409188605844975, -0.18430417776107788, 0.0, 0.017016379162669182, 0.0, -0.016785940155386925, 0.0, 0.004313721787184477, 0.0, -0.004544174764305353, -0.004372892901301384, -0.0016994320321828127, 0.018153412267565727, 0.12226458638906479, -0.017658812925219536, -0.11699056625366211, 0.0038782849442213774, -0.0035745855420827866}
	x := nnopSeq(0.3, 3, 3, 4, 2).SetRequiresGrad(true)
	tg := tensor.FromInt64([]int64{0, 3, -100, 1, 2, 2}, 3, 2)
	nnopCheckClose(t, "CE sum", CrossEntropy(x, tg, "sum", 0.1).F32(), ceSum, 1e-6)
	none := CrossEntropy(x, tg, "none", 0.1)
	nnopCheckShape(t, "CE none", none, 3, 2)
	nnopCheckClose(t, "CE none", none.F32(), ceNone, 1e-6)
	y := CrossEntropy(x, tg, "mean", 0.1)
	nnopCheckClose(t, "CE mean", y.F32(), ceMean, 1e-6)
	if err := nnopBackward(y); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "CE mean grad", x.Grad().F32(), ceMeanGrad, 1e-6)
	for _, red := range []string{"mean", "sum", "none"} {
		nnopGradcheck(t, "CE "+red, func(in []*tensor.Tensor) *tensor.Tensor { return CrossEntropy(in[0], tg, red, 0.1) }, x)
	}

	// Probability targets: x2 = seq(6, 0.9, 2).reshape(2,3),
	// tp = softmax(seq(6, 2.0, 1.5).reshape(2,3), 1),
	// F.cross_entropy(x2, tp, label_smoothing=0.2), gradients for both.
	x2 := nnopSeq(0.9, 2, 2, 3).SetRequiresGrad(true)
	tp := tensor.FromFloat32(nnopSoftmaxRows(nnopSeq(2.0, 1.5, 2, 3).F32(), 3), 2, 3).SetRequiresGrad(true)
	y = CrossEntropy(x2, tp, "mean", 0.2)
	nnopCheckClose(t, "CE prob", y.F32(), []float64{1.3291569948196411}, 1e-6)
	if err := nnopBackward(y); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "CE prob dx", x2.Grad().F32(), []float64{-0.1302046775817871, 0.07183465361595154, 0.05836997926235199, 0.19503670930862427, -0.04204970598220825, -0.15298697352409363}, 1e-5)
	nnopCheckClose(t, "CE prob dt", tp.Grad().F32(), []float64{0.4975019097328186, 0.3245045840740204, 0.5275992751121521, 0.12702445685863495, 0.6637893915176392, 1.00120210647583}, 1e-5)
	nnopGradcheck(t, "CE prob", func(in []*tensor.Tensor) *tensor.Tensor { return CrossEntropy(in[0], in[1], "none", 0.2) }, x2, tp)
}

// nnopSoftmaxRows is a naive row softmax in float64.
func nnopSoftmaxRows(v []float32, c int) []float32 {
	out := make([]float32, len(v))
	for r := 0; r < len(v)/c; r++ {
		var s float64
		for _, x := range v[r*c : (r+1)*c] {
			s += math.Exp(float64(x))
		}
		for j, x := range v[r*c : (r+1)*c] {
			out[r*c+j] = float32(math.Exp(float64(x)) / s)
		}
	}
	return out
}

func TestCrossEntropyIgnore(t *testing.T) {
	x := nnopRandT(3, 2, 3)
	all := tensor.FromInt64([]int64{-100, -100})
	if y := CrossEntropy(x, all, "mean", 0); !math.IsNaN(y.Item()) {
		t.Fatalf("all ignored mean = %v, want NaN as torch", y.Item())
	}
	if y := CrossEntropy(x, all, "sum", 0); y.Item() != 0 {
		t.Fatalf("all ignored sum = %v, want 0", y.Item())
	}
	// A custom ignore index that is a valid class.
	tg := tensor.FromInt64([]int64{1, 2})
	a := CrossEntropyAttrs{UseIgnoreIndex: true, IgnoreIndex: 1}
	got := CrossEntropyWith(x, tg, a).Item()
	want := CrossEntropy(tensor.FromFloat32(x.F32()[3:], 1, 3), tensor.FromInt64([]int64{2}), "mean", 0).Item()
	if math.Abs(got-want) > 1e-6 {
		t.Fatalf("ignore index 1: %v, want %v", got, want)
	}
	nnopGradcheck(t, "CE ignore", func(in []*tensor.Tensor) *tensor.Tensor { return CrossEntropyWith(in[0], tg, a) }, x)
	nnopPanics(t, "out of range", func() { CrossEntropyWith(x, all, CrossEntropyAttrs{}) })
	nnopPanics(t, "out of range", func() { CrossEntropy(x, tensor.FromInt64([]int64{0, 3}), "mean", 0) })
	nnopPanics(t, "unknown reduction", func() { CrossEntropy(x, tg, "avg", 0) })
	nnopPanics(t, "does not fit", func() { CrossEntropy(x, tensor.FromInt64([]int64{0}), "mean", 0) })
}

func TestNLLLoss(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, -2, -3, -4, -5, -6}, 3, 2).SetRequiresGrad(true)
	tg := tensor.FromInt64([]int64{1, -100, 0})
	nnopCheckClose(t, "NLL mean", NLLLoss(x, tg, "mean").F32(), []float64{3.5}, 1e-7)
	nnopCheckClose(t, "NLL sum", NLLLoss(x, tg, "sum").F32(), []float64{7}, 1e-7)
	nnopCheckClose(t, "NLL none", NLLLoss(x, tg, "none").F32(), []float64{2, 0, 5}, 1e-7)
	y := NLLLoss(x, tg, "mean")
	if err := nnopBackward(y); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "NLL grad", x.Grad().F32(), []float64{0, -0.5, 0, 0, -0.5, 0}, 1e-7)
	x3 := nnopRandT(4, 2, 3, 2)
	t3 := tensor.FromInt64([]int64{0, 2, 1, -100}, 2, 2)
	nnopGradcheck(t, "NLL spatial", func(in []*tensor.Tensor) *tensor.Tensor { return NLLLoss(in[0], t3, "none") }, x3)
}

func TestMSELoss(t *testing.T) {
	a := tensor.FromFloat32([]float32{1, 2, 3}).SetRequiresGrad(true)
	b := tensor.FromFloat32([]float32{1, 0, 0}).SetRequiresGrad(true)
	nnopCheckClose(t, "MSE none", MSELoss(a, b, "none").F32(), []float64{0, 4, 9}, 0)
	nnopCheckClose(t, "MSE sum", MSELoss(a, b, "sum").F32(), []float64{13}, 0)
	y := MSELoss(a, b, "mean")
	nnopCheckClose(t, "MSE mean", y.F32(), []float64{13.0 / 3}, 1e-7)
	if err := nnopBackward(y); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "MSE da", a.Grad().F32(), []float64{0, 4.0 / 3, 2}, 1e-7)
	nnopCheckClose(t, "MSE db", b.Grad().F32(), []float64{0, -4.0 / 3, -2}, 1e-7)
	for _, red := range []string{"mean", "sum", "none"} {
		nnopGradcheck(t, "MSE "+red, func(in []*tensor.Tensor) *tensor.Tensor { return MSELoss(in[0], in[1], red) }, nnopRandT(1, 2, 3), nnopRandT(2, 2, 3))
	}
	nnopPanics(t, "differ", func() { MSELoss(tensor.Zeros(2), tensor.Zeros(3), "mean") })
}

func TestBCEWithLogits(t *testing.T) {
	// xb = seq(6, 0.2, 4), yb = [0,1,0.3,1,0,0.5],
	// F.binary_cross_entropy_with_logits(xb, yb, reduction=r).
	x := nnopSeq(0.2, 4, 6).SetRequiresGrad(true)
	tg := tensor.FromFloat32([]float32{0, 1, 0.3, 1, 0, 0.5}).SetRequiresGrad(true)
	nnopCheckClose(t, "BCE none", BCEWithLogits(x, tg, "none").F32(), []float64{1.167431116104126, 0.04265076667070389, 2.816986560821533, 0.049408793449401855, 1.0146989822387695, 1.1730995178222656}, 1e-6)
	y := BCEWithLogits(x, tg, "mean")
	nnopCheckClose(t, "BCE mean", y.F32(), []float64{1.0440459251403809}, 1e-6)
	if err := nnopBackward(y); err != nil {
		t.Fatal(err)
	}
	nnopCheckClose(t, "BCE dx", x.Grad().F32(), []float64{0.11480579525232315, -0.006959001068025827, 0.1136639416217804, -0.008034676313400269, 0.10624808073043823, -0.06546153128147125}, 1e-6)
	nnopCheckClose(t, "BCE dy", tg.Grad().F32(), []float64{-0.13244621455669403, -0.5222179293632507, -0.666382372379303, -0.49713680148124695, -0.09408000111579895, 0.3532240688800812}, 1e-6)
	nnopGradcheck(t, "BCE", func(in []*tensor.Tensor) *tensor.Tensor { return BCEWithLogits(in[0], in[1], "sum") }, nnopRandT(5, 2, 3), tensor.Rand(tensor.NewRNG(6), 2, 3).SetRequiresGrad(true))
	// Large logits stay finite: loss(100, 0) = 100, loss(-100, 0) = log1p(e^-100).
	big := BCEWithLogits(tensor.FromFloat32([]float32{100, -100}), tensor.Zeros(2), "none")
	nnopCheckClose(t, "BCE extremes", big.F32(), []float64{100, math.Exp(-100)}, 1e-7)
}
