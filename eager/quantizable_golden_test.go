package eager

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/quant"
	"github.com/quanta-go/quanta/tensor"
)

// The golden file is written by scripts/golden_quantizable.py: PyTorch
// 1.13 (qnnpack) quantizes the same models through its custom-module path
// (nnqa.LSTM, nnqa.MultiheadAttention); quanta's Prepare reaches the same
// forms by itself.

type goldenTensor struct {
	Shape []int     `json:"shape"`
	Data  []float32 `json:"data"`
}

func (g goldenTensor) tensor() *tensor.Tensor { return tensor.FromFloat32(g.Data, g.Shape...) }

type goldenQTensor struct {
	Shape     []int   `json:"shape"`
	Scale     float32 `json:"scale"`
	ZeroPoint int32   `json:"zero_point"`
	Codes     []int   `json:"codes"`
}

type goldenCase struct {
	Layers      int                     `json:"layers"`
	Weights     map[string]goldenTensor `json:"weights"`
	Calib       []goldenTensor          `json:"calib"`
	X           goldenTensor            `json:"x"`
	Observed    map[string][2]float64   `json:"observed"`
	Float       goldenTensor            `json:"float"`
	Output      goldenQTensor           `json:"output"`
	HN          *goldenQTensor          `json:"h_n"`
	CN          *goldenQTensor          `json:"c_n"`
	AttnWeights *goldenQTensor          `json:"attn_weights"`
}

type goldenFile struct {
	Torch     string       `json:"torch"`
	LSTM      []goldenCase `json:"lstm"`
	Attention goldenCase   `json:"attention"`
}

func loadQuantizableGolden(t *testing.T) *goldenFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/quantizable_golden.json")
	must(t, err)
	var g goldenFile
	must(t, json.Unmarshal(raw, &g))
	return &g
}

// loadWeights copies the golden float parameters into m by name.
func loadWeights(t *testing.T, m nn.Module, w map[string]goldenTensor) {
	t.Helper()
	params := map[string]*tensor.Tensor{}
	for _, p := range nn.NamedParameters(m) {
		params[p.Name] = p.Tensor
	}
	if len(params) != len(w) {
		t.Fatalf("%d parameters, the golden file has %d", len(params), len(w))
	}
	for name, g := range w {
		p := params[name]
		if p == nil || !tensor.SameShape(p.Shape(), g.Shape) {
			t.Fatalf("parameter %s: missing or shaped unlike the golden %v", name, g.Shape)
		}
		copy(p.F32(), g.Data)
	}
}

// checkObserved compares the qparams quanta's observers chose with
// PyTorch's: zero points must be equal and scales within a relative 1e-6
// (the observed activations come from float matrix products that sum in
// another order, and the recurrence carries such last-bit differences, so
// a range can differ by a few ulp). It returns how many are bit-identical.
func checkObserved(t *testing.T, root nn.Module, want map[string][2]float64) int {
	t.Helper()
	same := 0
	for path, w := range want {
		m, err := nn.Get(root, path)
		must(t, err)
		app, ok := m.ModuleBase().ActivationPostProcess.(*ObserverModule)
		if !ok {
			t.Fatalf("%s has no observer", path)
		}
		q, err := app.CalculateQParams()
		must(t, err)
		s, z := q.Scale[0], q.ZeroPoint[0]
		ws, wz := float32(w[0]), int32(w[1])
		if s == ws && z == wz {
			same++
			continue
		}
		if z != wz || !closeScale(s, ws) {
			t.Errorf("%s: qparams (%v, %d), PyTorch (%v, %d)", path, s, z, ws, wz)
		}
	}
	return same
}

func closeScale(got, want float32) bool {
	return math.Abs(float64(got-want)) <= 1e-6*float64(want)
}

// compareCodes returns the fraction of codes equal to PyTorch's and the
// largest difference, after checking shape and qparams (as checkObserved).
func compareCodes(t *testing.T, what string, got *tensor.Tensor, want *goldenQTensor) (float64, int) {
	t.Helper()
	if got.DType() != tensor.QUInt8 || !tensor.SameShape(got.Shape(), want.Shape) {
		t.Fatalf("%s: %v %v, want quint8 %v", what, got.DType(), got.Shape(), want.Shape)
	}
	q := got.QParams()
	if q.ZeroPoint[0] != want.ZeroPoint || !closeScale(q.Scale[0], want.Scale) {
		t.Errorf("%s: qparams (%v, %d), PyTorch (%v, %d)", what, q.Scale[0], q.ZeroPoint[0], want.Scale, want.ZeroPoint)
	}
	same, worst := 0, 0
	for i, c := range got.U8() {
		d := int(c) - want.Codes[i]
		if d == 0 {
			same++
		}
		worst = max(worst, d, -d)
	}
	return float64(same) / float64(len(want.Codes)), worst
}

