package nn

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/tensor"
)

var optGrads = [][]float32{{0.5, 1.0, -0.25}, {-0.3, 0.8, 0.1}, {0.2, -0.4, 0.0}}

// runOpt applies three steps with fixed gradients to w = [1, -2, 0.5].
func runOpt(t *testing.T, mk func([]*tensor.Tensor) (Optimizer, error)) []float32 {
	t.Helper()
	w := tensor.FromFloat32([]float32{1, -2, 0.5}).SetRequiresGrad(true)
	opt, err := mk([]*tensor.Tensor{w})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range optGrads {
		w.SetGrad(tensor.FromFloat32(append([]float32(nil), g...)))
		opt.Step()
	}
	return w.F32()
}

func closeTo(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i])-want[i]) > tol {
			t.Errorf("%s[%d] = %.9g, want %.9g", name, i, got[i], want[i])
		}
	}
}

// The expected values are torch.optim 1.13 results for the same parameters
// and gradients (three steps).
func TestOptimizersMatchTorch(t *testing.T) {
	sgd := func(o SGDOptions) func([]*tensor.Tensor) (Optimizer, error) {
		return func(p []*tensor.Tensor) (Optimizer, error) { return NewSGD(p, o) }
	}
	adam := func(o AdamOptions, w bool) func([]*tensor.Tensor) (Optimizer, error) {
		return func(p []*tensor.Tensor) (Optimizer, error) {
			if w {
				return NewAdamW(p, o)
			}
			return NewAdam(p, o)
		}
	}
	cases := []struct {
		name string
		mk   func([]*tensor.Tensor) (Optimizer, error)
		want []float64
	}{
		{"sgd", sgd(SGDOptions{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01}), []float64{0.8926308751106262, -2.360761880874634, 0.5479147434234619}},
		{"nesterov", sgd(SGDOptions{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}), []float64{0.8637211918830872, -2.4673118591308594, 0.5546362996101379}},
		{"plain", sgd(SGDOptions{LR: 0.1}), []float64{0.9600000381469727, -2.1399998664855957, 0.5149999856948853}},
		{"maximize", sgd(SGDOptions{LR: 0.1, Momentum: 0.5, Maximize: true}), []float64{1.0625, -1.7450000047683716, 0.4712499976158142}},
		{"adam", adam(AdamOptions{LR: 0.1, Beta1: 0.8, Beta2: 0.9, Eps: 1e-3, WeightDecay: 0.05}, false), []float64{0.8320882320404053, -2.2342517375946045, 0.6174014210700989}},
		{"adam-defaults", adam(AdamOptions{LR: 0.01}, false), []float64{0.9846107363700867, -2.025265693664551, 0.5161275863647461}},
		{"amsgrad", adam(AdamOptions{LR: 0.1, AMSGrad: true}, false), []float64{0.8461074829101562, -2.2526562213897705, 0.661262571811676}},
		{"adamw", adam(AdamOptions{LR: 0.1, Beta1: 0.8, Beta2: 0.9, Eps: 1e-3, WeightDecay: 0.05}, true), []float64{0.8396095633506775, -2.2148709297180176, 0.6425467133522034}},
	}
	for _, c := range cases {
		closeTo(t, c.name, runOpt(t, c.mk), c.want, 2e-6)
	}
}

// TestSGDHandStep checks one momentum step worked by hand:
// d = g + wd*w = 0.5 + 0.01*1 = 0.51; buf = d; w = 1 - 0.1*0.51 = 0.949.
// Second step: d = 0.5 + 0.01*0.949 = 0.50949,
// buf = 0.9*0.51 + 0.9*0.50949 = 0.917541, w = 0.949 - 0.0917541 = 0.8572459.
func TestSGDHandStep(t *testing.T) {
	w := tensor.FromFloat32([]float32{1}).SetRequiresGrad(true)
	o, _ := NewSGD([]*tensor.Tensor{w}, SGDOptions{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01})
	w.SetGrad(tensor.FromFloat32([]float32{0.5}))
	o.Step()
	closeTo(t, "step1", w.F32(), []float64{0.949}, 1e-7)
	o.Step()
	closeTo(t, "step2", w.F32(), []float64{0.8572459}, 1e-7)
}

