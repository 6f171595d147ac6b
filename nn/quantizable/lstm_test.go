package quantizable

import (
	"math"
	"strings"
	"testing"

	"github.com/quanta-go/quanta/autograd"
	"github.com/quanta-go/quanta/nn"
	"github.com/quanta-go/quanta/tensor"
)

// maxDiff returns the largest absolute difference between got and want,
// failing on a shape mismatch.
func maxDiff(t *testing.T, what string, got, want *tensor.Tensor) float64 {
	t.Helper()
	if !tensor.SameShape(got.Shape(), want.Shape()) {
		t.Fatalf("%s: shape %v, want %v", what, got.Shape(), want.Shape())
	}
	var m float64
	for i, w := range want.F32() {
		m = math.Max(m, math.Abs(float64(got.F32()[i]-w)))
	}
	return m
}

func near(t *testing.T, what string, got, want *tensor.Tensor) {
	t.Helper()
	if d := maxDiff(t, what, got, want); d > 1e-6 {
		t.Errorf("%s: max |difference| %g from the float module", what, d)
	}
}

func TestLSTMMatchesFloat(t *testing.T) {
	cases := []struct {
		name          string
		o             nn.RNNOptions
		shape         []int // input shape
		state, single bool
	}{
		{"one layer", nn.RNNOptions{}, []int{7, 3, 5}, false, false},
		{"two layers with state", nn.RNNOptions{NumLayers: 2}, []int{6, 2, 5}, true, false},
		{"bidirectional", nn.RNNOptions{Bidirectional: true}, []int{5, 3, 5}, false, false},
		{"bidirectional two layers with state", nn.RNNOptions{NumLayers: 2, Bidirectional: true}, []int{4, 2, 5}, true, false},
		{"batch first no bias", nn.RNNOptions{BatchFirst: true, NoBias: true, NumLayers: 2}, []int{3, 6, 5}, false, false},
		{"unbatched", nn.RNNOptions{Bidirectional: true}, []int{6, 5}, true, true},
		{"empty sequence", nn.RNNOptions{}, []int{0, 2, 5}, false, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.o.RNG = tensor.NewRNG(uint64(10 + i))
			f, err := nn.NewLSTM(5, 4, c.o)
			if err != nil {
				t.Fatal(err)
			}
			nn.Eval(f)
			q, err := LSTMFromFloat(f)
			if err != nil {
				t.Fatal(err)
			}
			g := tensor.NewRNG(uint64(100 + i))
			x := tensor.Randn(g, c.shape...)
			var st *nn.LSTMState
			if c.state {
				n := max(1, c.o.NumLayers)
				if c.o.Bidirectional {
					n *= 2
				}
				if c.single {
					st = &nn.LSTMState{H: tensor.Randn(g, n, 4), C: tensor.Randn(g, n, 4)}
				} else {
					st = &nn.LSTMState{H: tensor.Randn(g, n, c.shape[1], 4), C: tensor.Randn(g, n, c.shape[1], 4)}
				}
			}
			autograd.NoGrad(func() {
				want, wantS := f.Forward(x, st)
				got, gotS := q.Forward(x, st)
				near(t, "output", got, want)
				near(t, "h_n", gotS.H, wantS.H)
				near(t, "c_n", gotS.C, wantS.C)
			})
		})
	}
}

