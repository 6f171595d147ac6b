package eager

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/nn/qat"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// resNet is a small residual CNN written as a PyTorch user writes one for
// eager-mode quantization: stubs at the float boundaries and a
// FloatFunctional for the residual add.
type resNet struct {
	nn.Base
	Quant   nn.Layer      `nn:"quant"`
	Conv1   nn.Layer      `nn:"conv1"`
	BN1     nn.Layer      `nn:"bn1"`
	ReLU1   nn.Layer      `nn:"relu1"`
	Pool    nn.Layer      `nn:"pool"`
	Conv2   nn.Layer      `nn:"conv2"`
	BN2     nn.Layer      `nn:"bn2"`
	Skip    nn.Functional `nn:"skip"`
	Flatten nn.Layer      `nn:"flatten"`
	FC      nn.Layer      `nn:"fc"`
	DeQuant nn.Layer      `nn:"dequant"`
}

func (n *resNet) Forward(x *tensor.Tensor) *tensor.Tensor {
	return nn.Call1(n, x, func(x *tensor.Tensor) *tensor.Tensor {
		h := n.Pool.Forward(n.ReLU1.Forward(n.BN1.Forward(n.Conv1.Forward(n.Quant.Forward(x)))))
		h = n.Skip.AddReLU(h, n.BN2.Forward(n.Conv2.Forward(h)))
		return n.DeQuant.Forward(n.FC.Forward(n.Flatten.Forward(h)))
	})
}

func newResNet(t testing.TB, seed uint64) *resNet {
	t.Helper()
	rng := tensor.NewRNG(seed)
	c1, err := nn.NewConv2d(3, 8, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), RNG: rng})
	must(t, err)
	c2, err := nn.NewConv2d(8, 8, nn.Pair(3), nn.Conv2dOptions{Padding: nn.Pair(1), NoBias: true, RNG: rng})
	must(t, err)
	b1, err := nn.NewBatchNorm2d(8, nn.BatchNormOptions{})
	must(t, err)
	b2, err := nn.NewBatchNorm2d(8, nn.BatchNormOptions{})
	must(t, err)
	pool, err := nn.NewMaxPool2d(nn.Pair(2), nn.PoolOptions{})
	must(t, err)
	fc, err := nn.NewLinear(8*4*4, 5, nn.LinearOptions{RNG: rng})
	must(t, err)
	m := &resNet{Quant: nn.NewQuantStub(nil), Conv1: c1, BN1: b1, ReLU1: nn.NewReLU(), Pool: pool,
		Conv2: c2, BN2: b2, Skip: nn.NewFloatFunctional(), Flatten: nn.NewFlatten(1, -1), FC: fc,
		DeQuant: nn.NewDeQuantStub(nil)}
	// Batch-norm statistics from a few training-mode passes.
	autograd.NoGrad(func() {
		for i := 0; i < 4; i++ {
			m.Forward(tensor.Randn(rng, 8, 3, 8, 8))
		}
	})
	nn.AssignPaths(m)
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sqnr returns the signal-to-quantization-noise ratio of got against want,
// in dB.
func sqnr(got, want *tensor.Tensor) float64 {
	var s, n float64
	for i, w := range want.F32() {
		d := float64(got.F32()[i] - w)
		s += float64(w) * float64(w)
		n += d * d
	}
	return 10 * math.Log10(s/n)
}

func typeAt(t *testing.T, root nn.Module, path string) string {
	t.Helper()
	m, err := nn.Get(root, path)
	must(t, err)
	return nn.TypeName(m)
}