// TestAdamHandStep: with a constant gradient, bias correction makes every
// step move the weight by lr (up to eps): m_hat = g and v_hat = g^2.
func TestAdamHandStep(t *testing.T) {
	w := tensor.FromFloat32([]float32{1, 1}).SetRequiresGrad(true)
	o, _ := NewAdam([]*tensor.Tensor{w}, AdamOptions{LR: 0.1})
	for i := 1; i <= 4; i++ {
		w.SetGrad(tensor.FromFloat32([]float32{0.5, -2}))
		o.Step()
		closeTo(t, "adam", w.F32(), []float64{1 - 0.1*float64(i), 1 + 0.1*float64(i)}, 1e-5)
	}
	// AdamW additionally shrinks w by (1 - lr*wd) before the Adam step.
	w2 := tensor.FromFloat32([]float32{2}).SetRequiresGrad(true)
	ow, _ := NewAdamW([]*tensor.Tensor{w2}, AdamOptions{LR: 0.1, WeightDecay: 0.5})
	w2.SetGrad(tensor.FromFloat32([]float32{3}))
	ow.Step()
	closeTo(t, "adamw", w2.F32(), []float64{2*(1-0.05) - 0.1}, 1e-6)
}

func TestOptimizerBookkeeping(t *testing.T) {
	a := tensor.Zeros(2).SetRequiresGrad(true)
	b := tensor.Zeros(1).SetRequiresGrad(true)
	o, err := NewSGD([]*tensor.Tensor{a, b}, SGDOptions{LR: 1, Momentum: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	a.SetGrad(tensor.Ones(2))
	o.Step() // b has no gradient: untouched
	if a.F32()[0] != -1 || b.F32()[0] != 0 {
		t.Errorf("a=%v b=%v", a, b)
	}
	o.ZeroGrad()
	if a.Grad() != nil {
		t.Error("ZeroGrad")
	}
	o.SetLR(0.25)
	if o.LR() != 0.25 {
		t.Error("SetLR")
	}
	bad := []struct {
		name string
		err  error
	}{
		{"empty", func() error { _, err := NewSGD(nil, SGDOptions{}); return err }()},
		{"nesterov", func() error { _, err := NewSGD([]*tensor.Tensor{a}, SGDOptions{Nesterov: true}); return err }()},
		{"lr", func() error { _, err := NewSGD([]*tensor.Tensor{a}, SGDOptions{LR: -1}); return err }()},
		{"dup", func() error { _, err := NewAdam([]*tensor.Tensor{a, a}, AdamOptions{}); return err }()},
		{"int", func() error {
			_, err := NewAdam([]*tensor.Tensor{tensor.New(tensor.Int64, 1)}, AdamOptions{})
			return err
		}()},
		{"beta", func() error { _, err := NewAdamW([]*tensor.Tensor{a}, AdamOptions{Beta1: 1}); return err }()},
	}
	for _, c := range bad {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
}

// Expected rates are torch.optim.lr_scheduler 1.13's.
func TestSchedulers(t *testing.T) {
	w := tensor.Zeros(1).SetRequiresGrad(true)
	opt, _ := NewSGD([]*tensor.Tensor{w}, SGDOptions{LR: 0.5})
	s, err := NewStepLR(opt, 3, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	want := []float64{0.5, 0.5, 0.5, 0.05, 0.05, 0.05, 0.005, 0.005}
	for i, lr := range want {
		if i > 0 {
			s.Step()
		}
		if math.Abs(opt.LR()-lr) > 1e-12 || s.LastLR() != opt.LR() || s.LastEpoch() != i {
			t.Errorf("StepLR epoch %d: lr %g, want %g", i, opt.LR(), lr)
		}
	}
	opt.SetLR(0.5)
	c, err := NewCosineAnnealingLR(opt, 4, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	want = []float64{0.5, 0.4414213562373095, 0.30000000000000004, 0.15857864376269054, 0.1}
	for i, lr := range want {
		if i > 0 {
			c.Step()
		}
		if math.Abs(opt.LR()-lr) > 1e-12 || c.LastEpoch() != i {
			t.Errorf("Cosine epoch %d: lr %g, want %g", i, opt.LR(), lr)
		}
	}
	if _, err := NewStepLR(opt, 0, 0.1); err == nil {
		t.Error("step size 0 accepted")
	}
	if _, err := NewCosineAnnealingLR(nil, 3, 0); err == nil {
		t.Error("nil optimizer accepted")
	}
}
