package qat

import (
	"fmt"
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/intrinsic"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// randomBN gives bn non-trivial running statistics and affine parameters.
func randomBN(g *tensor.RNG, bn *nn.BatchNorm) {
	copy(bn.RunningMean.F32(), tensor.Randn(g, bn.NumFeatures).F32())
	copy(bn.RunningVar.F32(), tensor.RandUniform(g, 0.2, 3, bn.NumFeatures).F32())
	copy(bn.Weight.F32(), tensor.RandUniform(g, 0.5, 2, bn.NumFeatures).F32())
	copy(bn.Bias.F32(), tensor.Randn(g, bn.NumFeatures).F32())
}

// makeConvBn2d builds the same float Conv2d+BatchNorm2d for the same seed.
func makeConvBn2d(seed uint64) *intrinsic.ConvBn2d {
	g := tensor.NewRNG(seed)
	conv, _ := nn.NewConv2d(3, 4, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: g})
	bn, _ := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	randomBN(g, &bn.BatchNorm)
	m, _ := intrinsic.NewConvBn2d(conv, bn)
	return m
}

// With fake quantization off, the simulated folding computes what the float
// conv followed by batch norm computes, in training mode (batch statistics,
// running statistics updated alike) and in eval mode, up to float32
// rounding of the scale and unscale.
func TestConvBnFakeQuantOffMatchesFloat(t *testing.T) {
	float := makeConvBn2d(3)
	q, err := ConvBn2dFromFloat(makeConvBn2d(3), qatQConfig(t, "x86"))
	if err != nil {
		t.Fatal(err)
	}
	EnableFakeQuant(q, false)
	x := tensor.Randn(tensor.NewRNG(9), 4, 3, 6, 5)
	for step := 0; step < 3; step++ {
		if d := tensor.MaxAbsDiff(q.Forward(x), float.Forward(x)); d > 1e-4 {
			t.Fatalf("training step %d: max diff %g", step, d)
		}
	}
	if d := tensor.MaxAbsDiff(q.BN.RunningMean, float.BN.RunningMean); d > 1e-5 {
		t.Fatalf("running means differ by %g", d)
	}
	if d := tensor.MaxAbsDiff(q.BN.RunningVar, float.BN.RunningVar); d > 1e-5 {
		t.Fatalf("running variances differ by %g", d)
	}
	if q.BN.NumBatchesTracked.I64()[0] != 3 {
		t.Fatalf("num_batches_tracked %d, want 3", q.BN.NumBatchesTracked.I64()[0])
	}
	nn.Eval(q)
	nn.Eval(float)
	want := float.Forward(x)
	if d := tensor.MaxAbsDiff(q.Forward(x), want); d > 1e-4 {
		t.Fatalf("eval: max diff %g", d)
	}
	// ToFloat folds the batch norm: the float conv alone gives the same.
	f, err := q.ToFloat()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*nn.Conv2d); !ok || f.ModuleBase().Training() {
		t.Fatalf("ToFloat gave %s (training %v), want an eval Conv2d", nn.TypeName(f), f.ModuleBase().Training())
	}
	if d := tensor.MaxAbsDiff(f.Forward(x), want); d > 1e-4 {
		t.Fatalf("ToFloat: max diff %g", d)
	}
	w, b, err := q.ConvertWeights()
	if err != nil {
		t.Fatal(err)
	}
	folded, _ := intrinsic.FoldConvBN2d(float.Conv, float.BN)
	if !sameBits(w, folded.Weight) || !sameBits(b, folded.Bias) {
		t.Fatal("ConvertWeights differs from FoldConvBN2d")
	}
}