func TestQuantizeStatic(t *testing.T) {
	for _, engine := range []string{"x86", "qnnpack", "quanta"} {
		t.Run(engine, func(t *testing.T) {
			m := newResNet(t, 1)
			nn.Eval(m)
			x := tensor.Randn(tensor.NewRNG(7), 16, 3, 8, 8)
			var want *tensor.Tensor
			autograd.NoGrad(func() { want = m.Forward(x) })

			must(t, FuseModules(m, [][]string{{"conv1", "bn1", "relu1"}, {"conv2", "bn2"}}))
			qc, err := quant.DefaultQConfig(engine)
			must(t, err)
			SetQConfig(m, qc)
			calib := func(p nn.Module) error {
				autograd.NoGrad(func() {
					g := tensor.NewRNG(11)
					for i := 0; i < 8; i++ {
						p.(*resNet).Forward(tensor.Randn(g, 8, 3, 8, 8))
					}
					p.(*resNet).Forward(x)
				})
				return nil
			}
			must(t, Quantize(m, calib, Options{}))

			for path, typ := range map[string]string{
				"quant": "quantized.Quantize", "conv1": "quantized.ConvReLU2d", "relu1": "Identity",
				"pool": "MaxPool2d", "conv2": "quantized.Conv2d", "skip": "quantized.QFunctional",
				"flatten": "Flatten", "fc": "quantized.Linear", "dequant": "quantized.DeQuantize",
			} {
				if got := typeAt(t, m, path); got != typ {
					t.Errorf("%s: %s after Convert, want %s", path, got, typ)
				}
			}
			for _, nm := range nn.NamedModules(m) {
				if b := nm.Module.ModuleBase(); b.ActivationPostProcess != nil || b.QConfig != nil {
					t.Errorf("%s keeps an observer or qconfig after Convert", nm.Name)
				}
			}
			var got *tensor.Tensor
			autograd.NoGrad(func() { got = m.Forward(x) })
			if got.DType() != tensor.Float32 || !tensor.SameShape(got.Shape(), want.Shape()) {
				t.Fatalf("output %v %v, want float32 %v", got.DType(), got.Shape(), want.Shape())
			}
			// x86 uses 7-bit activations (reduce_range), so it is the noisiest.
			if s := sqnr(got, want); s < 25 {
				t.Errorf("int8 model SQNR %.1f dB against the float model, want >= 25", s)
			} else {
				t.Logf("SQNR %.1f dB", s)
			}
		})
	}
}

func TestQConfigNilAndMapping(t *testing.T) {
	m := newResNet(t, 2)
	nn.Eval(m)
	must(t, FuseModules(m, [][]string{{"conv1", "bn1", "relu1"}, {"conv2", "bn2"}}))
	qc, _ := quant.DefaultQConfig("qnnpack")
	// The head stays float: dequantize before it, as PyTorch users do.
	// The fields are swapped so that the stub (now at "fc") runs before the
	// linear layer (now at "dequant"), which the mapping keeps float.
	m.DeQuant, m.FC = m.FC, m.DeQuant
	mapping := quant.NewQConfigMapping().SetGlobal(qc).SetModuleName("dequant", nil)
	must(t, Prepare(m, Options{Mapping: mapping}))
	if m.DeQuant.ModuleBase().ActivationPostProcess != nil {
		t.Fatal("a module mapped to a nil qconfig got an observer")
	}
	autograd.NoGrad(func() { m.Forward(tensor.Randn(tensor.NewRNG(1), 4, 3, 8, 8)) })
	must(t, Convert(m, Options{}))
	if got := typeAt(t, m, "dequant"); got != "Linear" {
		t.Errorf("fc with qconfig nil became %s, want it float", got)
	}
	if got := typeAt(t, m, "fc"); got != "quantized.DeQuantize" {
		t.Errorf("the dequant stub became %s", got)
	}
	var y *tensor.Tensor
	autograd.NoGrad(func() { y = m.Forward(tensor.Randn(tensor.NewRNG(1), 2, 3, 8, 8)) })
	if y.DType() != tensor.Float32 {
		t.Errorf("output %v, want float32", y.DType())
	}

	// SetQConfig(m, nil) on one module, as `model.conv1.qconfig = None`.
	m2 := newResNet(t, 3)
	nn.Eval(m2)
	SetQConfig(m2, qc)
	SetQConfig(m2.Conv2, nil)
	must(t, Prepare(m2, Options{}))
	if m2.Conv2.ModuleBase().ActivationPostProcess != nil || m2.Conv1.ModuleBase().ActivationPostProcess == nil {
		t.Error("SetQConfig(nil) did not keep conv2 unobserved, or conv1 was not observed")
	}
}

