package nn

import (
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/tensor"
)

// golden runs module m, loaded with the "<name>_init" parameters of
// testdata/torch_golden_norm.safetensors, forward and backward on the
// stored input and output weighting, and compares the output, the
// gradients of the input and of every parameter, and the final state
// (running statistics) with PyTorch's.
func goldenRun(t *testing.T, sd map[string]*tensor.Tensor, name string, m Layer, tol float64) map[string]*tensor.Tensor {
	t.Helper()
	if err := LoadStateDict(m, subDict(sd, name+"_init")); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	io := subDict(sd, "io."+name)
	x := io["x"].Clone().SetRequiresGrad(true)
	y := m.Forward(x)
	nearLog(t, name+" y", y, io["y"], tol)
	if err := autograd.Backward(y, io["gy"]); err != nil {
		t.Fatal(err)
	}
	nearLog(t, name+" grad x", x.Grad(), io["gx"], tol)
	for _, p := range NamedParameters(m) {
		nearLog(t, name+" grad "+p.Name, p.Tensor.Grad(), io["g_"+p.Name], tol)
	}
	final := subDict(sd, name)
	for k, v := range StateDict(m) {
		if v.DType() == tensor.Float32 {
			nearLog(t, name+" "+k, v, final[k], tol)
		}
	}
	return io
}

func loadNormGolden(t *testing.T) map[string]*tensor.Tensor {
	t.Helper()
	sd, err := LoadFile("testdata/torch_golden_norm.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestGoldenGroupNormELU(t *testing.T) {
	sd := loadNormGolden(t)
	goldenRun(t, sd, "gn", must(NewGroupNorm(3, 6, GroupNormOptions{})), 2e-6)
	goldenRun(t, sd, "gn_noaffine", must(NewGroupNorm(2, 4, GroupNormOptions{Eps: 1e-3, NoAffine: true})), 2e-6)
	goldenRun(t, sd, "elu", NewELU(1.5), 1e-6)
}

func TestGoldenInstanceNorm(t *testing.T) {
	sd := loadNormGolden(t)
	in1 := must(NewInstanceNorm1d(4, InstanceNormOptions{Affine: true, TrackRunningStats: true, Momentum: 0.2}))
	if err := LoadStateDict(in1, subDict(sd, "in1_init0")); err != nil {
		t.Fatal(err)
	}
	in1.Forward(sd["io.in1.xb"]) // first update of the running statistics
	io := goldenRun(t, sd, "in1", in1, 2e-6)
	Eval(in1)
	nearLog(t, "in1 eval", in1.Forward(io["x"]), io["y_eval"], 2e-6)
	nearLog(t, "in1 eval unbatched", in1.Forward(tensor.Squeeze(tensor.Narrow(io["x"], 0, 1, 1), 0)), io["y_eval_unbatched"], 2e-6)
	if in1.NumBatchesTracked.I64()[0] != 0 {
		t.Errorf("num_batches_tracked advanced to %d; PyTorch leaves it 0", in1.NumBatchesTracked.I64()[0])
	}

	in2 := must(NewInstanceNorm2d(3, InstanceNormOptions{}))
	if in2.Weight != nil || in2.RunningMean != nil || len(StateDict(in2)) != 0 {
		t.Fatalf("default InstanceNorm2d has state %v", StateDictKeys(in2))
	}
	io = goldenRun(t, sd, "in2", in2, 2e-6)
	Eval(in2) // without running statistics, evaluation uses the input's
	nearLog(t, "in2 eval unbatched", in2.Forward(io["xu"]), io["yu"], 2e-6)

	in2t := must(NewInstanceNorm2d(2, InstanceNormOptions{TrackRunningStats: true}))
	io = goldenRun(t, sd, "in2t", in2t, 2e-6)
	Eval(in2t)
	nearLog(t, "in2t eval", in2t.Forward(io["xe"]), io["ye"], 2e-6)
}

func TestGoldenConvTranspose1d(t *testing.T) {
	sd := loadNormGolden(t)
	goldenRun(t, sd, "ct1", must(NewConvTranspose1d(4, 6, 3, ConvTranspose1dOptions{Stride: 2, Padding: 1, OutputPadding: 1})), 2e-6)
	goldenRun(t, sd, "ct1g", must(NewConvTranspose1d(4, 6, 2, ConvTranspose1dOptions{Stride: 3, Groups: 2, Dilation: 2, NoBias: true})), 2e-6)
	goldenRun(t, sd, "ct1u", must(NewConvTranspose1d(3, 2, 4, ConvTranspose1dOptions{Padding: 2})), 2e-6)
}

// nearLog is near, logging the largest difference (go test -v shows it).
func nearLog(t *testing.T, name string, got, want *tensor.Tensor, tol float64) {
	t.Helper()
	near(t, name, got, want, tol)
	if got != nil && tensor.SameShape(got.Shape(), want.Shape()) {
		t.Logf("%s: max abs diff %.3g from PyTorch", name, tensor.MaxAbsDiff(got, want))
	}
}