// With fake quantization on and the batch norm frozen, the output is
// PyTorch's _forward_approximate computed by hand: the weight scaled by
// gamma/sqrt(var+eps) per output channel, fake-quantized per channel,
// convolved without bias, unscaled, biased, and normalized with the running
// statistics (which stay unchanged).
func TestConvBnFrozenFakeQuantByHand(t *testing.T) {
	fused := makeConvBn2d(8)
	conv, bn := fused.Conv, fused.BN
	q, err := ConvBn2dFromFloat(fused, qatQConfig(t, "x86"))
	if err != nil {
		t.Fatal(err)
	}
	FreezeBNStats(q)
	if !q.BNStatsFrozen() {
		t.Fatal("FreezeBNStats did not freeze")
	}
	rm, rv := bn.RunningMean.Clone(), bn.RunningVar.Clone()
	x := tensor.Randn(tensor.NewRNG(2), 2, 3, 5, 5)
	got := q.Forward(x)
	if !sameBits(bn.RunningMean, rm) || !sameBits(bn.RunningVar, rv) || bn.NumBatchesTracked.I64()[0] != 0 {
		t.Fatal("frozen batch norm statistics changed")
	}

	out := conv.OutChannels
	scale := make([]float32, out)
	for c := range scale {
		scale[c] = bn.Weight.F32()[c] / float32(math.Sqrt(float64(rv.F32()[c]+bn.Eps)))
	}
	ws := conv.Weight.Clone()
	per := ws.Numel() / out
	for i := range ws.F32() {
		ws.F32()[i] *= scale[i/per]
	}
	scales := handSymmetricQParams(ws)
	qp, err := q.WeightFakeQuantizer().CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	for c := range scales {
		if qp.Scale[c] != scales[c] {
			t.Fatalf("channel %d: observed scale %v of the scaled weight, want %v", c, qp.Scale[c], scales[c])
		}
	}
	y := ops.Conv2d(x, handFakeQuant(ws, scales), nil, conv.Attrs())
	hw := y.Dim(2) * y.Dim(3)
	want := y.F32()
	for i := range want {
		c := (i / hw) % out
		v := want[i]/scale[c] + conv.Bias.F32()[c]
		want[i] = (v-rm.F32()[c])/float32(math.Sqrt(float64(rv.F32()[c]+bn.Eps)))*bn.Weight.F32()[c] + bn.Bias.F32()[c]
	}
	if d := tensor.MaxAbsDiff(got, y); d > 1e-4 { // y now holds the hand result
		t.Fatalf("max diff from the hand computation %g", d)
	}

	UpdateBNStats(q)
	q.Forward(x)
	if sameBits(bn.RunningMean, rm) || bn.NumBatchesTracked.I64()[0] != 1 {
		t.Fatal("UpdateBNStats did not resume statistics updates")
	}
}