func TestEagerErrors(t *testing.T) {
	qc, _ := quant.DefaultQConfig("qnnpack")
	fresh := func() *resNet {
		m := newResNet(t, 4)
		nn.Eval(m)
		SetQConfig(m, qc)
		return m
	}
	check := func(what string, err error, want ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", what, err, w)
			}
		}
	}
	check("convert unprepared", Convert(fresh(), Options{}), "no observers", "eager.Prepare")

	m := fresh()
	must(t, Prepare(m, Options{}))
	check("convert uncalibrated", Convert(m, Options{}), "quant (QuantStub)", "no calibration data observed", "run the prepared model")
	check("prepare twice", Prepare(m, Options{}), "already prepared")

	m = fresh()
	must(t, Prepare(m, Options{}))
	bad := tensor.Randn(tensor.NewRNG(1), 2, 3, 8, 8)
	bad.F32()[5] = float32(math.NaN())
	autograd.NoGrad(func() { m.Forward(bad) })
	check("NaN calibration", Convert(m, Options{}), "quant (QuantStub)", "calibration failed", "NaN")

	// An explicit qconfig on a module with no static counterpart (a GRU
	// has no quantizable form; an LSTM has one).
	type withGRU struct {
		nn.Base
		Body *resNet `nn:"body"`
		RNN  *nn.GRU `nn:"rnn"`
	}
	gru, err := nn.NewGRU(4, 4, nn.RNNOptions{})
	must(t, err)
	w := &withGRU{Body: fresh(), RNN: gru}
	nn.Eval(w)
	SetQConfig(w.RNN, qc)
	check("GRU with a qconfig", Prepare(w, Options{}), "rnn (GRU)", "no statically quantized counterpart", "QuantizeDynamic")

	// A QAT fusion given to Prepare.
	m = newResNet(t, 5)
	nn.Train(m)
	must(t, FuseModulesQAT(m, [][]string{{"conv1", "bn1", "relu1"}}))
	nn.Eval(m)
	SetQConfig(m, qc)
	check("ConvBnReLU2d in Prepare", Prepare(m, Options{}), "conv1 (ConvBnReLU2d)", "PrepareQAT")

	// A 16-bit qconfig: graph mode only.
	m = fresh()
	SetQConfig(m, quant.Int16QConfig)
	check("16-bit qconfig", Prepare(m, Options{}), `"16-bit"`, "eager mode's quantized modules are 8-bit", "quantize.Options.Int16")

	check("PrepareQAT in eval mode", PrepareQAT(fresh(), Options{}), "nn.Train")
	check("nil model", Prepare(nil, Options{}), "nil model")
}

func TestQuantizeQAT(t *testing.T) {
	m := newResNet(t, 6)
	nn.Train(m)
	must(t, FuseModulesQAT(m, [][]string{{"conv1", "bn1", "relu1"}, {"conv2", "bn2"}}))
	qc, err := quant.DefaultQATQConfig("qnnpack")
	must(t, err)
	SetQConfig(m, qc)
	must(t, PrepareQAT(m, Options{}))
	for path, typ := range map[string]string{"conv1": "qat.ConvBnReLU2d", "conv2": "qat.ConvBn2d", "fc": "qat.Linear"} {
		if got := typeAt(t, m, path); got != typ {
			t.Errorf("%s: %s after PrepareQAT, want %s", path, got, typ)
		}
	}
	// A few steps of training on a fixed regression target.
	g := tensor.NewRNG(8)
	x := tensor.Randn(g, 16, 3, 8, 8)
	target := tensor.Randn(g, 16, 5)
	opt, err := nn.NewSGD(nn.Parameters(m), nn.SGDOptions{LR: 0.01, Momentum: 0.9})
	must(t, err)
	var first, last float32
	for step := 0; step < 20; step++ {
		if step == 12 {
			qat.EnableObserver(m, false)
			qat.FreezeBNStats(m)
		}
		opt.ZeroGrad()
		loss := ops.MSELoss(m.Forward(x), target, "mean")
		must(t, autograd.Backward(loss, nil))
		opt.Step()
		if step == 0 {
			first = loss.F32()[0]
		}
		last = loss.F32()[0]
	}
	if !(last < first) {
		t.Errorf("QAT loss went from %v to %v", first, last)
	}
	// The fake-quantized model in eval mode is what the int8 model computes.
	nn.Eval(m)
	var sim *tensor.Tensor
	autograd.NoGrad(func() { sim = m.Forward(x) })
	must(t, Convert(m, Options{}))
	for path, typ := range map[string]string{"conv1": "quantized.ConvReLU2d", "conv2": "quantized.Conv2d", "fc": "quantized.Linear"} {
		if got := typeAt(t, m, path); got != typ {
			t.Errorf("%s: %s after Convert, want %s", path, got, typ)
		}
	}
	var got *tensor.Tensor
	autograd.NoGrad(func() { got = m.Forward(x) })
	if s := sqnr(got, sim); s < 35 {
		t.Errorf("int8 model SQNR %.1f dB against its QAT simulation, want >= 35", s)
	} else {
		t.Logf("int8 vs QAT simulation: SQNR %.1f dB", s)
	}
}

