package nn

import (
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/quanta-go/quanta/internal/gradcheck"
	"github.com/quanta-go/quanta/ops"
	"github.com/quanta-go/quanta/tensor"
)

func sigm(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

// affine returns W v + b for W [rows, len(v)] stored in t and bias b (nil
// means none); rows gate*H .. (gate+1)*H-1 only.
func affine(w, b *tensor.Tensor, v []float64, gate, h int) []float64 {
	out := make([]float64, h)
	for r := 0; r < h; r++ {
		row := gate*h + r
		s := 0.0
		for k := range v {
			s += w.At(row, k) * v[k]
		}
		if b != nil {
			s += b.At(row)
		}
		out[r] = s
	}
	return out
}

// naiveCell advances one step of an LSTM (gates 4) or GRU (gates 3) for one
// sample with PyTorch's equations, written per element.
func naiveCell(gates int, wih, whh, bih, bhh *tensor.Tensor, x, h, c []float64) ([]float64, []float64) {
	H := len(h)
	h2, c2 := make([]float64, H), make([]float64, H)
	if gates == 4 {
		var g [4][]float64
		for k := 0; k < 4; k++ {
			a, b := affine(wih, bih, x, k, H), affine(whh, bhh, h, k, H)
			g[k] = make([]float64, H)
			for r := range a {
				g[k][r] = a[r] + b[r]
			}
		}
		for r := 0; r < H; r++ {
			i, f, gg, o := sigm(g[0][r]), sigm(g[1][r]), math.Tanh(g[2][r]), sigm(g[3][r])
			c2[r] = f*c[r] + i*gg
			h2[r] = o * math.Tanh(c2[r])
		}
		return h2, c2
	}
	xr, xz, xn := affine(wih, bih, x, 0, H), affine(wih, bih, x, 1, H), affine(wih, bih, x, 2, H)
	hr, hz, hn := affine(whh, bhh, h, 0, H), affine(whh, bhh, h, 1, H), affine(whh, bhh, h, 2, H)
	for r := 0; r < H; r++ {
		rg := sigm(xr[r] + hr[r])
		z := sigm(xz[r] + hz[r])
		n := math.Tanh(xn[r] + rg*hn[r])
		h2[r] = (1-z)*n + z*h[r]
	}
	return h2, c2
}

// naiveRNN runs a full multi-layer (bi)directional network sequence-first:
// x[t][b] vectors, h0/c0[l*D+d][b]. It returns out[t][b] and final states.
func naiveRNN(r *RNNBase, x [][][]float64, h0, c0 [][][]float64) ([][][]float64, [][][]float64, [][][]float64) {
	T, B, D := len(x), len(x[0]), r.dirs()
	hn := make([][][]float64, len(h0))
	cn := make([][][]float64, len(h0))
	input := x
	for l := 0; l < r.NumLayers; l++ {
		out := make([][][]float64, T)
		for t := range out {
			out[t] = make([][]float64, B)
			for b := range out[t] {
				out[t][b] = make([]float64, D*r.HiddenSize)
			}
		}
		for d := 0; d < D; d++ {
			wih, whh, bih, bhh := r.Weights(l, d)
			k := l*D + d
			hn[k], cn[k] = make([][]float64, B), make([][]float64, B)
			for b := 0; b < B; b++ {
				h, c := h0[k][b], c0[k][b]
				for s := 0; s < T; s++ {
					t := s
					if d == 1 {
						t = T - 1 - s
					}
					h, c = naiveCell(r.gates, wih, whh, bih, bhh, input[t][b], h, c)
					copy(out[t][b][d*r.HiddenSize:], h)
				}
				hn[k][b], cn[k][b] = h, c
			}
		}
		input = out
	}
	return input, hn, cn
}

func randNested(rng *tensor.RNG, a, b, c int) [][][]float64 {
	out := make([][][]float64, a)
	for i := range out {
		out[i] = make([][]float64, b)
		for j := range out[i] {
			out[i][j] = make([]float64, c)
			for k := range out[i][j] {
				out[i][j][k] = float64(rng.Uniform(-1, 1))
			}
		}
	}
	return out
}

// toTensor packs nested [a][b][c] into a tensor, optionally swapping the
// first two dimensions.
func toTensor(v [][][]float64, swap bool) *tensor.Tensor {
	a, b, c := len(v), len(v[0]), len(v[0][0])
	if swap {
		t := tensor.Zeros(b, a, c)
		for i := range v {
			for j := range v[i] {
				for k := range v[i][j] {
					t.Set(v[i][j][k], j, i, k)
				}
			}
		}
		return t
	}
	t := tensor.Zeros(a, b, c)
	for i := range v {
		for j := range v[i] {
			for k := range v[i][j] {
				t.Set(v[i][j][k], i, j, k)
			}
		}
	}
	return t
}

func checkNested(t *testing.T, name string, got *tensor.Tensor, want [][][]float64, swap bool, tol float64) {
	t.Helper()
	exp := toTensor(want, swap)
	if !tensor.SameShape(got.Shape(), exp.Shape()) {
		t.Fatalf("%s: shape %v, want %v", name, got.Shape(), exp.Shape())
	}
	if d := tensor.MaxAbsDiff(got, exp); d > tol {
		t.Errorf("%s: max abs diff %g from the naive reference", name, d)
	}
}

func TestLSTMAndGRUMatchNaive(t *testing.T) {
	const T, B, In, H = 5, 3, 4, 3
	for _, kind := range []string{"LSTM", "GRU"} {
		for _, cfg := range []RNNOptions{
			{},
			{NumLayers: 2, Bidirectional: true, BatchFirst: true},
			{NumLayers: 3, NoBias: true},
		} {
			name := fmt.Sprintf("%s%+v", kind, cfg)
			cfg.RNG = tensor.NewRNG(3)
			rng := tensor.NewRNG(11)
			x := randNested(rng, T, B, In)
			D := 1
			if cfg.Bidirectional {
				D = 2
			}
			L := or1(cfg.NumLayers)
			h0 := randNested(rng, L*D, B, H)
			c0 := randNested(rng, L*D, B, H)
			var base *RNNBase
			var out, hn, cn *tensor.Tensor
			if kind == "LSTM" {
				m := must(NewLSTM(In, H, cfg))
				base = &m.RNNBase
				var st LSTMState
				out, st = m.Forward(toTensor(x, cfg.BatchFirst), &LSTMState{H: toTensor(h0, false), C: toTensor(c0, false)})
				hn, cn = st.H, st.C
			} else {
				m := must(NewGRU(In, H, cfg))
				base = &m.RNNBase
				out, hn = m.Forward(toTensor(x, cfg.BatchFirst), toTensor(h0, false))
			}
			wantOut, wantH, wantC := naiveRNN(base, x, h0, c0)
			checkNested(t, name+" output", out, wantOut, cfg.BatchFirst, 2e-6)
			checkNested(t, name+" h_n", hn, wantH, false, 2e-6)
			if cn != nil {
				checkNested(t, name+" c_n", cn, wantC, false, 2e-6)
			}
		}
	}
}

func TestRNNZeroStateAndUnbatched(t *testing.T) {
	m := must(NewLSTM(2, 3, RNNOptions{NumLayers: 2, RNG: tensor.NewRNG(5)}))
	rng := tensor.NewRNG(2)
	x := randNested(rng, 4, 1, 2)
	zeros := [][][]float64{{{0, 0, 0}}, {{0, 0, 0}}}
	wantOut, wantH, wantC := naiveRNN(&m.RNNBase, x, zeros, zeros)
	out, st := m.Forward(toTensor(x, false), nil)
	checkNested(t, "batched output", out, wantOut, false, 2e-6)
	// Unbatched: [T, in] in, [T, H] out, states [L, H].
	xu := ops.Reshape(toTensor(x, false), 4, 2)
	outU, stU := m.Forward(xu, nil)
	if !tensor.SameShape(outU.Shape(), []int{4, 3}) || !tensor.SameShape(stU.H.Shape(), []int{2, 3}) {
		t.Fatalf("unbatched shapes %v %v", outU.Shape(), stU.H.Shape())
	}
	if tensor.MaxAbsDiff(outU, ops.Reshape(out, 4, 3)) != 0 || tensor.MaxAbsDiff(stU.C, ops.Reshape(st.C, 2, 3)) != 0 {
		t.Error("unbatched result differs from batch of one")
	}
	checkNested(t, "h_n", st.H, wantH, false, 2e-6)
	checkNested(t, "c_n", st.C, wantC, false, 2e-6)
	// Passing the state back in continues the sequence.
	out2, _ := m.Forward(toTensor(x, false), &st)
	wantOut2, _, _ := naiveRNN(&m.RNNBase, x, toNested(st.H), toNested(st.C))
	checkNested(t, "continued", out2, wantOut2, false, 2e-6)
}

func toNested(t *tensor.Tensor) [][][]float64 {
	out := make([][][]float64, t.Dim(0))
	for i := range out {
		out[i] = make([][]float64, t.Dim(1))
		for j := range out[i] {
			out[i][j] = make([]float64, t.Dim(2))
			for k := range out[i][j] {
				out[i][j][k] = t.At(i, j, k)
			}
		}
	}
	return out
}

func TestRNNParameterNamesAndInit(t *testing.T) {
	m := must(NewLSTM(4, 5, RNNOptions{NumLayers: 2, Bidirectional: true}))
	var got []string
	for _, p := range NamedParameters(m) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
		bound := 1 / math.Sqrt(5)
		for _, v := range p.Tensor.F32() {
			if math.Abs(float64(v)) > bound {
				t.Errorf("%s value %g outside ±1/sqrt(hidden)", p.Name, v)
			}
		}
	}
	want := []string{
		"weight_ih_l0[20 4]", "weight_hh_l0[20 5]", "bias_ih_l0[20]", "bias_hh_l0[20]",
		"weight_ih_l0_reverse[20 4]", "weight_hh_l0_reverse[20 5]", "bias_ih_l0_reverse[20]", "bias_hh_l0_reverse[20]",
		"weight_ih_l1[20 10]", "weight_hh_l1[20 5]", "bias_ih_l1[20]", "bias_hh_l1[20]",
		"weight_ih_l1_reverse[20 10]", "weight_hh_l1_reverse[20 5]", "bias_ih_l1_reverse[20]", "bias_hh_l1_reverse[20]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LSTM parameters\n got %v\nwant %v", got, want)
	}
	g := must(NewGRUCell(3, 2, CellOptions{}))
	got = got[:0]
	for _, p := range NamedParameters(g) {
		got = append(got, fmt.Sprintf("%s%v", p.Name, p.Tensor.Shape()))
	}
	if !reflect.DeepEqual(got, []string{"weight_ih[6 3]", "weight_hh[6 2]", "bias_ih[6]", "bias_hh[6]"}) {
		t.Errorf("GRUCell parameters %v", got)
	}
	if _, err := NewLSTM(0, 3, RNNOptions{}); err == nil {
		t.Error("input size 0 accepted")
	}
	if _, err := NewGRU(2, 3, RNNOptions{Dropout: 2}); err == nil {
		t.Error("dropout 2 accepted")
	}
}