func TestLSTMCellMatchesFloat(t *testing.T) {
	f, err := nn.NewLSTMCell(3, 6, nn.CellOptions{RNG: tensor.NewRNG(3)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := LSTMCellFromFloat(f)
	if err != nil {
		t.Fatal(err)
	}
	g := tensor.NewRNG(4)
	autograd.NoGrad(func() {
		x := tensor.Randn(g, 4, 3)
		st := &nn.LSTMState{H: tensor.Randn(g, 4, 6), C: tensor.Randn(g, 4, 6)}
		for _, s := range []*nn.LSTMState{nil, st} {
			want, got := f.Forward(x, s), q.Forward(x, s)
			near(t, "h", got.H, want.H)
			near(t, "c", got.C, want.C)
		}
		x1 := tensor.Randn(g, 3)
		want, got := f.Forward(x1, nil), q.Forward(x1, nil)
		near(t, "unbatched h", got.H, want.H)
		near(t, "unbatched c", got.C, want.C)
	})
}

// The parameters keep PyTorch's quantizable names, and the cell's parts
// are the swappable kinds eager mode converts.
func TestLSTMStructure(t *testing.T) {
	q, err := NewLSTM(5, 4, nn.RNNOptions{NumLayers: 2, Bidirectional: true, RNG: tensor.NewRNG(1)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range nn.NamedParameters(q) {
		names = append(names, p.Name)
	}
	if len(names) != 16 || names[0] != "layers.0.layer_fw.cell.igates.weight" || names[3] != "layers.0.layer_fw.cell.hgates.bias" ||
		names[15] != "layers.1.layer_bw.cell.hgates.bias" {
		t.Errorf("parameter names %v", names)
	}
	f, _ := nn.NewLSTM(5, 4, nn.RNNOptions{NumLayers: 2, Bidirectional: true, RNG: tensor.NewRNG(1)})
	_, whh, _, bhh := f.Weights(1, 1)
	cell := q.Layer(1).LayerBw.Cell
	if maxDiff(t, "weight_hh_l1_reverse", cell.Hgates.(*nn.Linear).Weight, whh) != 0 ||
		maxDiff(t, "bias_hh_l1_reverse", cell.Hgates.(*nn.Linear).Bias, bhh) != 0 {
		t.Error("weights are not copied to the matching cell")
	}
	kinds := map[string]int{}
	for _, m := range nn.Modules(cell) {
		kinds[nn.TypeName(m)]++
	}
	if kinds["Linear"] != 2 || kinds["FloatFunctional"] != 5 || kinds["Sigmoid"] != 3 || kinds["Tanh"] != 2 {
		t.Errorf("cell parts %v", kinds)
	}
	if q.HiddenCat == nil || q.CellCat == nil || q.Layer(0).Cat == nil {
		t.Error("a two-layer bidirectional LSTM lacks its joining FloatFunctionals")
	}
	one, _ := NewLSTM(5, 4, nn.RNNOptions{})
	if one.HiddenCat != nil || one.CellCat != nil || one.Layer(0).Cat != nil || one.Layer(0).LayerBw != nil {
		t.Error("a one-layer, one-direction LSTM has parts PyTorch's has not")
	}
	if nn.TypeName(q) != "quantizable.LSTM" || nn.TypeName(cell) != "quantizable.LSTMCell" {
		t.Errorf("type names %s, %s", nn.TypeName(q), nn.TypeName(cell))
	}
	// The copy is independent of the float module.
	whh.F32()[0] += 1
	if cell.Hgates.(*nn.Linear).Weight.F32()[0] == whh.F32()[0] {
		t.Error("the quantizable LSTM shares its weights with the float one")
	}
}

func TestLSTMErrors(t *testing.T) {
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one mentioning %q", what, err, want)
		}
	}
	_, err := LSTMFromFloat(nil)
	check("nil LSTM", err, "nil LSTM")
	_, err = LSTMCellFromFloat(nil)
	check("nil cell", err, "nil cell")
	_, err = NewLSTM(0, 4, nn.RNNOptions{})
	check("zero input", err, "NewLSTM")
	_, err = NewLSTMCell(3, -1, nn.CellOptions{})
	check("negative hidden", err, "NewLSTMCell")
	c, _ := nn.NewLSTMCell(3, 4, nn.CellOptions{})
	c.BiasHH = nil
	_, err = LSTMCellFromFloat(c)
	check("one bias", err, "both")
	c, _ = nn.NewLSTMCell(3, 4, nn.CellOptions{})
	c.WeightHH = tensor.Zeros(16, 5)
	_, err = LSTMCellFromFloat(c)
	check("bad weight_hh", err, "do not fit")
}

func TestLSTMShapePanics(t *testing.T) {
	q, _ := NewLSTM(5, 4, nn.RNNOptions{})
	for name, fn := range map[string]func(){
		"features": func() { q.Forward(tensor.Zeros(3, 2, 6), nil) },
		"state":    func() { q.Forward(tensor.Zeros(3, 2, 5), &nn.LSTMState{H: tensor.Zeros(2, 2, 4)}) },
		"domain": func() {
			h := zeroState(2, 4, true).Reshape(1, 2, 4)
			q.Forward(tensor.Zeros(3, 2, 5), &nn.LSTMState{H: h})
		},
	} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.HasPrefix(s, "quantizable: LSTM") {
					t.Errorf("%s: panic %v, want a quantizable: LSTM message", name, r)
				}
			}()
			fn()
		}()
	}
}
