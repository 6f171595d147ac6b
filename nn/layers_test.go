package nn

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func vals(t *testing.T, name string, got *tensor.Tensor, shape []int, want []float64, tol float64) {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape(), shape)
	}
	g := got.Float64s()
	for i := range want {
		if math.Abs(g[i]-want[i]) > tol || math.IsNaN(g[i]) {
			t.Errorf("%s[%d] = %g, want %g", name, i, g[i], want[i])
		}
	}
}

func inBound(t *testing.T, name string, x *tensor.Tensor, bound float64) {
	t.Helper()
	maxAbs := 0.0
	for _, v := range x.F32() {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	// Values fill the range: the largest is within 10% of the bound.
	if maxAbs > bound || (x.Numel() >= 100 && maxAbs < 0.9*bound) {
		t.Errorf("%s: max |value| %g for bound %g", name, maxAbs, bound)
	}
}

func TestLinear(t *testing.T) {
	l := must(NewLinear(2, 3, LinearOptions{}))
	copy(l.Weight.F32(), []float32{1, 2, 3, 4, 5, 6})
	copy(l.Bias.F32(), []float32{0.5, -1, 0})
	y := l.Forward(tensor.FromFloat32([]float32{1, -1, 2, 0.5}, 2, 2))
	vals(t, "linear", y, []int{2, 3}, []float64{-0.5, -2, -1, 3.5, 7, 13}, 0)
	// Initialization bounds: kaiming_uniform(a=sqrt(5)) gives 1/sqrt(fan_in)
	// for the weight, as for the bias.
	big := must(NewLinear(400, 50, LinearOptions{RNG: tensor.NewRNG(1)}))
	inBound(t, "linear weight", big.Weight, 1/math.Sqrt(400))
	inBound(t, "linear bias", big.Bias, 1/math.Sqrt(400))
	nb := must(NewLinear(2, 2, LinearOptions{NoBias: true}))
	if nb.Bias != nil || len(NamedParameters(nb)) != 1 {
		t.Error("NoBias kept a bias")
	}
	// Same RNG seed, same weights; the global generator follows ManualSeed.
	a, b := must(NewLinear(3, 3, LinearOptions{RNG: tensor.NewRNG(5)})), must(NewLinear(3, 3, LinearOptions{RNG: tensor.NewRNG(5)}))
	if tensor.MaxAbsDiff(a.Weight, b.Weight) != 0 {
		t.Error("seeded init not reproducible")
	}
	ManualSeed(3)
	a = must(NewLinear(3, 3, LinearOptions{}))
	ManualSeed(3)
	b = must(NewLinear(3, 3, LinearOptions{}))
	c := must(NewLinear(3, 3, LinearOptions{}))
	if tensor.MaxAbsDiff(a.Weight, b.Weight) != 0 || tensor.MaxAbsDiff(b.Weight, c.Weight) == 0 {
		t.Error("ManualSeed does not reproduce, or successive layers share weights")
	}
	if _, err := NewLinear(-1, 2, LinearOptions{}); err == nil {
		t.Error("negative size accepted")
	}
}

func TestConvLayers(t *testing.T) {
	c := must(NewConv2d(1, 1, Pair(2), Conv2dOptions{Stride: Pair(1)}))
	copy(c.Weight.F32(), []float32{1, 0, 0, -1})
	c.Bias.F32()[0] = 0.5
	x := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 1, 1, 3, 3)
	// out[i][j] = x[i][j] - x[i+1][j+1] + 0.5 = -4 + 0.5.
	vals(t, "conv2d", c.Forward(x), []int{1, 1, 2, 2}, []float64{-3.5, -3.5, -3.5, -3.5}, 0)
	big := must(NewConv2d(16, 8, Pair(3), Conv2dOptions{Groups: 2, RNG: tensor.NewRNG(2)}))
	if !tensor.SameShape(big.Weight.Shape(), []int{8, 8, 3, 3}) {
		t.Errorf("grouped weight shape %v", big.Weight.Shape())
	}
	inBound(t, "conv weight", big.Weight, 1/math.Sqrt(8*9))
	inBound(t, "conv bias", big.Bias, 1/math.Sqrt(8*9))
	y := must(NewConv2d(16, 8, [2]int{3, 1}, Conv2dOptions{Stride: [2]int{2, 1}, Padding: [2]int{1, 0}})).Forward(tensor.Zeros(2, 16, 7, 5))
	if !tensor.SameShape(y.Shape(), []int{2, 8, 4, 5}) {
		t.Errorf("conv2d shape %v", y.Shape())
	}

	c1 := must(NewConv1d(1, 1, 3, Conv1dOptions{Padding: 1, NoBias: true}))
	copy(c1.Weight.F32(), []float32{1, 1, 1})
	vals(t, "conv1d", c1.Forward(tensor.FromFloat32([]float32{1, 2, 3, 4}, 1, 1, 4)), []int{1, 1, 4}, []float64{3, 6, 9, 7}, 0)

	ct := must(NewConvTranspose2d(1, 1, Pair(2), Conv2dOptions{Stride: Pair(2), NoBias: true}))
	copy(ct.Weight.F32(), []float32{1, 2, 3, 4})
	// Each input pixel stamps v*kernel into its own 2x2 block.
	vals(t, "convtranspose2d", ct.Forward(tensor.FromFloat32([]float32{1, 10}, 1, 1, 1, 2)), []int{1, 1, 2, 4},
		[]float64{1, 2, 10, 20, 3, 4, 30, 40}, 0)
	ctw := must(NewConvTranspose2d(4, 6, Pair(3), Conv2dOptions{Groups: 2, OutputPadding: Pair(1), Stride: Pair(2)}))
	if !tensor.SameShape(ctw.Weight.Shape(), []int{4, 3, 3, 3}) {
		t.Errorf("transposed weight shape %v", ctw.Weight.Shape())
	}
	inBound(t, "convtranspose bias", ctw.Bias, 1/math.Sqrt(3*9))
	if y := ctw.Forward(tensor.Zeros(1, 4, 3, 3)); !tensor.SameShape(y.Shape(), []int{1, 6, 8, 8}) {
		t.Errorf("convtranspose shape %v", y.Shape())
	}
	for _, err := range []error{
		func() error { _, err := NewConv2d(3, 4, Pair(3), Conv2dOptions{Groups: 2}); return err }(),
		func() error { _, err := NewConv2d(3, 4, Pair(0), Conv2dOptions{}); return err }(),
		func() error {
			_, err := NewConvTranspose2d(2, 2, Pair(3), Conv2dOptions{OutputPadding: Pair(1)})
			return err
		}(),
		func() error { _, err := NewConv1d(2, 2, 3, Conv1dOptions{Padding: -1}); return err }(),
	} {
		if err == nil {
			t.Error("invalid convolution accepted")
		}
	}
}