func maxAbsDiff(a, b *tensor.Tensor) float64 {
	var m float64
	for i, v := range a.F32() {
		m = math.Max(m, math.Abs(float64(v-b.F32()[i])))
	}
	return m
}

func TestQuantizableTorchParity(t *testing.T) {
	g := loadQuantizableGolden(t)
	qc, err := quant.DefaultQConfig("qnnpack")
	must(t, err)
	calibrate := func(m nn.Layer, c *goldenCase) {
		autograd.NoGrad(func() {
			for _, b := range c.Calib {
				m.Forward(b.tensor())
			}
			m.Forward(c.X.tensor())
		})
	}
	for _, c := range g.LSTM {
		c := c
		t.Run("LSTM/layers="+string(rune('0'+c.Layers)), func(t *testing.T) {
			m := newLSTMNet(t, 8, 16, nn.RNNOptions{NumLayers: c.Layers})
			loadWeights(t, m.RNN, c.Weights)
			nn.Eval(m)
			x := c.X.tensor()
			var y *tensor.Tensor
			autograd.NoGrad(func() { y = m.Forward(x) })
			if d := maxAbsDiff(y, c.Float.tensor()); d > 1e-5 {
				t.Errorf("float model differs from PyTorch's by %g", d)
			}
			SetQConfig(m, qc)
			must(t, Prepare(m, Options{}))
			calibrate(m, &c)
			same := checkObserved(t, m, c.Observed)
			must(t, Convert(m, Options{}))
			var out *tensor.Tensor
			var st nn.LSTMState
			autograd.NoGrad(func() { out, st = m.quantized(x) })
			frac, worst := compareCodes(t, "output", out, &c.Output)
			t.Logf("observed qparams bit-identical to PyTorch's: %d/%d; output codes identical: %.4f (max |difference| %d)",
				same, len(c.Observed), frac, worst)
			// Recorded: every output code equal.
			if frac < 0.999 || worst > 1 {
				t.Errorf("output parity below the recorded level: %.4f codes identical, max difference %d", frac, worst)
			}
			if c.Layers == 1 { // more layers join states by observed qparams (hidden_cat), PyTorch by the first layer's
				fh, wh := compareCodes(t, "h_n", st.H, c.HN)
				fc, wc := compareCodes(t, "c_n", st.C, c.CN)
				t.Logf("h_n codes identical: %.4f (max %d); c_n: %.4f (max %d)", fh, wh, fc, wc)
				if fh < 0.999 || fc < 0.999 || wh > 1 || wc > 1 {
					t.Errorf("final state parity below the recorded level")
				}
			}
		})
	}
	t.Run("MultiheadAttention", func(t *testing.T) {
		c := g.Attention
		attn, err := nn.NewMultiheadAttention(16, 4, nn.MultiheadAttentionOptions{})
		must(t, err)
		loadWeights(t, attn, c.Weights)
		m := &attnNet{Quant: nn.NewQuantStub(nil), Attn: attn, DeQuant: nn.NewDeQuantStub(nil)}
		nn.AssignPaths(m)
		nn.Eval(m)
		x := c.X.tensor()
		var y *tensor.Tensor
		autograd.NoGrad(func() { y = m.Forward(x) })
		if d := maxAbsDiff(y, c.Float.tensor()); d > 1e-5 {
			t.Errorf("float model differs from PyTorch's by %g", d)
		}
		SetQConfig(m, qc)
		must(t, Prepare(m, Options{}))
		calibrate(m, &c)
		same := checkObserved(t, m, c.Observed)
		must(t, Convert(m, Options{}))
		var out, w *tensor.Tensor
		autograd.NoGrad(func() { out, w = m.quantized(x) })
		frac, worst := compareCodes(t, "output", out, &c.Output)
		fw, ww := compareCodes(t, "weights", w, c.AttnWeights)
		t.Logf("observed qparams bit-identical to PyTorch's: %d/%d; output codes identical: %.4f (max %d); weights: %.4f (max %d)",
			same, len(c.Observed), frac, worst, fw, ww)
		// Recorded: 99.3% of the output codes and 95.4-96.3% (by CPU tier)
		// of the averaged weights' codes equal, none off by more than one.
		// The head average of four codes often lands exactly on a half,
		// where a last-bit difference in the float softmax or in the
		// observed scale decides the rounding.
		if frac < 0.99 || fw < 0.94 || worst > 1 || ww > 1 {
			t.Errorf("parity below the recorded level")
		}
	})
}