// TestSaveLoadQuantized saves a statically quantized model's state and
// loads it into a fresh model of the same architecture, made quantized
// without calibration (Options.Uncalibrated), as PyTorch users reload a
// quantized eager model: the reloaded model computes the same outputs.
func TestSaveLoadQuantized(t *testing.T) {
	qc, _ := quant.DefaultQConfig("x86")
	build := func(seed uint64) *resNet {
		m := newResNet(t, seed)
		nn.Eval(m)
		must(t, FuseModules(m, [][]string{{"conv1", "bn1", "relu1"}, {"conv2", "bn2"}}))
		SetQConfig(m, qc)
		return m
	}
	src := build(1)
	x := tensor.Randn(tensor.NewRNG(2), 4, 3, 8, 8)
	must(t, Quantize(src, func(p nn.Module) error {
		autograd.NoGrad(func() { p.(*resNet).Forward(x) })
		return nil
	}, Options{}))
	path := filepath.Join(t.TempDir(), "int8.safetensors")
	must(t, nn.SaveFile(path, nn.StateDict(src)))

	dst := build(9) // other float weights
	must(t, Prepare(dst, Options{}))
	if err := Convert(dst, Options{}); err == nil {
		t.Fatal("Convert of an uncalibrated model succeeded without Options.Uncalibrated")
	}
	must(t, Convert(dst, Options{Uncalibrated: true}))
	sd, err := nn.LoadFile(path)
	must(t, err)
	must(t, nn.LoadStateDict(dst, sd))
	var want, got *tensor.Tensor
	autograd.NoGrad(func() { want, got = src.Forward(x), dst.Forward(x) })
	if d := tensor.MaxAbsDiff(got, want); d != 0 {
		t.Fatalf("reloaded quantized model differs by %v", d)
	}
}

// TestConvTranspose2dPerChannel quantizes a ConvTranspose2d with the x86
// preset's per-channel weight observer: quanta quantizes transposed
// convolutions per output channel (axis 1), which PyTorch refuses.
func TestConvTranspose2dPerChannel(t *testing.T) {
	type deconvNet struct {
		nn.Base
		Quant   nn.Layer `nn:"quant"`
		Up      nn.Layer `nn:"up"`
		DeQuant nn.Layer `nn:"dequant"`
	}
	up, err := nn.NewConvTranspose2d(4, 6, nn.Pair(2), nn.Conv2dOptions{Stride: nn.Pair(2), RNG: tensor.NewRNG(1)})
	must(t, err)
	m := &deconvNet{Quant: nn.NewQuantStub(nil), Up: up, DeQuant: nn.NewDeQuantStub(nil)}
	x := tensor.Randn(tensor.NewRNG(2), 2, 4, 5, 5)
	var want *tensor.Tensor
	autograd.NoGrad(func() { want = up.Forward(x) })
	qc, _ := quant.DefaultQConfig("x86")
	SetQConfig(m, qc)
	fwd := func(p nn.Module) *tensor.Tensor {
		d := p.(*deconvNet)
		return d.DeQuant.Forward(d.Up.Forward(d.Quant.Forward(x)))
	}
	must(t, Quantize(m, func(p nn.Module) error { autograd.NoGrad(func() { fwd(p) }); return nil }, Options{}))
	w := nn.StateDict(m.Up)["weight"]
	if q := w.QParams(); !q.Scheme.PerChannel() || q.Axis != 1 || len(q.Scale) != 6 {
		t.Fatalf("weight qparams %+v, want per-channel along axis 1", q)
	}
	var got *tensor.Tensor
	autograd.NoGrad(func() { got = fwd(m) })
	if s := sqnr(got, want); s < 25 {
		t.Errorf("SQNR %.1f dB", s)
	}
}