func TestBatchNorm(t *testing.T) {
	bn := must(NewBatchNorm1d(2, BatchNormOptions{}))
	if bn.Eps != 1e-5 || bn.Momentum != 0.1 || bn.Weight.F32()[0] != 1 || bn.RunningVar.F32()[1] != 1 {
		t.Fatal("defaults")
	}
	// Channel 0 values 1, 3 (mean 2, biased var 1, unbiased 2);
	// channel 1 values 0, 0.
	x := tensor.FromFloat32([]float32{1, 0, 3, 0}, 2, 2)
	y := bn.Forward(x)
	s := 1 / math.Sqrt(1+1e-5)
	vals(t, "bn train", y, []int{2, 2}, []float64{-s, 0, s, 0}, 1e-6)
	vals(t, "running_mean", bn.RunningMean, []int{2}, []float64{0.2, 0}, 1e-7)
	vals(t, "running_var", bn.RunningVar, []int{2}, []float64{0.9 + 0.1*2, 0.9}, 1e-7)
	if bn.NumBatchesTracked.I64()[0] != 1 {
		t.Error("num_batches_tracked not incremented")
	}
	Eval(bn)
	y = bn.Forward(x)
	vals(t, "bn eval", y, []int{2, 2}, []float64{(1 - 0.2) / math.Sqrt(1.1+1e-5), 0, (3 - 0.2) / math.Sqrt(1.1+1e-5), 0}, 1e-6)
	if bn.NumBatchesTracked.I64()[0] != 1 {
		t.Error("eval forward changed num_batches_tracked")
	}

	// Cumulative moving average: after two batches the running mean is the
	// plain average of the batch means.
	ca := must(NewBatchNorm2d(1, BatchNormOptions{CumulativeAverage: true}))
	ca.Forward(tensor.Full(2, 2, 1, 1, 1))
	ca.Forward(tensor.Full(4, 2, 1, 1, 1))
	vals(t, "cumulative mean", ca.RunningMean, []int{1}, []float64{3}, 1e-6)

	nt := must(NewBatchNorm2d(1, BatchNormOptions{NoTrackRunningStats: true, NoAffine: true}))
	Eval(nt)
	y = nt.Forward(tensor.FromFloat32([]float32{1, 3}, 2, 1, 1, 1))
	vals(t, "no running stats", y, []int{2, 1, 1, 1}, []float64{-s, s}, 1e-6)
	if len(StateDict(nt)) != 0 {
		t.Errorf("state dict %v", StateDictKeys(nt))
	}
	keys := StateDictKeys(must(NewBatchNorm2d(3, BatchNormOptions{})))
	want := []string{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}
	for i := range want {
		if keys[i] != want[i] {
			t.Errorf("BatchNorm state dict keys %v", keys)
			break
		}
	}
}