func TestCellsMatchNaive(t *testing.T) {
	rng := tensor.NewRNG(4)
	x := randNested(rng, 1, 2, 3)[0]
	h := randNested(rng, 1, 2, 4)[0]
	c := randNested(rng, 1, 2, 4)[0]
	xt := toTensor([][][]float64{x}, false).Reshape(2, 3)
	ht := toTensor([][][]float64{h}, false).Reshape(2, 4)
	ct := toTensor([][][]float64{c}, false).Reshape(2, 4)

	lc := must(NewLSTMCell(3, 4, CellOptions{RNG: rng}))
	st := lc.Forward(xt, &LSTMState{H: ht, C: ct})
	gc := must(NewGRUCell(3, 4, CellOptions{RNG: rng}))
	gh := gc.Forward(xt, ht)
	for b := 0; b < 2; b++ {
		wh, wc := naiveCell(4, lc.WeightIH, lc.WeightHH, lc.BiasIH, lc.BiasHH, x[b], h[b], c[b])
		gw, _ := naiveCell(3, gc.WeightIH, gc.WeightHH, gc.BiasIH, gc.BiasHH, x[b], h[b], nil)
		for r := 0; r < 4; r++ {
			if math.Abs(st.H.At(b, r)-wh[r]) > 2e-6 || math.Abs(st.C.At(b, r)-wc[r]) > 2e-6 {
				t.Errorf("LSTMCell [%d,%d]: %g %g, want %g %g", b, r, st.H.At(b, r), st.C.At(b, r), wh[r], wc[r])
			}
			if math.Abs(gh.At(b, r)-gw[r]) > 2e-6 {
				t.Errorf("GRUCell [%d,%d]: %g, want %g", b, r, gh.At(b, r), gw[r])
			}
		}
	}
	for _, relu := range []bool{false, true} {
		rc := must(NewRNNCell(3, 4, CellOptions{ReLU: relu, RNG: rng}))
		y := rc.Forward(xt, ht)
		for b := 0; b < 2; b++ {
			for r := 0; r < 4; r++ {
				v := affine(rc.WeightIH, rc.BiasIH, x[b], 0, 4)[r] + affine(rc.WeightHH, rc.BiasHH, h[b], 0, 4)[r]
				if relu {
					v = math.Max(v, 0)
				} else {
					v = math.Tanh(v)
				}
				if math.Abs(y.At(b, r)-v) > 2e-6 {
					t.Errorf("RNNCell relu=%v [%d,%d]: %g, want %g", relu, b, r, y.At(b, r), v)
				}
			}
		}
	}
	// Unbatched cell input and a nil state.
	y := gc.Forward(tensor.FromFloat32([]float32{0.1, 0.2, 0.3}), nil)
	if !tensor.SameShape(y.Shape(), []int{4}) {
		t.Errorf("unbatched GRUCell shape %v", y.Shape())
	}
}

