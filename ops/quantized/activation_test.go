package quantized

import (
	"math/rand/v2"
	"testing"

	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

// TestActivationsReferenceModel: every table op equals the reference
// model with package ops' float activation, on every code, for random
// and extreme qparams.
func TestActivationsReferenceModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	scales := []float32{0.05, 0.1, 0.0123, 0.5, 1e-4, 3}
	for _, dt := range dtypes {
		// Every code once.
		lo, _ := dtypeRange(dt)
		for trial := 0; trial < 12; trial++ {
			si, zi := scales[trial%len(scales)], randZP(r, dt)
			all := make([]float32, 256)
			for i := range all {
				all[i] = float32(int32(i)+lo-zi) * si
			}
			x := ops.QuantizePerTensor(tensor.FromFloat32(all, 4, 64), si, zi, dt)
			so, zo := scales[r.IntN(len(scales))], randZP(r, dt)
			ss, zs := SigmoidQParams(dt)
			st, zt := TanhQParams(dt)
			cases := []struct {
				name  string
				got   *tensor.Tensor
				err   error
				s     float32
				z     int32
				float func(*tensor.Tensor) *tensor.Tensor
			}{
				{"relu6", nil, nil, si, zi, ops.ReLU6},
				{"hardtanh", nil, nil, si, zi, func(v *tensor.Tensor) *tensor.Tensor { return ops.Hardtanh(v, -1.5, 2.25) }},
				{"leaky", nil, nil, so, zo, func(v *tensor.Tensor) *tensor.Tensor { return ops.LeakyReLU(v, 0.07) }},
				{"elu", nil, nil, so, zo, func(v *tensor.Tensor) *tensor.Tensor { return ops.ELU(v, 1.3) }},
				{"gelu", nil, nil, so, zo, func(v *tensor.Tensor) *tensor.Tensor { return ops.GELU(v, false) }},
				{"gelu_tanh", nil, nil, so, zo, func(v *tensor.Tensor) *tensor.Tensor { return ops.GELU(v, true) }},
				{"hardswish", nil, nil, so, zo, ops.Hardswish},
				{"hardsigmoid", nil, nil, ss, zs, ops.Hardsigmoid},
				{"sigmoid", nil, nil, ss, zs, ops.Sigmoid},
				{"tanh", nil, nil, st, zt, ops.Tanh},
			}
			cases[0].got, cases[0].err = ReLU6(x)
			cases[1].got, cases[1].err = Hardtanh(x, -1.5, 2.25)
			cases[2].got, cases[2].err = LeakyReLU(x, 0.07, so, zo)
			cases[3].got, cases[3].err = ELU(x, 1.3, so, zo)
			cases[4].got, cases[4].err = GELU(x, false, so, zo)
			cases[5].got, cases[5].err = GELU(x, true, so, zo)
			cases[6].got, cases[6].err = Hardswish(x, so, zo)
			cases[7].got, cases[7].err = Hardsigmoid(x)
			cases[8].got, cases[8].err = Sigmoid(x)
			cases[9].got, cases[9].err = Tanh(x)
			for _, c := range cases {
				want := refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return c.float(v[0]) }, dt, c.s, c.z, x)
				sameQ(t, name(dt, c.name, si, zi), must(t, c.got, c.err), want)
			}
			sameQ(t, name(dt, "relu", si, zi), ok(t)(ReLU(x)), refModel(func(v ...*tensor.Tensor) *tensor.Tensor { return ops.ReLU(v[0]) }, dt, si, zi, x))
		}
	}
}

func TestActivationHandValues(t *testing.T) {
	x := tensor.NewQuantized(tensor.QUInt8, []uint8{0, 100, 128, 140, 255}, tensor.PerTensor(0.05, 128), 5)
	if got := ok(t)(ReLU(x)).U8(); got[0] != 128 || got[1] != 128 || got[3] != 140 || got[4] != 255 {
		t.Errorf("ReLU = %v", got)
	}
	// relu6 at scale 0.05: 6 -> code 128 + 120 = 248.
	if got := ok(t)(ReLU6(x)).U8(); got[4] != 248 || got[3] != 140 || got[0] != 128 {
		t.Errorf("ReLU6 = %v", got)
	}
	// sigmoid(0) = 0.5 -> 128 at (1/256, 0); sigmoid(-6.4) = 0.00166 -> 0; sigmoid(6.35) -> 255 (0.99826*256 = 255.55 -> 256 saturates).
	y := ok(t)(Sigmoid(x))
	if got := y.U8(); got[2] != 128 || got[0] != 0 || got[4] != 255 {
		t.Errorf("Sigmoid = %v", got)
	}
	if q := y.QParams(); q.Scale[0] != 1.0/256 || q.ZeroPoint[0] != 0 {
		t.Errorf("Sigmoid qparams = %v %v", q.Scale, q.ZeroPoint)
	}
	// tanh(0.6) = 0.53705 -> 68.74 -> 69 + 128 = 197.
	if got := ok(t)(Tanh(x)).U8(); got[2] != 128 || got[3] != 197 {
		t.Errorf("Tanh = %v", got)
	}
	s8 := tensor.NewQuantized(tensor.QInt8, []int8{-128, 0, 127}, tensor.PerTensor(0.1, 0), 3)
	y = ok(t)(Hardsigmoid(s8)) // hardsigmoid(-12.8)=0, (0)=0.5, (12.7)=1 -> -128, 0, 127 (256 saturates)
	if got := y.I8(); got[0] != -128 || got[1] != 0 || got[2] != 127 {
		t.Errorf("Hardsigmoid int8 = %v", got)
	}
	if q := y.QParams(); q.ZeroPoint[0] != -128 {
		t.Errorf("Hardsigmoid int8 zero point %d", q.ZeroPoint[0])
	}
	if _, err := Sigmoid(tensor.Zeros(3)); err == nil {
		t.Error("float input accepted")
	}
	if _, err := Hardswish(x, -1, 0); err == nil {
		t.Error("negative scale accepted")
	}
}