func TestLayerNormEmbeddingPoolsMisc(t *testing.T) {
	ln := must(NewLayerNorm([]int{2}, LayerNormOptions{}))
	copy(ln.Weight.F32(), []float32{2, 1})
	copy(ln.Bias.F32(), []float32{0, 1})
	s := 1 / math.Sqrt(1+1e-5)
	vals(t, "layernorm", ln.Forward(tensor.FromFloat32([]float32{1, 3}, 1, 2)), []int{1, 2}, []float64{-2 * s, 1 + s}, 1e-6)

	e := must(NewEmbedding(1000, 4, EmbeddingOptions{RNG: tensor.NewRNG(1)}))
	var sum, sq float64
	for _, v := range e.Weight.F32() {
		sum += float64(v)
		sq += float64(v) * float64(v)
	}
	n := float64(e.Weight.Numel())
	if mean, std := sum/n, math.Sqrt(sq/n-(sum/n)*(sum/n)); math.Abs(mean) > 0.05 || math.Abs(std-1) > 0.05 {
		t.Errorf("embedding init mean %g std %g, want N(0,1)", mean, std)
	}
	small := must(NewEmbedding(3, 2, EmbeddingOptions{}))
	copy(small.Weight.F32(), []float32{0, 1, 2, 3, 4, 5})
	vals(t, "embedding", small.Forward(tensor.FromInt64([]int64{2, 0, 2}, 3)), []int{3, 2}, []float64{4, 5, 0, 1, 4, 5}, 0)
	bag := must(NewEmbeddingBag(3, 2, EmbeddingOptions{Mode: "sum"}))
	copy(bag.Weight.F32(), []float32{0, 1, 2, 3, 4, 5})
	vals(t, "embeddingbag", bag.Forward(tensor.FromInt64([]int64{0, 1, 2, 2}), tensor.FromInt64([]int64{0, 3})),
		[]int{2, 2}, []float64{6, 9, 4, 5}, 0)
	mean := must(NewEmbeddingBag(3, 2, EmbeddingOptions{}))
	copy(mean.Weight.F32(), []float32{0, 1, 2, 3, 4, 5})
	vals(t, "embeddingbag 2-D mean", mean.Forward(tensor.FromInt64([]int64{0, 1, 2, 2}, 2, 2), nil), []int{2, 2}, []float64{1, 2, 4, 5}, 0)
	if _, err := NewEmbeddingBag(3, 2, EmbeddingOptions{Mode: "median"}); err == nil {
		t.Error("unknown mode accepted")
	}

	x := tensor.FromFloat32([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 1, 1, 4, 4)
	vals(t, "maxpool", must(NewMaxPool2d(Pair(2), PoolOptions{})).Forward(x), []int{1, 1, 2, 2}, []float64{6, 8, 14, 16}, 0)
	vals(t, "avgpool", must(NewAvgPool2d(Pair(2), PoolOptions{})).Forward(x), []int{1, 1, 2, 2}, []float64{3.5, 5.5, 11.5, 13.5}, 0)
	// Padding 1 with count_include_pad (default): corner window holds only x[0][0] = 1.
	vals(t, "avgpool padded", must(NewAvgPool2d(Pair(2), PoolOptions{Padding: Pair(1)})).Forward(x), []int{1, 1, 3, 3},
		[]float64{0.25}, 1e-7)
	vals(t, "avgpool exclude pad", must(NewAvgPool2d(Pair(2), PoolOptions{Padding: Pair(1), ExcludePadding: true})).Forward(x),
		[]int{1, 1, 3, 3}, []float64{1}, 1e-7)
	vals(t, "adaptive", must(NewAdaptiveAvgPool2d(Pair(1))).Forward(x), []int{1, 1, 1, 1}, []float64{8.5}, 1e-6)
	if _, err := NewMaxPool2d(Pair(2), PoolOptions{Padding: Pair(2)}); err == nil {
		t.Error("padding over half the kernel accepted")
	}
	vals(t, "flatten", NewFlatten(1, -1).Forward(x), []int{1, 16}, []float64{1, 2}, 0)
	if NewIdentity().Forward(x) != x {
		t.Error("Identity")
	}

	d := must(NewDropout(0.5, tensor.NewRNG(1)))
	y := d.Forward(tensor.Ones(1000))
	zeros := 0
	for _, v := range y.F32() {
		if v == 0 {
			zeros++
		} else if v != 2 {
			t.Fatalf("kept value %g, want 2", v)
		}
	}
	if zeros < 400 || zeros > 600 {
		t.Errorf("dropout zeroed %d of 1000", zeros)
	}
	Eval(d)
	if d.Forward(y) != y {
		t.Error("eval dropout is not the identity")
	}
	if _, err := NewDropout(1.5, nil); err == nil {
		t.Error("p = 1.5 accepted")
	}
}

func TestActivations(t *testing.T) {
	x := tensor.FromFloat32([]float32{-4, -1, 0, 1, 4, 7})
	sig := func(v float64) float64 { return 1 / (1 + math.Exp(-v)) }
	in := []float64{-4, -1, 0, 1, 4, 7}
	each := func(f func(float64) float64) []float64 {
		out := make([]float64, len(in))
		for i, v := range in {
			out[i] = f(v)
		}
		return out
	}
	cases := []struct {
		name string
		l    Layer
		want []float64
	}{
		{"relu", NewReLU(), []float64{0, 0, 0, 1, 4, 7}},
		{"relu6", NewReLU6(), []float64{0, 0, 0, 1, 4, 6}},
		{"leaky", NewLeakyReLU(0.1), []float64{-0.4, -0.1, 0, 1, 4, 7}},
		{"hardswish", NewHardswish(), []float64{0, -1.0 / 3, 0, 4.0 / 6, 4, 7}},
		{"hardsigmoid", NewHardsigmoid(), []float64{0, 2.0 / 6, 0.5, 4.0 / 6, 1, 1}},
		{"sigmoid", NewSigmoid(), each(sig)},
		{"tanh", NewTanh(), each(math.Tanh)},
		{"gelu", NewGELU(false), each(func(v float64) float64 { return v * 0.5 * (1 + math.Erf(v/math.Sqrt2)) })},
		{"gelu-tanh", NewGELU(true), each(func(v float64) float64 {
			return 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
		})},
		{"silu", NewSiLU(), each(func(v float64) float64 { return v * sig(v) })},
	}
	for _, c := range cases {
		vals(t, c.name, c.l.Forward(x), []int{6}, c.want, 2e-6)
	}
	sm := NewSoftmax(1).Forward(tensor.FromFloat32([]float32{0, math.Float32frombits(0x3f317218), 5, 5}, 2, 2)) // ln 2
	vals(t, "softmax", sm, []int{2, 2}, []float64{1.0 / 3, 2.0 / 3, 0.5, 0.5}, 1e-6)
}

func TestLosses(t *testing.T) {
	logits := tensor.FromFloat32([]float32{0, 0, float32(math.Log(3)), 0}, 2, 2)
	target := tensor.FromInt64([]int64{0, 0})
	// Sample 0: -log(1/2); sample 1: -log(3/4).
	want := (math.Log(2) + math.Log(4.0/3)) / 2
	vals(t, "cross entropy", NewCrossEntropyLoss().Forward(logits, target), []int{}, []float64{want}, 1e-6)
	ce := NewCrossEntropyLoss()
	ce.Reduction = ReductionNone
	vals(t, "cross entropy none", ce.Forward(logits, target), []int{2}, []float64{math.Log(2), math.Log(4.0 / 3)}, 1e-6)
	ign := NewCrossEntropyLoss()
	vals(t, "ignore_index -100", ign.Forward(logits, tensor.FromInt64([]int64{0, -100})), []int{}, []float64{math.Log(2)}, 1e-6)
	ls := NewCrossEntropyLoss()
	ls.LabelSmoothing = 0.2
	// (1-0.2)*(-logp[t]) + 0.2/2*sum(-logp).
	lsWant := (0.8*math.Log(2) + 0.1*2*math.Log(2) + 0.8*math.Log(4.0/3) + 0.1*(math.Log(4.0/3)+math.Log(4))) / 2
	vals(t, "label smoothing", ls.Forward(logits, target), []int{}, []float64{lsWant}, 1e-6)

	mse := NewMSELoss()
	vals(t, "mse", mse.Forward(tensor.FromFloat32([]float32{1, 2}), tensor.FromFloat32([]float32{0, 4})), []int{}, []float64{2.5}, 1e-6)
	mse.Reduction = ReductionSum
	vals(t, "mse sum", mse.Forward(tensor.FromFloat32([]float32{1, 2}), tensor.FromFloat32([]float32{0, 4})), []int{}, []float64{5}, 1e-6)
	bce := NewBCEWithLogitsLoss()
	// x=0, y=1: log 2; x=2, y=0: log(1+e^2).
	vals(t, "bce", bce.Forward(tensor.FromFloat32([]float32{0, 2}), tensor.FromFloat32([]float32{1, 0})), []int{},
		[]float64{(math.Log(2) + math.Log(1+math.Exp(2))) / 2}, 1e-6)
}

func TestConvBNGradcheck(t *testing.T) {
	rng := tensor.NewRNG(41)
	model := NewSequential(
		must(NewConv2d(2, 3, Pair(3), Conv2dOptions{Padding: Pair(1), Stride: Pair(2), RNG: rng})),
		must(NewBatchNorm2d(3, BatchNormOptions{})),
		NewTanh(),
		must(NewAvgPool2d(Pair(2), PoolOptions{})),
		NewFlatten(1, -1),
		must(NewLinear(3, 2, LinearOptions{RNG: rng})),
	)
	bn := model.At(1).(*BatchNorm2d)
	tensor.UniformFill(rng, bn.Weight, 0.5, 1.5)
	tensor.UniformFill(rng, bn.Bias, -0.5, 0.5)
	x := tensor.RandUniform(rng, -1, 1, 3, 2, 4, 4).SetRequiresGrad(true)
	in := append([]*tensor.Tensor{x}, Parameters(model)...)
	opt := gradcheck.Options{Eps: 1e-2, Atol: 3e-3, Rtol: 3e-2}
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return model.Forward(in[0]) }, in, opt); err != nil {
		t.Errorf("train mode: %v", err)
	}
	Eval(model)
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return model.Forward(in[0]) }, in, opt); err != nil {
		t.Errorf("eval mode: %v", err)
	}
	// Losses are differentiable through the modules too.
	Train(model)
	target := tensor.FromInt64([]int64{0, 1, 1})
	ce := NewCrossEntropyLoss()
	if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		return ops.Reshape(ce.Forward(model.Forward(in[0]), target), 1)
	}, in, opt); err != nil {
		t.Errorf("cross entropy: %v", err)
	}
}