// Gradients of the simulated folding (fake quantization off) agree with
// finite differences, for x, the weight, the bias and the batch norm's
// affine parameters, with frozen and with live batch statistics.
func TestConvBnGradcheck(t *testing.T) {
	for _, frozen := range []bool{true, false} {
		t.Run(fmt.Sprintf("conv2d/frozen=%v", frozen), func(t *testing.T) {
			q, err := ConvBn2dFromFloat(makeConvBn2d(4), qatQConfig(t, "x86"))
			if err != nil {
				t.Fatal(err)
			}
			EnableFakeQuant(q, false)
			if frozen {
				FreezeBNStats(q)
			}
			x := tensor.Randn(tensor.NewRNG(6), 2, 3, 4, 4).SetRequiresGrad(true)
			f := func(in []*tensor.Tensor) *tensor.Tensor { return q.Forward(in[0]) }
			if err := gradcheck.Check(f, []*tensor.Tensor{x, q.Weight, q.Bias, q.BN.Weight, q.BN.Bias}, gradcheck.Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("linearbn1d", func(t *testing.T) {
		g := tensor.NewRNG(12)
		lin, _ := nn.NewLinear(5, 3, nn.LinearOptions{RNG: g})
		bn, _ := nn.NewBatchNorm1d(3, nn.BatchNormOptions{})
		randomBN(g, &bn.BatchNorm)
		fused, _ := intrinsic.NewLinearBn1d(lin, bn)
		q, err := LinearBn1dFromFloat(fused, qatQConfig(t, "x86"))
		if err != nil {
			t.Fatal(err)
		}
		EnableFakeQuant(q, false)
		FreezeBNStats(q)
		x := tensor.Randn(g, 4, 5).SetRequiresGrad(true)
		f := func(in []*tensor.Tensor) *tensor.Tensor { return q.Forward(in[0]) }
		if err := gradcheck.Check(f, []*tensor.Tensor{x, q.Weight, q.Bias, q.BN.Weight}, gradcheck.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("convbn1d", func(t *testing.T) {
		g := tensor.NewRNG(13)
		conv, _ := nn.NewConv1d(2, 3, 3, nn.Conv1dOptions{RNG: g})
		bn, _ := nn.NewBatchNorm1d(3, nn.BatchNormOptions{})
		randomBN(g, &bn.BatchNorm)
		fused, _ := intrinsic.NewConvBn1d(conv, bn)
		q, err := ConvBn1dFromFloat(fused, qatQConfig(t, "x86"))
		if err != nil {
			t.Fatal(err)
		}
		EnableFakeQuant(q, false)
		FreezeBNStats(q)
		x := tensor.Randn(g, 2, 2, 6).SetRequiresGrad(true)
		f := func(in []*tensor.Tensor) *tensor.Tensor { return q.Forward(in[0]) }
		if err := gradcheck.Check(f, []*tensor.Tensor{x, q.Weight, q.BN.Weight}, gradcheck.Options{}); err != nil {
			t.Fatal(err)
		}
	})
}

// A few SGD steps of a QAT ConvBnReLU2d (fake quantization on, gradients
// through the straight-through estimator) reduce a regression loss.
func TestConvBnReLUTrainingReducesLoss(t *testing.T) {
	g := tensor.NewRNG(17)
	conv, _ := nn.NewConv2d(3, 4, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: g})
	bn, _ := nn.NewBatchNorm2d(4, nn.BatchNormOptions{})
	fused, _ := intrinsic.NewConvBnReLU2d(conv, bn, nil)
	q, err := ConvBnReLU2dFromFloat(fused, qatQConfig(t, "x86"))
	if err != nil {
		t.Fatal(err)
	}
	opt, err := nn.NewSGD(nn.Parameters(q), nn.SGDOptions{LR: 0.1, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	x := tensor.Randn(g, 8, 3, 5, 5)
	target := tensor.Rand(g, 8, 4, 5, 5)
	var first, last float64
	for step := 0; step < 25; step++ {
		loss := ops.MSELoss(q.Forward(x), target, "mean")
		if step == 0 {
			first = loss.Item()
		}
		last = loss.Item()
		opt.ZeroGrad()
		gradsOfLoss(t, loss)
		opt.Step()
	}
	if !(last < 0.7*first) {
		t.Fatalf("loss went from %g to %g", first, last)
	}
	if q.BN.NumBatchesTracked.I64()[0] != 25 {
		t.Fatal("batch norm statistics were not updated during training")
	}
	keys := fmt.Sprint(nn.StateDictKeys(q))
	if want := "[weight bias bn.weight bn.bias bn.running_mean bn.running_var bn.num_batches_tracked]"; keys != want {
		t.Fatalf("state dict keys %s, want PyTorch's %s", keys, want)
	}
	f, err := q.ToFloat()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(*intrinsic.ConvReLU2d); !ok {
		t.Fatalf("ToFloat gave %s, want ConvReLU2d", nn.TypeName(f))
	}
}

// Disabling observers freezes the weight qparams while training goes on.
func TestEnableObserver(t *testing.T) {
	g := tensor.NewRNG(23)
	lin, _ := nn.NewLinear(4, 3, nn.LinearOptions{RNG: g})
	q, err := LinearFromFloat(lin, qatQConfig(t, "x86"))
	if err != nil {
		t.Fatal(err)
	}
	root := nn.NewSequential(q, nn.NewReLU())
	x := tensor.Randn(g, 2, 4)
	root.Forward(x)
	before, _ := q.WeightFakeQuant.CalculateQParams()
	EnableObserver(root, false)
	tensor.ScaleInPlace(lin.Weight, 3)
	root.Forward(x)
	after, _ := q.WeightFakeQuant.CalculateQParams()
	for c := range before.Scale {
		if before.Scale[c] != after.Scale[c] {
			t.Fatal("qparams changed with the observer disabled")
		}
	}
	EnableObserver(root, true)
	root.Forward(x)
	again, _ := q.WeightFakeQuant.CalculateQParams()
	if again.Scale[0] == before.Scale[0] {
		t.Fatal("qparams did not follow the weights with the observer enabled")
	}
}

func gradsOfLoss(t *testing.T, loss *tensor.Tensor) {
	t.Helper()
	if err := autograd.Backward(loss, nil); err != nil {
		t.Fatal(err)
	}
}

// The 1-D and linear Conv-BN modules match their float fused modules with
// fake quantization off, in training and eval mode, and ToFloat folds the
// batch norm.
func TestBnVariantsMatchFloat(t *testing.T) {
	build := func(kind string, seed uint64) (nn.Layer, *nn.BatchNorm) {
		g := tensor.NewRNG(seed)
		switch kind {
		case "ConvBn1d", "ConvBnReLU1d":
			conv, _ := nn.NewConv1d(3, 4, 3, nn.Conv1dOptions{Padding: 1, RNG: g})
			bn, _ := nn.NewBatchNorm1d(4, nn.BatchNormOptions{})
			randomBN(g, &bn.BatchNorm)
			if kind == "ConvBn1d" {
				m, _ := intrinsic.NewConvBn1d(conv, bn)
				return m, &bn.BatchNorm
			}
			m, _ := intrinsic.NewConvBnReLU1d(conv, bn, nil)
			return m, &bn.BatchNorm
		default:
			lin, _ := nn.NewLinear(5, 4, nn.LinearOptions{RNG: g})
			bn, _ := nn.NewBatchNorm1d(4, nn.BatchNormOptions{})
			randomBN(g, &bn.BatchNorm)
			m, _ := intrinsic.NewLinearBn1d(lin, bn)
			return m, &bn.BatchNorm
		}
	}
	for _, kind := range []string{"ConvBn1d", "ConvBnReLU1d", "LinearBn1d"} {
		t.Run(kind, func(t *testing.T) {
			float, floatBN := build(kind, 31)
			other, qBN := build(kind, 31)
			q, err := FromFloat(other, qatQConfig(t, "x86"))
			if err != nil {
				t.Fatal(err)
			}
			if nn.TypeName(q) != "qat."+kind {
				t.Fatalf("type %s", nn.TypeName(q))
			}
			EnableFakeQuant(q, false)
			x := tensor.Randn(tensor.NewRNG(4), 6, 3, 7)
			if kind == "LinearBn1d" {
				x = tensor.Randn(tensor.NewRNG(4), 6, 5)
			}
			for step := 0; step < 2; step++ {
				if d := tensor.MaxAbsDiff(q.Forward(x), float.Forward(x)); d > 1e-4 {
					t.Fatalf("training: max diff %g", d)
				}
			}
			if d := tensor.MaxAbsDiff(qBN.RunningVar, floatBN.RunningVar); d > 1e-5 {
				t.Fatalf("running variances differ by %g", d)
			}
			nn.Eval(q)
			nn.Eval(float)
			want := float.Forward(x)
			if d := tensor.MaxAbsDiff(q.Forward(x), want); d > 1e-4 {
				t.Fatalf("eval: max diff %g", d)
			}
			f, err := q.ToFloat()
			if err != nil {
				t.Fatal(err)
			}
			if d := tensor.MaxAbsDiff(f.Forward(x), want); d > 1e-4 {
				t.Fatalf("ToFloat (%s): max diff %g", nn.TypeName(f), d)
			}
		})
	}
}