func TestRNNGradcheck(t *testing.T) {
	rng := tensor.NewRNG(9)
	lstm := must(NewLSTM(2, 2, RNNOptions{NumLayers: 2, Bidirectional: true, RNG: rng}))
	gru := must(NewGRU(2, 2, RNNOptions{BatchFirst: true, RNG: rng}))
	cell := must(NewLSTMCell(2, 3, CellOptions{RNG: rng}))
	x := tensor.RandUniform(rng, -1, 1, 3, 2, 2).SetRequiresGrad(true)
	h0 := tensor.RandUniform(rng, -1, 1, 4, 2, 2).SetRequiresGrad(true)
	c0 := tensor.RandUniform(rng, -1, 1, 4, 2, 2).SetRequiresGrad(true)
	in := append([]*tensor.Tensor{x, h0, c0}, Parameters(lstm)...)
	err := gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		out, st := lstm.Forward(in[0], &LSTMState{H: in[1], C: in[2]})
		return ops.Concat([]*tensor.Tensor{ops.Reshape(out, -1), ops.Reshape(st.H, -1), ops.Reshape(st.C, -1)}, 0)
	}, in, gradcheck.Options{Eps: 1e-2, Atol: 2e-3, Rtol: 2e-2})
	if err != nil {
		t.Errorf("LSTM: %v", err)
	}
	g0 := tensor.RandUniform(rng, -1, 1, 1, 3, 2).SetRequiresGrad(true)
	in = append([]*tensor.Tensor{x, g0}, Parameters(gru)...)
	err = gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		out, hn := gru.Forward(in[0], in[1])
		return ops.Concat([]*tensor.Tensor{ops.Reshape(out, -1), ops.Reshape(hn, -1)}, 0)
	}, in, gradcheck.Options{Eps: 1e-2, Atol: 2e-3, Rtol: 2e-2})
	if err != nil {
		t.Errorf("GRU: %v", err)
	}
	xc := tensor.RandUniform(rng, -1, 1, 2, 2).SetRequiresGrad(true)
	in = append([]*tensor.Tensor{xc}, Parameters(cell)...)
	err = gradcheck.Check(func(in []*tensor.Tensor) *tensor.Tensor {
		s := cell.Forward(in[0], nil)
		s = cell.Forward(in[0], &s)
		return ops.Add(s.H, s.C)
	}, in, gradcheck.Options{Eps: 1e-2, Atol: 2e-3, Rtol: 2e-2})
	if err != nil {
		t.Errorf("LSTMCell: %v", err)
	}
}
