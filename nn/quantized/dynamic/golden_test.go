package dynamic

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/nn"
	opsdyn "github.com/quanta-go/quanta/ops/dynamic"
	"github.com/quanta-go/quanta/tensor"
)

// goldenTensor is a tensor of testdata/torch_modules.json.
type goldenTensor struct {
	Shape []int     `json:"shape"`
	Data  []float32 `json:"data"`
}

func (g *goldenTensor) tensor() *tensor.Tensor {
	if g == nil {
		return nil
	}
	return tensor.FromFloat32(append([]float32(nil), g.Data...), g.Shape...)
}

type goldenCase struct {
	State map[string]*goldenTensor `json:"state"`
	X     *goldenTensor            `json:"x"`
	H0    *goldenTensor            `json:"h0"`
	C0    *goldenTensor            `json:"c0"`
	Y     *goldenTensor            `json:"y"`
	H     *goldenTensor            `json:"h"`
	C     *goldenTensor            `json:"c"`
	// LSTMOut is the dynamic LSTM's own output in the LSTM + Linear case.
	LSTMOut *goldenTensor `json:"lstm_out"`
}

func loadTorch(t *testing.T) map[string]*goldenCase {
	t.Helper()
	data, err := os.ReadFile("testdata/torch_modules.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Torch  string                 `json:"torch"`
		Engine string                 `json:"engine"`
		Cases  map[string]*goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(f.Torch, "1.13") || f.Engine != "qnnpack" {
		t.Fatalf("golden file from torch %q engine %q", f.Torch, f.Engine)
	}
	return f.Cases
}

// stateOf returns the golden state entries under prefix, renamed without it.
func stateOf(c *goldenCase, prefix string) map[string]*tensor.Tensor {
	sd := map[string]*tensor.Tensor{}
	for k, v := range c.State {
		if name, ok := strings.CutPrefix(k, prefix); ok {
			sd[name] = v.tensor()
		}
	}
	return sd
}

func load(t *testing.T, m nn.Module, sd map[string]*tensor.Tensor) {
	t.Helper()
	if err := nn.LoadStateDict(m, sd); err != nil {
		t.Fatal(err)
	}
}

// maxDiff returns max |got - want| and fails on a shape mismatch.
func maxDiff(t *testing.T, name string, got *tensor.Tensor, want []float32, shape []int) float64 {
	t.Helper()
	if !tensor.SameShape(got.Shape(), shape) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape(), shape)
	}
	d := 0.0
	for i, v := range got.F32() {
		d = math.Max(d, math.Abs(float64(v-want[i])))
	}
	return d
}

func check(t *testing.T, name string, got *tensor.Tensor, want *goldenTensor, tol float64) {
	t.Helper()
	d := maxDiff(t, name, got, want.Data, want.Shape)
	t.Logf("%s: max |Δ| vs PyTorch = %.3g", name, d)
	if d > tol {
		t.Errorf("%s: differs from PyTorch by %g (tolerance %g)", name, d, tol)
	}
}

// The dynamic int8 products reproduce PyTorch's qnnpack exactly; what
// remains is float32 rounding of sigmoid and tanh (a few ulp).
const torchTol = 2e-6

var qnnpack = Options{Rule: opsdyn.RuleTorch}

func TestTorchLSTMLinear(t *testing.T) {
	c := loadTorch(t)["lstm_linear"]
	f, err := nn.NewLSTM(6, 5, nn.RNNOptions{NumLayers: 2, Bidirectional: true})
	if err != nil {
		t.Fatal(err)
	}
	load(t, f, stateOf(c, "lstm."))
	fl, err := nn.NewLinear(10, 4, nn.LinearOptions{})
	if err != nil {
		t.Fatal(err)
	}
	load(t, fl, stateOf(c, "fc."))
	q, err := LSTMFromFloat(f, qnnpack)
	if err != nil {
		t.Fatal(err)
	}
	ql, err := LinearFromFloat(fl, qnnpack)
	if err != nil {
		t.Fatal(err)
	}
	out, st := q.Forward(c.X.tensor(), &nn.LSTMState{H: c.H0.tensor(), C: c.C0.tensor()})
	check(t, "LSTM output", out, c.LSTMOut, torchTol)
	check(t, "LSTM h_n", st.H, c.H, torchTol)
	check(t, "LSTM c_n", st.C, c.C, torchTol)
	// The Linear sees PyTorch's own LSTM output, so its product is exact.
	check(t, "Linear on LSTM output", ql.Forward(c.LSTMOut.tensor()), c.Y, 1e-6)
	check(t, "LSTM then Linear", ql.Forward(out), c.Y, 1e-5)
}

func TestTorchGRU(t *testing.T) {
	c := loadTorch(t)["gru"]
	f, err := nn.NewGRU(6, 5, nn.RNNOptions{NumLayers: 2, Bidirectional: true, BatchFirst: true})
	if err != nil {
		t.Fatal(err)
	}
	load(t, f, stateOf(c, "gru."))
	q, err := GRUFromFloat(f, qnnpack)
	if err != nil {
		t.Fatal(err)
	}
	out, hn := q.Forward(c.X.tensor(), c.H0.tensor())
	check(t, "GRU output", out, c.Y, torchTol)
	check(t, "GRU h_n", hn, c.H, torchTol)
}

func TestTorchCells(t *testing.T) {
	cases := loadTorch(t)
	o := nn.CellOptions{}
	{
		c := cases["lstm_cell"]
		f, _ := nn.NewLSTMCell(6, 5, o)
		load(t, f, stateOf(c, ""))
		q, err := LSTMCellFromFloat(f, qnnpack)
		if err != nil {
			t.Fatal(err)
		}
		st := q.Forward(c.X.tensor(), &nn.LSTMState{H: c.H0.tensor(), C: c.C0.tensor()})
		check(t, "LSTMCell h", st.H, c.H, torchTol)
		check(t, "LSTMCell c", st.C, c.C, torchTol)
	}
	{
		c := cases["gru_cell"]
		f, _ := nn.NewGRUCell(6, 5, o)
		load(t, f, stateOf(c, ""))
		q, err := GRUCellFromFloat(f, qnnpack)
		if err != nil {
			t.Fatal(err)
		}
		check(t, "GRUCell", q.Forward(c.X.tensor(), c.H0.tensor()), c.H, torchTol)
	}
	for _, name := range []string{"rnn_cell_tanh", "rnn_cell_relu"} {
		c := cases[name]
		f, _ := nn.NewRNNCell(6, 5, nn.CellOptions{ReLU: name == "rnn_cell_relu"})
		load(t, f, stateOf(c, ""))
		q, err := RNNCellFromFloat(f, qnnpack)
		if err != nil {
			t.Fatal(err)
		}
		check(t, name, q.Forward(c.X.tensor(), c.H0.tensor()), c.H, torchTol)
	}
}

func TestTorchLinear(t *testing.T) {
	cases := loadTorch(t)
	for _, tc := range []struct {
		name string
		relu bool
		o    Options
	}{
		{"linear_per_channel", false, Options{Rule: opsdyn.RuleTorch, PerChannel: true}},
		{"linear_relu", true, qnnpack},
	} {
		c := cases[tc.name]
		f, _ := nn.NewLinear(9, 6, nn.LinearOptions{})
		load(t, f, stateOf(c, ""))
		conv := LinearFromFloat
		if tc.relu {
			conv = LinearReLUFromFloat
		}
		q, err := conv(f, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		// Bit-exact: float32(acc)*(s_a*s_w) + b is PyTorch's qnnpack output.
		check(t, tc.name, q.Forward(c.X.tensor()), c.Y, 0)
	}
}
