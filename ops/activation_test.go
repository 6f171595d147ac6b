package ops

import (
	"math"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/tensor"
)

// ewActInputs are the points of ewTorchRef, chosen to hit every kink.
var ewActInputs = []float32{-25, -4, -3, -2.5, -1, -0.5, 0, 0.5, 1, 2.5, 3, 4, 6, 7, 25}

// ewTorchRef holds y = f(x) and dy/dx at ewActInputs as printed by
// PyTorch 1.13 (torch.nn.functional on float32 CPU tensors, backward of
// y.sum()), including PyTorch's gradients at the kinks.
var ewTorchRef = []struct {
	name    string
	y, grad []float32
}{
	{"ReLU", []float32{0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"ReLU6", []float32{0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 6.0, 6.0}, []float32{0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0}},
	{"LeakyReLU01", []float32{-0.25, -0.03999999910593033, -0.029999999329447746, -0.02499999850988388, -0.009999999776482582, -0.004999999888241291, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 0.009999999776482582, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"LeakyReLU2", []float32{-5.0, -0.800000011920929, -0.6000000238418579, -0.5, -0.20000000298023224, -0.10000000149011612, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 0.20000000298023224, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"ELU1", []float32{-1.0, -0.9816843867301941, -0.9502129554748535, -0.9179149866104126, -0.6321205496788025, -0.39346933364868164, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{1.3887943746404563e-11, 0.018315639346837997, 0.049787066876888275, 0.08208499848842621, 0.3678794503211975, 0.6065306663513184, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"ELU05", []float32{-0.5, -0.49084219336509705, -0.47510647773742676, -0.4589574933052063, -0.31606027483940125, -0.19673466682434082, 0.0, 0.5, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{6.9439718732022815e-12, 0.009157819673418999, 0.024893533438444138, 0.041042499244213104, 0.18393972516059875, 0.3032653331756592, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"Hardswish", []float32{-0.0, -0.0, -0.0, -0.2083333283662796, -0.3333333432674408, -0.2083333283662796, 0.0, 0.2916666567325592, 0.6666666865348816, 2.2916667461395264, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{0.0, 0.0, -0.5, -0.3333333134651184, 0.1666666567325592, 0.3333333134651184, 0.5, 0.6666666865348816, 0.8333333730697632, 1.3333332538604736, 1.5, 1.0, 1.0, 1.0, 1.0}},
	{"Hardsigmoid", []float32{0.0, 0.0, 0.0, 0.0833333358168602, 0.3333333432674408, 0.4166666567325592, 0.5, 0.5833333134651184, 0.6666666865348816, 0.9166666865348816, 1.0, 1.0, 1.0, 1.0, 1.0}, []float32{0.0, 0.0, 0.0, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.1666666716337204, 0.0, 0.0, 0.0, 0.0, 0.0}},
	{"Hardtanh", []float32{-2.5, -2.5, -2.5, -2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0, 3.0, 3.0, 3.0, 3.0}, []float32{0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0}},
	{"Sigmoid", []float32{1.3887942879042825e-11, 0.01798621006309986, 0.04742587357759476, 0.07585817575454712, 0.2689414322376251, 0.3775406777858734, 0.5, 0.622459352016449, 0.7310585975646973, 0.9241418242454529, 0.9525741338729858, 0.9820137619972229, 0.9975274205207825, 0.9990890026092529, 1.0}, []float32{1.3887942879042825e-11, 0.01766270585358143, 0.045176658779382706, 0.0701037123799324, 0.1966119408607483, 0.23500370979309082, 0.25, 0.23500370979309082, 0.1966119259595871, 0.0701037123799324, 0.04517665505409241, 0.017662733793258667, 0.002466465812176466, 0.0009101674659177661, 0.0}},
	{"Tanh", []float32{-1.0, -0.9993293285369873, -0.9950547814369202, -0.9866142868995667, -0.7615941762924194, -0.46211716532707214, 0.0, 0.46211716532707214, 0.7615941762924194, 0.9866142868995667, 0.9950547814369202, 0.9993293285369873, 0.9999877214431763, 0.9999983310699463, 1.0}, []float32{0.0, 0.0013408930972218513, 0.00986598152667284, 0.026592249050736427, 0.41997429728507996, 0.7864477038383484, 1.0, 0.7864477038383484, 0.41997429728507996, 0.026592249050736427, 0.00986598152667284, 0.0013408930972218513, 2.4556962671340443e-05, 3.3378573789377697e-06, 0.0}},
	{"GELU", []float32{0.0, -0.00012671947479248047, -0.004049867391586304, -0.015524178743362427, -0.1586552858352661, -0.1542687863111496, 0.0, 0.3457311987876892, 0.8413447141647339, 2.48447585105896, 2.995950222015381, 3.999873161315918, 6.0, 7.0, 25.0}, []float32{0.0, -0.0005036294460296631, -0.011945605278015137, -0.03761106729507446, -0.08331543207168579, 0.1325049102306366, 0.5, 0.867495059967041, 1.083315372467041, 1.0376110076904297, 1.0119456052780151, 1.000503659248352, 1.0, 1.0, 1.0}},
	{"GELUTanh", []float32{-0.0, -7.021427154541016e-05, -0.0036374330520629883, -0.015084296464920044, -0.15880799293518066, -0.1542859971523285, 0.0, 0.3457140028476715, 0.8411920070648193, 2.4849157333374023, 2.9963626861572266, 3.999929904937744, 6.0, 7.0, 25.0}, []float32{0.0, -0.00033497207914479077, -0.011584296822547913, -0.03795165196061134, -0.08296409249305725, 0.1326301097869873, 0.5, 0.8673698902130127, 1.0829640626907349, 1.0379517078399658, 1.0115842819213867, 1.0003349781036377, 1.0, 1.0, 1.0}},
	{"SiLU", []float32{-3.471985754455176e-10, -0.07194484025239944, -0.14227761328220367, -0.189645454287529, -0.2689414322376251, -0.1887703388929367, 0.0, 0.3112296760082245, 0.7310585975646973, 2.310354471206665, 2.857722520828247, 3.9280550479888916, 5.985164642333984, 6.993622779846191, 25.0}, []float32{-3.333106290970278e-10, -0.052664611488580704, -0.08810410648584366, -0.09940110892057419, 0.07232948392629623, 0.260038822889328, 0.5, 0.7399612069129944, 0.9276705384254456, 1.0994011163711548, 1.0881041288375854, 1.0526646375656128, 1.0123262405395508, 1.0054601430892944, 1.0}},
	{"Softplus", []float32{1.3887943746404563e-11, 0.018149929121136665, 0.04858735203742981, 0.07888973504304886, 0.3132616877555847, 0.4740769863128662, 0.6931471824645996, 0.9740769863128662, 1.31326162815094, 2.578889846801758, 3.0485873222351074, 4.0181498527526855, 6.002475738525391, 7.000911712646484, 25.0}, []float32{1.3887943746404563e-11, 0.01798621006309986, 0.04742587357759476, 0.07585817575454712, 0.2689414322376251, 0.3775406777858734, 0.5, 0.622459352016449, 0.7310585975646973, 0.9241418242454529, 0.9525741338729858, 0.9820137619972229, 0.9975273609161377, 0.9990889430046082, 1.0}},
	{"Softplus2_5", []float32{9.643749466768692e-23, 0.00016770318325143307, 0.0012378426035866141, 0.003357674228027463, 0.06346400082111359, 0.15663084387779236, 0.3465735912322998, 0.65663081407547, 1.0634640455245972, 2.5033576488494873, 3.0, 4.0, 6.0, 7.0, 25.0}, []float32{1.9287498933537385e-22, 0.00033535013790242374, 0.0024726232513785362, 0.006692850962281227, 0.11920291930437088, 0.2689414322376251, 0.5, 0.7310585975646973, 0.8807970881462097, 0.9933071732521057, 1.0, 1.0, 1.0, 1.0, 1.0}},
	{"Erf", []float32{-1.0, -1.0, -0.9999778866767883, -0.9995930194854736, -0.8427007794380188, -0.5204998850822449, 0.0, 0.5204998850822449, 0.8427007794380188, 0.9995930194854736, 0.9999778866767883, 1.0, 1.0, 1.0, 1.0}, []float32{0.0, 1.2698235707375716e-07, 0.00013925305393058807, 0.002178284339606762, 0.41510751843452454, 0.8787826299667358, 1.128379225730896, 0.8787826299667358, 0.41510751843452454, 0.002178284339606762, 0.00013925305393058807, 1.2698235707375716e-07, 2.61730110207145e-16, 5.915963530210772e-22, 0.0}},
	{"Clamp", []float32{-1.0, -1.0, -1.0, -1.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 3.0, 3.0, 3.0, 3.0, 3.0}, []float32{0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0}},
}

var ewActFuncs = map[string]func(x *tensor.Tensor) *tensor.Tensor{
	"ReLU":        ReLU,
	"ReLU6":       ReLU6,
	"LeakyReLU01": func(x *tensor.Tensor) *tensor.Tensor { return LeakyReLU(x, 0.01) },
	"LeakyReLU2":  func(x *tensor.Tensor) *tensor.Tensor { return LeakyReLU(x, 0.2) },
	"ELU1":        func(x *tensor.Tensor) *tensor.Tensor { return ELU(x, 1) },
	"ELU05":       func(x *tensor.Tensor) *tensor.Tensor { return ELU(x, 0.5) },
	"Hardswish":   Hardswish,
	"Hardsigmoid": Hardsigmoid,
	"Hardtanh":    func(x *tensor.Tensor) *tensor.Tensor { return Hardtanh(x, -2.5, 3) },
	"Sigmoid":     Sigmoid,
	"Tanh":        Tanh,
	"GELU":        func(x *tensor.Tensor) *tensor.Tensor { return GELU(x, false) },
	"GELUTanh":    func(x *tensor.Tensor) *tensor.Tensor { return GELU(x, true) },
	"SiLU":        SiLU,
	"Softplus":    Softplus,
	"Softplus2_5": func(x *tensor.Tensor) *tensor.Tensor { return SoftplusWith(x, 2, 5) },
	"Erf":         Erf,
	"Clamp":       func(x *tensor.Tensor) *tensor.Tensor { return Clamp(x, -1, 3) },
}

// ewClose reports whether got is within a few float32 roundings of want
// (PyTorch evaluates in float32, quanta in float64 rounded once).
func ewClose(got, want float32) bool {
	return math.Abs(float64(got)-float64(want)) <= 1e-6+1e-5*math.Abs(float64(want))
}

func TestActivationsMatchPyTorch(t *testing.T) {
	for _, r := range ewTorchRef {
		f := ewActFuncs[r.name]
		if f == nil {
			t.Fatalf("no function for %s", r.name)
		}
		x := tensor.FromFloat32(append([]float32(nil), ewActInputs...)).SetRequiresGrad(true)
		y := f(x)
		if err := autograd.Backward(y, nil); err != nil {
			t.Fatalf("%s: %v", r.name, err)
		}
		for i, v := range ewActInputs {
			if got := y.F32()[i]; !ewClose(got, r.y[i]) {
				t.Errorf("%s(%v) = %v, PyTorch %v", r.name, v, got, r.y[i])
			}
			if got := x.Grad().F32()[i]; !ewClose(got, r.grad[i]) {
				t.Errorf("%s'(%v) = %v, PyTorch %v", r.name, v, got, r.grad[i])
			}
		}
	}
}

// TestActivationKinkGradients pins PyTorch's conventions at kinks exactly.
func TestActivationKinkGradients(t *testing.T) {
	cases := []struct {
		name string
		f    func(x *tensor.Tensor) *tensor.Tensor
		x    []float32
		want []float32
	}{
		{"ReLU", ReLU, []float32{0}, []float32{0}},
		{"ReLU6", ReLU6, []float32{0, 6}, []float32{0, 0}},
		{"Hardswish", Hardswish, []float32{-3, 3, -3.0001, 3.0001}, []float32{-0.5, 1.5, 0, 1}},
		{"Hardsigmoid", Hardsigmoid, []float32{-3, 3, 0}, []float32{0, 0, float32(1.0 / 6)}},
		{"Hardtanh", func(x *tensor.Tensor) *tensor.Tensor { return Hardtanh(x, -1, 1) }, []float32{-1, 1}, []float32{0, 0}},
		{"Clamp", func(x *tensor.Tensor) *tensor.Tensor { return Clamp(x, -1, 1) }, []float32{-1, 1}, []float32{1, 1}},
		{"LeakyReLU", func(x *tensor.Tensor) *tensor.Tensor { return LeakyReLU(x, 0.01) }, []float32{0}, []float32{0.01}},
		{"ELU", func(x *tensor.Tensor) *tensor.Tensor { return ELU(x, 0.5) }, []float32{0}, []float32{0.5}},
		{"Abs", Abs, []float32{0, -2, 2}, []float32{0, -1, 1}},
	}
	for _, c := range cases {
		x := tensor.FromFloat32(append([]float32(nil), c.x...)).SetRequiresGrad(true)
		if err := autograd.Backward(c.f(x), nil); err != nil {
			t.Fatal(err)
		}
		for i, w := range c.want {
			if g := x.Grad().F32()[i]; g != w {
				t.Errorf("%s'(%v) = %v, want %v", c.name, c.x[i], g, w)
			}
		}
	}
}

// ewInput returns a [3,4] tensor uniform in [lo, hi) requiring grad, with
// every value at least 0.05 away from the kinks (gradcheck steps 0.01).
func ewInput(seed uint64, lo, hi float32, kinks ...float32) *tensor.Tensor {
	x := tensor.RandUniform(tensor.NewRNG(seed), lo, hi, 3, 4)
	d := x.F32()
	for i, v := range d {
		for _, k := range kinks {
			if v >= k && v-k < 0.05 {
				v = k + 0.05
			} else if v < k && k-v < 0.05 {
				v = k - 0.05
			}
		}
		d[i] = v
	}
	return x.SetRequiresGrad(true)
}

func TestActivationGradcheck(t *testing.T) {
	cases := []struct {
		name   string
		f      func(x *tensor.Tensor) *tensor.Tensor
		lo, hi float32
		kinks  []float32
	}{
		{"ReLU", ReLU, -2, 2, []float32{0}},
		{"ReLU6", ReLU6, -1, 7, []float32{0, 6}},
		{"LeakyReLU", func(x *tensor.Tensor) *tensor.Tensor { return LeakyReLU(x, 0.1) }, -2, 2, []float32{0}},
		{"ELU", func(x *tensor.Tensor) *tensor.Tensor { return ELU(x, 0.7) }, -3, 2, []float32{0}},
		{"Hardswish", Hardswish, -5, 5, []float32{-3, 3}},
		{"Hardsigmoid", Hardsigmoid, -5, 5, []float32{-3, 3}},
		{"Hardtanh", func(x *tensor.Tensor) *tensor.Tensor { return Hardtanh(x, -0.5, 1.5) }, -2, 2, []float32{-0.5, 1.5}},
		{"Sigmoid", Sigmoid, -4, 4, nil},
		{"Tanh", Tanh, -3, 3, nil},
		{"GELU", func(x *tensor.Tensor) *tensor.Tensor { return GELU(x, false) }, -4, 4, nil},
		{"GELUTanh", func(x *tensor.Tensor) *tensor.Tensor { return GELU(x, true) }, -4, 4, nil},
		{"SiLU", SiLU, -5, 5, nil},
		{"Softplus", Softplus, -5, 5, nil},
		{"SoftplusWith", func(x *tensor.Tensor) *tensor.Tensor { return SoftplusWith(x, 3, 4) }, -2, 2, []float32{4.0 / 3}},
		{"Erf", Erf, -2, 2, nil},
	}
	for i, c := range cases {
		x := ewInput(uint64(100+i), c.lo, c.hi, c.kinks...)
		f := c.f
		if err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor { return f(in[0]) }, []*tensor.Tensor{x}, gradcheck.Options{}); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestActivationNoGradNoRecord(t *testing.T) {
	x := tensor.FromFloat32([]float32{-1, 2})
	for name, f := range ewActFuncs {
		if y := f(x); y.GradFn() != nil || y.RequiresGrad() {
			t.Errorf("%s recorded history for an input without grad", name)
		}
	}
	// Inside NoGrad nothing is recorded either.
	xg := tensor.FromFloat32([]float32{-1, 2}).SetRequiresGrad(true)
	autograd.NoGrad(func() {
		if y := GELU(xg, false); y.GradFn() != nil {
			t.Error("GELU recorded history under NoGrad")
		}
	})
}
