package quant

import (
	"testing"

	"github.com/quanta-go/quanta/quant/fakequant"
	"github.com/quanta-go/quanta/quant/observer"
	"github.com/quanta-go/quanta/tensor"
)

func qparamsOf(t *testing.T, f ObserverFactory, x []float32, shape ...int) *tensor.QParams {
	t.Helper()
	o := f()
	if err := o.Observe(tensor.FromFloat32(x, shape...)); err != nil {
		t.Fatal(err)
	}
	q, err := o.CalculateQParams()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

func TestDefaultQConfigs(t *testing.T) {
	for _, c := range []struct {
		engine      string
		actMax      int32
		perChannelW bool
	}{{"x86", 127, true}, {"fbgemm", 127, true}, {"qnnpack", 255, false}, {"onednn", 255, true}, {"quanta", 255, true}, {"", 255, true}} {
		qc, err := DefaultQConfig(c.engine)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := qc.Activation().(*observer.Histogram); !ok {
			t.Errorf("%s: activation is %T, want HistogramObserver", c.engine, qc.Activation())
		}
		if a, b := qc.Activation(), qc.Activation(); a == b {
			t.Errorf("%s: factory returned a shared instance", c.engine)
		}
		// MinMax-style check of the weight observer on [-2, 1] per row.
		w := qparamsOf(t, qc.Weight, []float32{-2, 1, 0.5, -0.25}, 2, 2)
		if c.perChannelW {
			if w.Scheme != tensor.PerChannelSymmetric || len(w.Scale) != 2 || w.Scale[0] != float32(2)/127.5 || w.ZeroPoint[0] != 0 {
				t.Errorf("%s: weight qparams %+v", c.engine, w)
			}
		} else if w.Scheme != tensor.PerTensorSymmetric || w.Scale[0] != float32(2)/127.5 {
			t.Errorf("%s: weight qparams %+v", c.engine, w)
		}
		qat, err := DefaultQATQConfig(c.engine)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := qat.Activation().(*fakequant.FakeQuantize); !ok {
			t.Errorf("%s: QAT activation is %T", c.engine, qat.Activation())
		}
		// PyTorch: [-1, 3] -> (4/255, 64), with reduce_range (4/127, 32).
		a := qparamsOf(t, qat.Activation, []float32{-1, 3})
		if a.QuantMax != c.actMax {
			t.Errorf("%s: QAT activation range ..%d, want ..%d", c.engine, a.QuantMax, c.actMax)
		}
		wantScale, wantZP := float32(4)/255, int32(64)
		if c.actMax == 127 {
			wantScale, wantZP = float32(4)/127, 32
		}
		if a.Scale[0] != wantScale || a.ZeroPoint[0] != wantZP {
			t.Errorf("%s: QAT activation qparams %v %v, want %v %v", c.engine, a.Scale, a.ZeroPoint, wantScale, wantZP)
		}
	}
	if _, err := DefaultQConfig("tpu"); err == nil {
		t.Error("unknown engine accepted")
	}
	if _, err := DefaultQATQConfigMapping("cuda"); err == nil {
		t.Error("unknown engine accepted by the QAT mapping")
	}
}

func TestDefaultQConfigMapping(t *testing.T) {
	m, err := DefaultQConfigMapping("x86")
	if err != nil {
		t.Fatal(err)
	}
	sig := m.Lookup("head.act", "Sigmoid")
	q := qparamsOf(t, sig.Activation, []float32{0.1, 0.9})
	if q.Scale[0] != 1.0/256 || q.ZeroPoint[0] != 0 {
		t.Errorf("sigmoid fixed qparams %+v", q)
	}
	q = qparamsOf(t, m.Lookup("x", "Tanh").Activation, []float32{0.1})
	if q.Scale[0] != 2.0/256 || q.ZeroPoint[0] != 128 {
		t.Errorf("tanh fixed qparams %+v", q)
	}
	ct := m.Lookup("up", "ConvTranspose2d")
	if w := qparamsOf(t, ct.Weight, []float32{-2, 1, 0.5, -0.25}, 2, 2); w.Scheme != tensor.PerTensorSymmetric {
		t.Errorf("x86 ConvTranspose weights %v, want per-tensor", w.Scheme)
	}
	if g := m.Lookup("features.0", "Conv2d"); g == nil || g.Name != "x86 default" {
		t.Errorf("conv qconfig %+v", g)
	}
	q8, _ := DefaultQConfigMapping("qnnpack")
	if w := qparamsOf(t, q8.Lookup("up", "ConvTranspose2d").Weight, []float32{-2, 1, 0.5, -0.25}, 2, 2); w.Scheme != tensor.PerTensorSymmetric {
		t.Errorf("qnnpack ConvTranspose weights %v", w.Scheme)
	}
	qm, _ := DefaultQATQConfigMapping("qnnpack")
	if _, ok := qm.Lookup("a", "Sigmoid").Activation().(*fakequant.FixedQParams); !ok {
		t.Error("QAT sigmoid is not FixedQParams fake quant")
	}
}

func TestDynamicQConfigs(t *testing.T) {
	w := qparamsOf(t, DefaultDynamicQConfig.Weight, []float32{-2, 1})
	if w.Scheme != tensor.PerTensorSymmetric || w.Scale[0] != float32(2)/127.5 {
		t.Errorf("dynamic weight %+v", w)
	}
	if p, ok := DefaultDynamicQConfig.Activation().(*observer.Placeholder); !ok || !p.PlaceholderConfig().IsDynamic {
		t.Errorf("dynamic activation %T", DefaultDynamicQConfig.Activation())
	}
	if !Float16DynamicQConfig.Float16 {
		t.Error("float16 qconfig not marked")
	}
	e := qparamsOf(t, FloatQParamsWeightOnlyQConfig.Weight, []float32{0.25, 1, -1, 1}, 2, 2)
	if e.Scheme != tensor.PerChannelAffineFloatQParams || e.ZeroPointF[0] != -85 {
		t.Errorf("float qparams weight %+v", e)
	}
	e4 := qparamsOf(t, FloatQParamsWeightOnlyQConfig4Bit.Weight, []float32{0, 15, -1, 1}, 2, 2)
	if e4.QuantMax != 15 || e4.Scale[0] != 1 {
		t.Errorf("4-bit weight %+v", e4)
	}
}
